"""The pure-function optimizer interface, hyperparameter checks and the optax adapter.

An optimizer is a pair of pure functions over pytrees::

    state = init(params, hparams)
    updates, state = update(grads, state, params, hparams)
    params = optax.apply_updates(params, updates)

``hparams`` is a mapping from hyperparameter name to a scalar (a Python float or a JAX
array). Because hyperparameters are *data* rather than constants closed over at trace
time, ``jax.vmap`` over a vector of learning rates (or betas, or epsilons) compiles one
program for the whole vector. As in optax, the returned ``updates`` already contain the
minus sign: parameters move by ``params + updates``.

Pass hyperparameters as Python floats or as arrays of the parameters' dtype: a float64
array next to float32 parameters would promote the state to float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

Params = Any
Updates = Any
State = Any
HParams = Mapping[str, Any]


class InitFn(Protocol):
    def __call__(self, params: Params, hparams: HParams = ...) -> State: ...


class UpdateFn(Protocol):
    def __call__(
        self, grads: Updates, state: State, params: Params | None, hparams: HParams
    ) -> tuple[Updates, State]: ...


# --------------------------------------------------------------------------------------
# Small numerical helpers shared by the optimizers (written in optax's operation order,
# so that float64 trajectories agree with optax to rounding).
# --------------------------------------------------------------------------------------


def moving_average(x: jax.Array, average: jax.Array, decay: Any) -> jax.Array:
    """Exponential moving average ``(1 - decay) * x + decay * average``."""
    return (1 - decay) * x + decay * average


def bias_corrected(moment: jax.Array, decay: Any, count: jax.Array) -> jax.Array:
    """Adam's bias correction ``moment / (1 - decay**count)``, divided in the moment's dtype."""
    return moment / (1 - decay**count).astype(moment.dtype)


def scale_by_learning_rate(updates: Updates, learning_rate: Any) -> Updates:
    """The last stage of every optimizer: ``u <- (-learning_rate) * u``."""
    return jax.tree.map(lambda u: (-1 * learning_rate) * u, updates)


# --------------------------------------------------------------------------------------
# Hyperparameter ranges
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """An interval of allowed values; ``check`` raises ``ValueError`` naming the value."""

    low: float
    high: float = math.inf
    low_closed: bool = True
    high_closed: bool = False

    def __str__(self) -> str:
        left = "[" if self.low_closed else "("
        right = "]" if self.high_closed and math.isfinite(self.high) else ")"
        return f"{left}{self.low:g}, {self.high:g}{right}"

    def contains(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return bool(math.isfinite(value) and above and below)

    def check(self, name: str, value: Any) -> None:
        """Raise ``ValueError`` naming ``name`` if any element of ``value`` lies outside."""
        if isinstance(value, jax.core.Tracer):
            return  # traced values were checked where they were built
        for v in np.ravel(np.asarray(value, dtype=float)):
            if not self.contains(float(v)):
                raise ValueError(f"hyperparameter {name}={v:g} is out of range: allowed {self}")


POSITIVE = Range(0.0, low_closed=False)
NON_NEGATIVE = Range(0.0)
DECAY = Range(0.0, 1.0)


# --------------------------------------------------------------------------------------
# The registry entry
# --------------------------------------------------------------------------------------


class PureOptimizer(NamedTuple):
    """The two pure functions of an optimizer."""

    init: InitFn
    update: UpdateFn


@dataclass(frozen=True)
class OptimizerSpec:
    """Everything optbench knows about one optimizer.

    Attributes:
      name: registry name.
      summary: one line with the update rule.
      init, update: the pure functions (see the module docstring).
      defaults: default hyperparameters (optax's, plus a learning rate where optax has none).
      ranges: the allowed range of each hyperparameter.
      optax_factory: builds the optax counterpart from the same keyword hyperparameters.
      optax_call: how that counterpart is called, for tables and docs.
      gradient: where the gradient comes from ("full batch", "one sample", "mini-batch",
        or "any"); GD, SGD and mini-batch SGD differ only in this.
    """

    name: str
    summary: str
    init: InitFn
    update: UpdateFn
    defaults: Mapping[str, float]
    ranges: Mapping[str, Range]
    optax_factory: Callable[..., optax.GradientTransformation]
    optax_call: str
    gradient: str = "any"
    reference: str = ""
    notes: str = field(default="", repr=False)

    @property
    def pure(self) -> PureOptimizer:
        return PureOptimizer(self.init, self.update)

    def hparams(self, **overrides: Any) -> dict[str, Any]:
        """The default hyperparameters with ``overrides`` applied, checked against ``ranges``."""
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"{self.name} has no hyperparameter {unknown[0]!r}; "
                f"allowed: {', '.join(self.defaults)}"
            )
        merged = {**self.defaults, **overrides}
        for name, value in merged.items():
            self.ranges[name].check(name, value)
        return merged

    def transformation(self, **hparams: Any) -> optax.GradientTransformation:
        """This optimizer as an ``optax.GradientTransformation`` with fixed hyperparameters."""
        return as_gradient_transformation(self.pure, self.hparams(**hparams))

    def optax_counterpart(self, **hparams: Any) -> optax.GradientTransformation:
        """optax's own implementation with the same hyperparameters."""
        return self.optax_factory(**self.hparams(**hparams))


def as_gradient_transformation(
    optimizer: PureOptimizer, hparams: HParams
) -> optax.GradientTransformation:
    """Close a pure optimizer over ``hparams`` so it composes with ``optax.chain``."""
    hparams = MappingProxyType(dict(hparams))

    def init_fn(params: Params) -> State:
        return optimizer.init(params, hparams)

    def update_fn(updates: Updates, state: State, params: Params | None = None):
        return optimizer.update(updates, state, params, hparams)

    return optax.GradientTransformation(init_fn, update_fn)


def zeros_like(params: Params) -> Params:
    return jax.tree.map(jnp.zeros_like, params)


def full_like(params: Params, value: Any) -> Params:
    return jax.tree.map(lambda p: jnp.full_like(p, value), params)
