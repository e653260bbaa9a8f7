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

import functools
import inspect
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
# Small numerical helpers shared by the optimizers. The moment updates are optax.tree's own
# (``update_moment``, ``update_moment_per_elem_norm``, ``bias_correction``), so that float64
# trajectories agree with optax to rounding and complex parameters work as in optax.
# --------------------------------------------------------------------------------------


def scale_by_learning_rate(updates: Updates, learning_rate: Any) -> Updates:
    """The learning-rate stage: ``u <- (-learning_rate) * u``, the factor cast to each
    update's dtype (as optax's ``scale_by_schedule`` does), so bfloat16 stays bfloat16."""
    return jax.tree.map(lambda u: jnp.asarray(-1 * learning_rate, u.dtype) * u, updates)


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|^2`` (``x * x`` for real ``x``), as optax's ``numerics.abs_sq``."""
    return (x.conj() * x).real


def canonical_dtype(dtype: Any) -> Any:
    """``None`` (follow the parameters) or a canonical JAX dtype, hashable for caching."""
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def float_defaults(factory: Callable, **extra: float) -> Mapping[str, float]:
    """The numeric hyperparameters of ``factory`` and their defaults, read from its signature
    (where they are spelled), after ``extra`` (a learning rate where optax requires one)."""
    found = {name: p.default for name, p in inspect.signature(factory).parameters.items()
             if isinstance(p.default, float) and name not in extra}
    return MappingProxyType({**extra, **found})


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


NON_NEGATIVE = Range(0.0)
DECAY = Range(0.0, 1.0)


# --------------------------------------------------------------------------------------
# The registry entry
# --------------------------------------------------------------------------------------


class PureOptimizer(NamedTuple):
    """The two pure functions of an optimizer, and for an adaptive method its diagonal
    preconditioner: ``preconditioner(state, hparams)``, the P (a pytree like the
    parameters) by which the step that produced ``state`` divided its gradient (Adam: its
    first moment) ``m``, ``u = -lr P^-1 m`` before any momentum stage after it; the
    ``preconditioned_sharpness`` metric is the top
    eigenvalue of P^-1/2 H P^-1/2 (Cohen et al. 2022), undefined before the first step.

    A bundle of several rules (:func:`optbench.engine.bundle.bundle`) also lists them as
    ``members``, each seeing only its own hyperparameters, and ``member_index(hparams)`` names
    the one that runs, so that the engine can choose it once per run instead of every step."""

    init: InitFn
    update: UpdateFn
    preconditioner: Callable[[State, HParams], Params] | None = None
    members: tuple[PureOptimizer, ...] = ()
    member_index: Callable[[HParams], Any] | None = None


