"""Adadelta (Zeiler 2012): steps whose units match the parameters', no learning rate needed.

The course notes' lecture 20 calls "Adadelta" a method that divides by a decaying RMS of
gradients with decay 0.95. That is RMSprop (see :mod:`optbench.optimizers.rmsprop`, with
``decay=0.95``). Zeiler's Adadelta also keeps a decaying average of squared *updates* and
multiplies by its root, which is what this module implements, as optax does.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
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


class AdadeltaState(NamedTuple):
    """Decaying averages of squared gradients ``E[g^2]`` and squared steps ``E[dx^2]``."""

    e_g: Params
    e_x: Params


@functools.cache
def rule() -> PureOptimizer:
    """Adadelta's pure functions, with optax's decoupled-from-nothing weight decay
    ``g <- g + weight_decay * p`` before the step (``weight_decay = 0``: none)."""

    def init(params: Params, hparams: HParams | None = None) -> AdadeltaState:
        del hparams
        return AdadeltaState(e_g=optax.tree.zeros_like(params),
                             e_x=optax.tree.zeros_like(params))

    def update(grads: Updates, state: AdadeltaState, params: Params | None, hparams: HParams
               ) -> tuple[Updates, AdadeltaState]:
        """``g <- g + wd p;  E[g^2] <- rho E[g^2] + (1-rho) g^2;
        d = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g;  E[dx^2] <- rho E[dx^2] + (1-rho) d^2;
        u = -lr * d``."""
        rho, eps, decay = hparams["rho"], hparams["eps"], hparams["weight_decay"]
        if not (isinstance(decay, int | float) and decay == 0):  # optax skips a constant 0
            grads = jax.tree.map(lambda g, p: g + decay * p, grads, params)
        e_g = optax.tree.update_moment(grads, state.e_g, rho, 2)
        step = jax.tree.map(
            lambda g, eg, ex: (jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps)) * g,
            grads, e_g, state.e_x)
        e_x = optax.tree.update_moment(step, state.e_x, rho, 2)
        return scale_by_learning_rate(step, hparams["learning_rate"]), AdadeltaState(e_g, e_x)

    return PureOptimizer(init, update)


def adadelta(
    learning_rate: optax.ScalarOrSchedule | None = None,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Adadelta: ``d = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g;  p <- p - lr * d``.

    Zeiler (2012), Algorithm 1, with an optional learning rate. optax's signature, with one
    deliberate difference: **``learning_rate=None`` is Zeiler's method, a step of 1 that
    descends** (as torch's default lr=1.0). optax 0.2.8's ``adadelta()`` with ``None``
    skips the learning-rate stage and with it the minus sign, so it *ascends*
    (``optax.adadelta().update(+1 gradient)`` is +0.0032). With a learning rate given, the
    two agree. ``weight_decay`` adds ``weight_decay * p`` to the gradient first (optax's
    ``add_decayed_weights``), on the leaves ``weight_decay_mask`` selects; a schedule or a
    mask for it runs through optax's own stage. Keras defaults to lr=1e-3, rho=0.95,
    eps=1e-7; the paper's experiments used rho=0.95.
    """
    arguments = dict(locals())
    if learning_rate is None:  # Zeiler's method: a step of 1
        arguments["learning_rate"] = ADADELTA.defaults["learning_rate"]
    if arguments.pop("weight_decay_mask") is None and not callable(weight_decay):
        return ADADELTA.from_arguments(arguments)
    return optax.chain(optax.add_decayed_weights(weight_decay, weight_decay_mask),
                       adadelta(learning_rate, rho, eps))


ADADELTA = OptimizerSpec(
    name="adadelta",
    summary="d = RMS[dx] / RMS[g] * g;  p <- p - lr * d",
    rule=rule,
    defaults=float_defaults(adadelta, learning_rate=1.0),
    ranges={"learning_rate": NON_NEGATIVE, "rho": DECAY, "eps": NON_NEGATIVE,
            "weight_decay": NON_NEGATIVE},
    optax_factory=optax.adadelta,
    reference="Zeiler (2012), Algorithm 1",
    notes="learning_rate defaults to 1.0 (Zeiler, torch); optax's default None ascends.",
)
