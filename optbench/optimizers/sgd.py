"""Gradient descent and its momentum variants.

GD, SGD and mini-batch SGD are one update rule, ``u = -lr * g``; they differ only in where
``g`` comes from: the full data set (GD), one sample (SGD) or a batch of k samples
(mini-batch). That is a property of how a *task* produces gradients, so the three
registry entries share these functions and differ in their ``gradient`` field.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import optax

from optbench.optimizers.base import (
    DECAY,
    NON_NEGATIVE,
    HParams,
    OptimizerSpec,
    Params,
    PureOptimizer,
    Updates,
    float_defaults,
    scale_by_learning_rate,
)


class GDState(NamedTuple):
    """Plain gradient descent keeps no state."""


class TraceState(NamedTuple):
    """The momentum buffer ``v`` (optax's ``trace``)."""

    trace: Params


def trace(updates: Updates, state: TraceState, decay: Any, nesterov: bool,
          accumulator_dtype: Any = None) -> tuple[Updates, TraceState]:
    """optax's ``trace``: ``v <- u + decay v``; returns ``v`` (Nesterov: ``u + decay v``)
    and the buffer, stored in ``accumulator_dtype`` (default: as it was)."""
    new = jax.tree.map(lambda g, v: g + decay * v, updates, state.trace)
    direction = jax.tree.map(lambda g, v: g + decay * v, updates, new) if nesterov else new
    return direction, TraceState(optax.tree.cast(new, accumulator_dtype))


@functools.cache
def rule(momentum: bool = False, nesterov: bool = False, accumulator_dtype: Any = None
         ) -> PureOptimizer:
    """SGD's pure functions: ``u = -lr * g``, or with ``momentum`` a heavy-ball (or
    ``nesterov``) buffer before the learning rate, kept in ``accumulator_dtype``."""

    def init(params: Params, hparams: HParams | None = None) -> GDState | TraceState:
        del hparams
        if not momentum:
            return GDState()
        return TraceState(optax.tree.zeros_like(params, dtype=accumulator_dtype))

    def update(grads: Updates, state: GDState | TraceState, params: Params | None,
               hparams: HParams) -> tuple[Updates, GDState | TraceState]:
        """``v = g + b v``; ``u = -lr * v`` (Nesterov: ``-lr * (g + b v)``, the new ``v``);
        without momentum ``u = -lr * g``."""
        del params
        if momentum:
            grads, state = trace(grads, state, hparams["momentum"], nesterov,
                                 accumulator_dtype)
        return scale_by_learning_rate(grads, hparams["learning_rate"]), state

    return PureOptimizer(init, update)


def sgd(
    learning_rate: optax.ScalarOrSchedule,
    momentum: float | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Stochastic gradient descent: ``p <- p - lr * g`` (Robbins & Monro 1951), optax's
    signature: with ``momentum``, heavy ball ``v <- g + b v;  p <- p - lr * v`` (or
    ``nesterov``), the buffer kept in ``accumulator_dtype``. The same rule as :func:`gd`
    and :func:`minibatch`; the task draws the sample.
    """
    spec = SGD if momentum is None else NESTEROV if nesterov else MOMENTUM
    return spec.from_arguments({k: v for k, v in locals().items() if k != "spec"})


def gd(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    """Full-batch gradient descent: ``p <- p - lr * g`` (Cauchy 1847).

    Same rule as :func:`sgd` and :func:`minibatch`; only the gradient's data differ.
    optax counterpart: ``optax.sgd(learning_rate)``. torch's SGD defaults to lr=1e-3,
    Keras's to 0.01; optax (and this function) require one.
    """
    return GD.from_arguments(locals())


def minibatch(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    """Mini-batch SGD: ``p <- p - lr * mean_{i in batch} g_i``.

    Same rule as :func:`gd`; the task draws the batch. A *sum* over the batch instead of a
    mean scales the effective learning rate by the batch size.
    """
    return MINIBATCH.from_arguments(locals())


def momentum(learning_rate: optax.ScalarOrSchedule, momentum: float = 0.9
             ) -> optax.GradientTransformationExtraArgs:
    """Heavy-ball momentum (Polyak 1964): ``v <- g + b v;  p <- p - lr * v``.

    Equals ``optax.sgd(lr, momentum=b)`` and torch's SGD with ``dampening=0``. The buffer is
    not damped by ``(1 - b)``: the effective step on a constant gradient is ``lr / (1 - b)``.
    """
    return MOMENTUM.from_arguments(locals())


def nesterov(learning_rate: optax.ScalarOrSchedule, momentum: float = 0.9
             ) -> optax.GradientTransformationExtraArgs:
    """Nesterov momentum: ``v <- g + b v;  p <- p - lr * (g + b v)``.

    Nesterov (1983) in the form of Sutskever et al. (2013), as optax, torch and Keras use
    it: the gradient is evaluated at the current point, not at a look-ahead point.
    Equals ``optax.sgd(lr, momentum=b, nesterov=True)``.
    """
    return NESTEROV.from_arguments(locals())


_SGD_LEARNING_RATE = 1e-3  # the registry's default; optax requires one


def _gd_spec(name: str, gradient: str) -> OptimizerSpec:
    return OptimizerSpec(
        name=name,
        summary="p <- p - lr * g",
        rule=rule,
        defaults=float_defaults(gd, learning_rate=_SGD_LEARNING_RATE),
        ranges={"learning_rate": NON_NEGATIVE},
        optax_factory=optax.sgd,
        gradient=gradient,
        reference="Robbins & Monro (1951); Cauchy (1847)",
    )


GD = _gd_spec("gd", "full batch")
SGD = _gd_spec("sgd", "one sample")
MINIBATCH = _gd_spec("minibatch", "mini-batch")

_MOMENTUM_RANGES = {"learning_rate": NON_NEGATIVE, "momentum": DECAY}

MOMENTUM = OptimizerSpec(
    name="momentum",
    summary="v <- g + b v;  p <- p - lr * v",
    rule=rule,
    structure={"momentum": True},
    defaults=float_defaults(momentum, learning_rate=_SGD_LEARNING_RATE),
    ranges=_MOMENTUM_RANGES,
    optax_factory=optax.sgd,
    reference="Polyak (1964)",
    notes="No (1 - b) damping, as in optax and torch (dampening=0); Keras puts lr in the buffer.",
)

NESTEROV = OptimizerSpec(
    name="nesterov",
    summary="v <- g + b v;  p <- p - lr * (g + b v)",
    rule=rule,
    structure={"momentum": True, "nesterov": True},
    defaults=float_defaults(nesterov, learning_rate=_SGD_LEARNING_RATE),
    ranges=_MOMENTUM_RANGES,
    optax_factory=functools.partial(optax.sgd, nesterov=True),
    reference="Nesterov (1983); Sutskever et al. (2013)",
    notes="The gradient is taken at the current point (Sutskever's reparametrisation), "
    "as in optax, torch and Keras.",
)
