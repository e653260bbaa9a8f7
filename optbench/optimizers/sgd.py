"""Gradient descent and its momentum variants.

GD, SGD and mini-batch SGD are one update rule, ``u = -lr * g``; they differ only in where
``g`` comes from: the full data set (GD), one sample (SGD) or a batch of k samples
(mini-batch). That is a property of how a *task* produces gradients, so the three
registry entries share these functions and differ in their ``gradient`` field.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import jax
import optax

from optbench.optimizers.base import (
    DECAY,
    POSITIVE,
    HParams,
    OptimizerSpec,
    Params,
    Updates,
    scale_by_learning_rate,
    zeros_like,
)

SGD_DEFAULTS = MappingProxyType({"learning_rate": 1e-3})
MOMENTUM_DEFAULTS = MappingProxyType({"learning_rate": 1e-3, "momentum": 0.9})


class GDState(NamedTuple):
    """Plain gradient descent keeps no state."""


class TraceState(NamedTuple):
    """The momentum buffer ``v`` (optax's ``trace``)."""

    trace: Params


def gd_init(params: Params, hparams: HParams = SGD_DEFAULTS) -> GDState:
    del params, hparams
    return GDState()


def gd_update(
    grads: Updates, state: GDState, params: Params | None, hparams: HParams
) -> tuple[Updates, GDState]:
    """``u = -lr * g``."""
    del params
    return scale_by_learning_rate(grads, hparams["learning_rate"]), state


def momentum_init(params: Params, hparams: HParams = MOMENTUM_DEFAULTS) -> TraceState:
    del hparams
    return TraceState(trace=zeros_like(params))


def _trace_update(nesterov: bool):
    def update(
        grads: Updates, state: TraceState, params: Params | None, hparams: HParams
    ) -> tuple[Updates, TraceState]:
        del params
        b = hparams["momentum"]
        trace = jax.tree.map(lambda g, v: g + b * v, grads, state.trace)
        direction = jax.tree.map(lambda g, v: g + b * v, grads, trace) if nesterov else trace
        return scale_by_learning_rate(direction, hparams["learning_rate"]), TraceState(trace)

    return update


momentum_update = _trace_update(nesterov=False)
momentum_update.__doc__ = "Heavy ball: ``v = g + b v``; ``u = -lr * v``."
nesterov_update = _trace_update(nesterov=True)
nesterov_update.__doc__ = "Nesterov: ``v = g + b v``; ``u = -lr * (g + b v)`` (the new ``v``)."


def _gd_spec(name: str, gradient: str) -> OptimizerSpec:
    return OptimizerSpec(
        name=name,
        summary="p <- p - lr * g",
        init=gd_init,
        update=gd_update,
        defaults=SGD_DEFAULTS,
        ranges={"learning_rate": POSITIVE},
        optax_factory=lambda learning_rate: optax.sgd(learning_rate),
        optax_call="optax.sgd(learning_rate)",
        gradient=gradient,
        reference="Robbins & Monro (1951); Cauchy (1847)",
    )


GD = _gd_spec("gd", "full batch")
SGD = _gd_spec("sgd", "one sample")
MINIBATCH = _gd_spec("minibatch", "mini-batch")

_MOMENTUM_RANGES = {"learning_rate": POSITIVE, "momentum": DECAY}

MOMENTUM = OptimizerSpec(
    name="momentum",
    summary="v <- g + b v;  p <- p - lr * v",
    init=momentum_init,
    update=momentum_update,
    defaults=MOMENTUM_DEFAULTS,
    ranges=_MOMENTUM_RANGES,
    optax_factory=lambda learning_rate, momentum: optax.sgd(learning_rate, momentum),
    optax_call="optax.sgd(learning_rate, momentum)",
    reference="Polyak (1964)",
    notes="No (1 - b) damping, as in optax and torch (dampening=0); Keras puts lr in the buffer.",
)

NESTEROV = OptimizerSpec(
    name="nesterov",
    summary="v <- g + b v;  p <- p - lr * (g + b v)",
    init=momentum_init,
    update=nesterov_update,
    defaults=MOMENTUM_DEFAULTS,
    ranges=_MOMENTUM_RANGES,
    optax_factory=lambda learning_rate, momentum: optax.sgd(
        learning_rate, momentum, nesterov=True
    ),
    optax_call="optax.sgd(learning_rate, momentum, nesterov=True)",
    reference="Nesterov (1983); Sutskever et al. (2013)",
    notes="The gradient is taken at the current point (Sutskever's reparametrisation), "
    "as in optax, torch and Keras.",
)


def gd(learning_rate: float) -> optax.GradientTransformation:
    """Full-batch gradient descent: ``p <- p - lr * g`` (Cauchy 1847).

    Same rule as :func:`sgd` and :func:`minibatch`; only the gradient's data differ.
    optax counterpart: ``optax.sgd(learning_rate)``. torch's SGD defaults to lr=1e-3,
    Keras's to 0.01; optax (and this function) require one.
    """
    return GD.transformation(learning_rate=learning_rate)


def sgd(learning_rate: float) -> optax.GradientTransformation:
    """Stochastic gradient descent on one sample at a time: ``p <- p - lr * g_i``.

    Robbins & Monro (1951). Same rule as :func:`gd`; the task draws the sample.
    """
    return SGD.transformation(learning_rate=learning_rate)


def minibatch(learning_rate: float) -> optax.GradientTransformation:
    """Mini-batch SGD: ``p <- p - lr * mean_{i in batch} g_i``.

    Same rule as :func:`gd`; the task draws the batch. A *sum* over the batch instead of a
    mean scales the effective learning rate by the batch size.
    """
    return MINIBATCH.transformation(learning_rate=learning_rate)


def momentum(learning_rate: float, momentum: float = 0.9) -> optax.GradientTransformation:
    """Heavy-ball momentum (Polyak 1964): ``v <- g + b v;  p <- p - lr * v``.

    Equals ``optax.sgd(lr, momentum=b)`` and torch's SGD with ``dampening=0``. The buffer is
    not damped by ``(1 - b)``: the effective step on a constant gradient is ``lr / (1 - b)``.
    """
    return MOMENTUM.transformation(learning_rate=learning_rate, momentum=momentum)


def nesterov(learning_rate: float, momentum: float = 0.9) -> optax.GradientTransformation:
    """Nesterov momentum: ``v <- g + b v;  p <- p - lr * (g + b v)``.

    Nesterov (1983) in the form of Sutskever et al. (2013), as optax, torch and Keras use
    it: the gradient is evaluated at the current point, not at a look-ahead point.
    Equals ``optax.sgd(lr, momentum=b, nesterov=True)``.
    """
    return NESTEROV.transformation(learning_rate=learning_rate, momentum=momentum)

