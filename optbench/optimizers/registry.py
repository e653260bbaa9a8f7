"""The optimizer registry: names in the order of the course, and lookup by name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from optbench.errors import OptbenchError
from optbench.optimizers import optax_adapter
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


def resolve(name: str, options: Mapping[str, Any] = MappingProxyType({})) -> OptimizerSpec:
    """A registered optimizer, or a factory ``module:function`` (``optax:lion``) with its
    fixed ``options`` (see :func:`optbench.optimizers.optax_adapter.factory_spec`)."""
    if optax_adapter.is_factory_path(name):
        return optax_adapter.factory_spec(name, tuple(sorted(options.items())))
    return get(name)


def hyperparameter_names(name: str) -> tuple[str, ...]:
    """The hyperparameters a sweep may give optimizer ``name`` (registered or a factory)."""
    if optax_adapter.is_factory_path(name):
        return tuple(optax_adapter.parameters(name))
    return tuple(get(name).defaults)


def hyperparameter_defaults(name: str) -> Mapping[str, float]:
    """The default of each of ``name``'s numeric hyperparameters (a factory's required ones,
    such as optax's ``learning_rate``, have none)."""
    if optax_adapter.is_factory_path(name):
        return optax_adapter.float_defaults(name)
    return get(name).defaults


def hyperparameters(name: str) -> dict[str, float | None]:
    """Each hyperparameter of optimizer ``name`` with its default (None: required), as a
    sweep records them in meta.json so that readers never import optimizer code."""
    defaults = hyperparameter_defaults(name)
    return {n: (float(defaults[n]) if n in defaults else None)
            for n in hyperparameter_names(name)}