@dataclass(frozen=True)
class OptimizerSpec:
    """Everything optbench knows about one optimizer.

    Attributes:
      name: registry name.
      summary: one line with the update rule.
      rule: builds the pure functions (see the module docstring) for a ``structure``: the
        options that change the update's shape rather than its numbers (Nesterov, centering,
        a momentum stage, a state dtype); cached, so equal structures share one rule.
      defaults: default hyperparameters (optax's, read from the factory's signature, plus a
        learning rate where optax requires one).
      ranges: the allowed range of each hyperparameter, including optional ones (no default:
        giving one switches its stage on, as ``momentum`` of optax's ``sgd``).
      optax_factory: optax's factory taking the same keyword hyperparameters.
      structure: this entry's options for ``rule``.
      gradient: where the gradient comes from ("full batch", "one sample", "mini-batch",
        or "any"); GD, SGD and mini-batch SGD differ only in this.
    """

    name: str
    summary: str
    rule: Callable[..., PureOptimizer]
    defaults: Mapping[str, float]
    ranges: Mapping[str, Range]
    optax_factory: Callable[..., optax.GradientTransformation]
    structure: Mapping[str, Any] = field(default_factory=dict)
    gradient: str = "any"
    reference: str = ""
    notes: str = field(default="", repr=False)

    @property
    def pure(self) -> PureOptimizer:
        return self.rule(**self.structure)

    @property
    def init(self) -> InitFn:
        return self.pure.init

    @property
    def update(self) -> UpdateFn:
        return self.pure.update

    @property
    def optax_call(self) -> str:
        """How the optax counterpart is called, for tables and docs."""
        factory, fixed = self.optax_factory, {}
        if isinstance(factory, functools.partial):
            factory, fixed = factory.func, factory.keywords
        module = "optax" if factory.__module__.startswith("optax") else factory.__module__
        arguments = [*self.defaults, *(f"{k}={v!r}" for k, v in fixed.items())]
        return f"{module}.{factory.__name__}({', '.join(arguments)})"

    def hparams(self, **overrides: Any) -> dict[str, Any]:
        """The default hyperparameters with ``overrides`` applied, checked against ``ranges``
        (schedules, callables of the step count, are checked by nobody)."""
        unknown = sorted(set(overrides) - set(self.ranges))
        if unknown:
            raise ValueError(
                f"{self.name} has no hyperparameter {unknown[0]!r}; "
                f"allowed: {', '.join(self.ranges)}"
            )
        merged = {**self.defaults, **overrides}
        for name, value in merged.items():
            if not callable(value):
                self.ranges[name].check(name, value)
        return merged

    def transformation(self, **hparams: Any) -> optax.GradientTransformationExtraArgs:
        """This optimizer as an optax ``GradientTransformation`` with fixed hyperparameters
        (an optional one, given, switches its stage on)."""
        return self.from_arguments(self.hparams(**hparams))

    def optax_counterpart(self, **hparams: Any) -> optax.GradientTransformation:
        """optax's own implementation with the same hyperparameters."""
        return self.optax_factory(**self.hparams(**hparams))

    def from_arguments(self, arguments: Mapping[str, Any]) -> optax.GradientTransformationExtraArgs:
        """A factory's call (its ``locals()``, optax's keyword names) as a transformation:
        arguments named in ``ranges`` are hyperparameters (``None``: the default, or no stage
        for an optional one), the others join ``structure``; an optional hyperparameter
        that is given sets its name to ``True`` in the structure too."""
        if "learning_rate" in arguments and arguments["learning_rate"] is None:
            # optax's None drops the learning-rate stage and with it the minus sign (adadelta
            # turns None into Zeiler's step of 1 before it gets here)
            raise TypeError(f"{self.name}: learning_rate=None is not supported; give a number "
                            "or a schedule")
        data = {k: v for k, v in arguments.items() if k in self.ranges and v is not None}
        optional = {k: k in data for k in self.ranges if k not in self.defaults}
        options = {k: canonical_dtype(v) if k.endswith("dtype") else v
                   for k, v in arguments.items() if k not in self.ranges}
        rule = self.rule(**{**self.structure, **options, **optional})
        return as_gradient_transformation(rule, self.hparams(**data))


class ScheduleState(NamedTuple):
    """The step count of a scheduled learning rate (optax's ``ScaleByScheduleState``)."""

    count: jax.Array


def as_gradient_transformation(
    optimizer: PureOptimizer, hparams: HParams
) -> optax.GradientTransformationExtraArgs:
    """Close a pure optimizer over ``hparams``, with optax's interface: it composes with
    ``optax.chain``, ``update`` takes and ignores extra keyword arguments (optax's
    ``GradientTransformationExtraArgs``), and a ``learning_rate`` that is callable is a
    schedule of the step count, whose count the state keeps next to the rule's."""
    hparams = MappingProxyType(dict(hparams))
    schedule = hparams.get("learning_rate")
    if not callable(schedule):

        def init_fn(params: Params) -> State:
            return optimizer.init(params, hparams)

        def update_fn(updates: Updates, state: State, params: Params | None = None,
                      **extra_args: Any):
            del extra_args
            return optimizer.update(updates, state, params, hparams)

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    def at(count: jax.Array) -> HParams:
        return {**hparams, "learning_rate": schedule(count)}

    def scheduled_init(params: Params) -> State:
        count = jnp.zeros([], jnp.int32)
        return optimizer.init(params, at(count)), ScheduleState(count)

    def scheduled_update(updates: Updates, state: State, params: Params | None = None,
                         **extra_args: Any):
        del extra_args
        inner, (count,) = state
        updates, inner = optimizer.update(updates, inner, params, at(count))
        return updates, (inner, ScheduleState(optax.safe_increment(count)))

    return optax.GradientTransformationExtraArgs(scheduled_init, scheduled_update)
