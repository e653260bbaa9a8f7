"""RMSprop (Hinton 2012) and its centered form (Graves 2013)."""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import jax
import optax

from optbench.optimizers.base import (
    DECAY,
    NON_NEGATIVE,
    POSITIVE,
    HParams,
    OptimizerSpec,
    Params,
    Updates,
    full_like,
    moving_average,
    scale_by_learning_rate,
    zeros_like,
)

DEFAULTS = MappingProxyType(
    {"learning_rate": 1e-2, "decay": 0.9, "eps": 1e-8, "initial_scale": 0.0}
)


class RMSpropState(NamedTuple):
    """``nu``: decaying average of squared gradients, started at ``initial_scale``."""

    nu: Params


class CenteredRMSpropState(NamedTuple):
    """``mu``: decaying average of gradients; ``nu``: of squared gradients."""

    mu: Params
    nu: Params


def init(params: Params, hparams: HParams = DEFAULTS) -> RMSpropState:
    return RMSpropState(nu=full_like(params, hparams["initial_scale"]))


def update(
    grads: Updates, state: RMSpropState, params: Params | None, hparams: HParams
) -> tuple[Updates, RMSpropState]:
    """``nu <- decay nu + (1-decay) g^2;  u = -lr * g / sqrt(nu + eps)``."""
    del params
    decay, eps = hparams["decay"], hparams["eps"]
    nu = jax.tree.map(lambda g, n: moving_average(g * g, n, decay), grads, state.nu)
    scaled = jax.tree.map(lambda g, n: jax.lax.rsqrt(n + eps) * g, grads, nu)
    return scale_by_learning_rate(scaled, hparams["learning_rate"]), RMSpropState(nu)


def centered_init(params: Params, hparams: HParams = DEFAULTS) -> CenteredRMSpropState:
    return CenteredRMSpropState(
        mu=zeros_like(params), nu=full_like(params, hparams["initial_scale"])
    )


def centered_update(
    grads: Updates, state: CenteredRMSpropState, params: Params | None, hparams: HParams
) -> tuple[Updates, CenteredRMSpropState]:
    """``mu <- decay mu + (1-decay) g;  nu <- decay nu + (1-decay) g^2;
    u = -lr * g / sqrt(nu - mu^2 + eps)``."""
    del params
    decay, eps = hparams["decay"], hparams["eps"]
    mu = jax.tree.map(lambda g, m: moving_average(g, m, decay), grads, state.mu)
    nu = jax.tree.map(lambda g, n: moving_average(g * g, n, decay), grads, state.nu)
    scaled = jax.tree.map(lambda g, m, n: jax.lax.rsqrt(n - m * m + eps) * g, grads, mu, nu)
    return scale_by_learning_rate(scaled, hparams["learning_rate"]), CenteredRMSpropState(mu, nu)


_RANGES = {"learning_rate": POSITIVE, "decay": DECAY, "eps": NON_NEGATIVE,
           "initial_scale": NON_NEGATIVE}

RMSPROP = OptimizerSpec(
    name="rmsprop",
    summary="nu <- decay nu + (1-decay) g^2;  p <- p - lr * g / sqrt(nu + eps)",
    init=init,
    update=update,
    defaults=DEFAULTS,
    ranges=_RANGES,
    optax_factory=lambda learning_rate, decay, eps, initial_scale: optax.rmsprop(
        learning_rate, decay, eps, initial_scale
    ),
    optax_call="optax.rmsprop(learning_rate, decay, eps, initial_scale)",
    reference="Hinton, Coursera lecture 6e (2012)",
    notes="eps inside the sqrt (optax, Keras); torch adds it outside and defaults decay to 0.99.",
)

RMSPROP_CENTERED = OptimizerSpec(
    name="rmsprop_centered",
    summary="p <- p - lr * g / sqrt(nu - mu^2 + eps)  (mu, nu: averages of g, g^2)",
    init=centered_init,
    update=centered_update,
    defaults=DEFAULTS,
    ranges=_RANGES,
    optax_factory=lambda learning_rate, decay, eps, initial_scale: optax.rmsprop(
        learning_rate, decay, eps, initial_scale, centered=True
    ),
    optax_call="optax.rmsprop(learning_rate, decay, eps, initial_scale, centered=True)",
    reference="Graves (2013), eqs. 38-41 (without momentum)",
)


def rmsprop(
    learning_rate: float,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    centered: bool = False,
) -> optax.GradientTransformation:
    """RMSprop: ``nu <- decay nu + (1-decay) g^2;  p <- p - lr * g / sqrt(nu + eps)``.

    Hinton (2012, Coursera lecture 6e). With ``centered=True``, Graves (2013): also track
    ``mu``, the average of ``g``, and divide by ``sqrt(nu - mu^2 + eps)``, an estimate of
    the gradient's standard deviation. Follows optax: ``eps`` *inside* the square root and
    ``nu`` starting at ``initial_scale`` (0), so the first step is about ``3.16 lr sign(g)``.
    torch's RMSprop defaults to ``alpha=0.99`` and adds ``eps`` *outside* the root.
    """
    spec = RMSPROP_CENTERED if centered else RMSPROP
    return spec.transformation(
        learning_rate=learning_rate, decay=decay, eps=eps, initial_scale=initial_scale
    )
