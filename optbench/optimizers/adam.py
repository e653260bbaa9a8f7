"""Adam (Kingma & Ba 2015): momentum on bias-corrected first and second moments."""

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
    bias_corrected,
    moving_average,
    scale_by_learning_rate,
    zeros_like,
)

DEFAULTS = MappingProxyType(
    {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": 0.0}
)


class AdamState(NamedTuple):
    """Step count and the *uncorrected* moments ``mu`` (of g) and ``nu`` (of g^2)."""

    count: jax.Array
    mu: Params
    nu: Params


def init(params: Params, hparams: HParams = DEFAULTS) -> AdamState:
    del hparams
    return AdamState(
        count=jnp.zeros([], jnp.int32), mu=zeros_like(params), nu=zeros_like(params)
    )


def update(
    grads: Updates, state: AdamState, params: Params | None, hparams: HParams
) -> tuple[Updates, AdamState]:
    """``mu <- b1 mu + (1-b1) g;  nu <- b2 nu + (1-b2) g^2;
    u = -lr * mu_hat / (sqrt(nu_hat + eps_root) + eps)``, hats divided by ``1 - b^t``."""
    del params
    b1, b2 = hparams["b1"], hparams["b2"]
    eps, eps_root = hparams["eps"], hparams["eps_root"]
    mu = jax.tree.map(lambda g, m: moving_average(g, m, b1), grads, state.mu)
    nu = jax.tree.map(lambda g, n: moving_average(g * g, n, b2), grads, state.nu)
    count = optax.safe_increment(state.count)
    scaled = jax.tree.map(
        lambda m, n: bias_corrected(m, b1, count)
        / (jnp.sqrt(bias_corrected(n, b2, count) + eps_root) + eps),
        mu,
        nu,
    )
    return scale_by_learning_rate(scaled, hparams["learning_rate"]), AdamState(count, mu, nu)


ADAM = OptimizerSpec(
    name="adam",
    summary="p <- p - lr * mu_hat / (sqrt(nu_hat + eps_root) + eps)",
    init=init,
    update=update,
    defaults=DEFAULTS,
    ranges={"learning_rate": POSITIVE, "b1": DECAY, "b2": DECAY, "eps": NON_NEGATIVE,
            "eps_root": NON_NEGATIVE},
    optax_factory=lambda learning_rate, b1, b2, eps, eps_root: optax.adam(
        learning_rate, b1, b2, eps, eps_root
    ),
    optax_call="optax.adam(learning_rate, b1, b2, eps, eps_root)",
    reference="Kingma & Ba (2015), Algorithm 1",
    notes="Keras uses the 'epsilon hat' form with eps=1e-7; optax and torch match the paper.",
)


def adam(
    learning_rate: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> optax.GradientTransformation:
    """Adam: ``p <- p - lr * mu_hat / (sqrt(nu_hat + eps_root) + eps)``.

    Kingma & Ba (2015), Algorithm 1: ``mu``, ``nu`` are moving averages of ``g`` and ``g^2``;
    the hats divide them by ``1 - b1^t`` and ``1 - b2^t``. ``eps`` is added outside the root
    of the bias-corrected ``nu`` (as in optax, torch and the paper); ``eps_root`` inside it
    keeps gradients through the update finite. Keras instead uses the paper's "epsilon hat"
    reordering with eps=1e-7, which is a different, time-varying epsilon.
    """
    return ADAM.transformation(learning_rate=learning_rate, b1=b1, b2=b2, eps=eps,
                               eps_root=eps_root)
