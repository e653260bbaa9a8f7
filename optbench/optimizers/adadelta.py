"""Adadelta (Zeiler 2012): steps whose units match the parameters', no learning rate needed.

The course notes' lecture 20 calls "Adadelta" a method that divides by a decaying RMS of
gradients with decay 0.95. That is RMSprop (see :mod:`optbench.optimizers.rmsprop`, with
``decay=0.95``). Zeiler's Adadelta also keeps a decaying average of squared *updates* and
multiplies by its root, which is what this module implements, as optax does.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optbench.optimizers.base import (
    DECAY,
    NON_NEGATIVE,
    POSITIVE,
    HParams,
    OptimizerSpec,
    Params,
    Updates,
    moving_average,
    scale_by_learning_rate,
    zeros_like,
)

DEFAULTS = MappingProxyType({"learning_rate": 1.0, "rho": 0.9, "eps": 1e-6})


class AdadeltaState(NamedTuple):
    """Decaying averages of squared gradients ``E[g^2]`` and squared steps ``E[dx^2]``."""

    e_g: Params
    e_x: Params


def init(params: Params, hparams: HParams = DEFAULTS) -> AdadeltaState:
    del hparams
    return AdadeltaState(e_g=zeros_like(params), e_x=zeros_like(params))


def update(
    grads: Updates, state: AdadeltaState, params: Params | None, hparams: HParams
) -> tuple[Updates, AdadeltaState]:
    """``E[g^2] <- rho E[g^2] + (1-rho) g^2;  d = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g;
    E[dx^2] <- rho E[dx^2] + (1-rho) d^2;  u = -lr * d``."""
    del params
    rho, eps = hparams["rho"], hparams["eps"]
    e_g = jax.tree.map(lambda g, e: moving_average(g * g, e, rho), grads, state.e_g)
    step = jax.tree.map(
        lambda g, eg, ex: (jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps)) * g, grads, e_g, state.e_x
    )
    e_x = jax.tree.map(lambda d, e: moving_average(d * d, e, rho), step, state.e_x)
    return scale_by_learning_rate(step, hparams["learning_rate"]), AdadeltaState(e_g, e_x)


ADADELTA = OptimizerSpec(
    name="adadelta",
    summary="d = RMS[dx] / RMS[g] * g;  p <- p - lr * d",
    init=init,
    update=update,
    defaults=DEFAULTS,
    ranges={"learning_rate": POSITIVE, "rho": DECAY, "eps": NON_NEGATIVE},
    optax_factory=lambda learning_rate, rho, eps: optax.adadelta(learning_rate, rho, eps),
    optax_call="optax.adadelta(learning_rate, rho, eps)",
    reference="Zeiler (2012), Algorithm 1",
    notes="learning_rate defaults to 1.0 (Zeiler, torch); optax's default None ascends.",
)


def adadelta(
    learning_rate: float = 1.0, rho: float = 0.9, eps: float = 1e-6
) -> optax.GradientTransformation:
    """Adadelta: ``d = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g;  p <- p - lr * d``.

    Zeiler (2012), Algorithm 1, with an optional learning rate (the paper's method is
    ``learning_rate=1``, the default here and in torch). **optax's ``adadelta()`` defaults to
    ``learning_rate=None``, which skips the sign flip and ascends**: its counterpart in
    optbench's registry is ``optax.adadelta(learning_rate, rho, eps)`` with the rate given.
    Keras defaults to lr=1e-3, rho=0.95, eps=1e-7; the paper's experiments used rho=0.95.
    """
    return ADADELTA.transformation(learning_rate=learning_rate, rho=rho, eps=eps)
