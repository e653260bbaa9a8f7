"""The optimizer registry: names in the order of the course, and lookup by name."""

from __future__ import annotations

from optbench.errors import OptbenchError
from optbench.optimizers.adadelta import ADADELTA
from optbench.optimizers.adagrad import ADAGRAD
from optbench.optimizers.adam import ADAM
from optbench.optimizers.base import OptimizerSpec
from optbench.optimizers.rmsprop import RMSPROP, RMSPROP_CENTERED
from optbench.optimizers.sgd import GD, MINIBATCH, MOMENTUM, NESTEROV, SGD

_REGISTRY: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (GD, SGD, MINIBATCH, MOMENTUM, NESTEROV, ADAGRAD, ADADELTA, RMSPROP,
                 RMSPROP_CENTERED, ADAM)
}


class UnknownOptimizer(OptbenchError, ValueError):
    """No optimizer is registered under that name."""


def names() -> tuple[str, ...]:
    """The registered optimizer names, in the order of the course."""
    return tuple(_REGISTRY)


def get(name: str) -> OptimizerSpec:
    """The spec of optimizer ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownOptimizer(
            f"unknown optimizer {name!r}; valid names: {', '.join(_REGISTRY)}"
        ) from None
