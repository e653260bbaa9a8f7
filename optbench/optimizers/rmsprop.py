"""RMSprop (Hinton 2012), its centered form (Graves 2013), and optax's options: eps outside
the root, bias correction, and a momentum stage after the learning rate (Nesterov or not)."""

from __future__ import annotations

import functools
from typing import NamedTuple

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
    abs_sq,
    float_defaults,
    scale_by_learning_rate,
)
from optbench.optimizers.sgd import TraceState, trace


class RMSpropState(NamedTuple):
    """``count`` (steps, for bias correction), ``mu``: decaying average of gradients
    (centered only), ``nu``: of squared gradients, started at ``initial_scale``;
    ``trace``: the momentum buffer (with momentum only). Unused fields hold ``()``."""

    count: jax.Array | tuple
    mu: Params
    nu: Params
    momentum: TraceState | tuple


@functools.cache
def rule(centered: bool = False, eps_in_sqrt: bool = True, bias_correction: bool = False,
         momentum: bool = False, nesterov: bool = False) -> PureOptimizer:
    """RMSprop's pure functions for one combination of optax's structural options
    (``momentum``: whether the momentum stage exists; its value is a hyperparameter)."""

    def init(params: Params, hparams: HParams | None = None) -> RMSpropState:
        scale = (hparams or RMSPROP.defaults)["initial_scale"]
        return RMSpropState(
            count=jnp.zeros([], jnp.int32) if bias_correction else (),
            mu=optax.tree.zeros_like(params) if centered else (),
            nu=optax.tree.full_like(params, scale),
            momentum=TraceState(optax.tree.zeros_like(params)) if momentum else ())

    def update(grads: Updates, state: RMSpropState, params: Params | None, hparams: HParams
               ) -> tuple[Updates, RMSpropState]:
        """``nu <- decay nu + (1-decay) g^2;  u = -lr * g / sqrt(nu + eps)``; centered:
        ``sqrt(nu - mu^2 + eps)``; then ``v <- u + m v``, ``u = v`` (or ``u + m v``)."""
        del params
        decay = hparams["decay"]
        nu = optax.tree.update_moment_per_elem_norm(grads, state.nu, decay, 2)
        mu = optax.tree.update_moment(grads, state.mu, decay, 1) if centered else ()
        count = optax.safe_increment(state.count) if bias_correction else state.count
        new_state = RMSpropState(count, mu, nu, state.momentum)
        scaled = jax.tree.map(lambda s, g: s * g, inverse_scale(new_state, hparams), grads)
        updates = scale_by_learning_rate(scaled, hparams["learning_rate"])
        if momentum:
            updates, buffer = trace(updates, state.momentum, hparams["momentum"], nesterov)
            new_state = new_state._replace(momentum=buffer)
        return updates, new_state

    def inverse_scale(state: RMSpropState, hparams: HParams) -> Params:
        """``1 / sqrt(nu + eps)`` (``eps_in_sqrt=False``: ``1 / (sqrt(nu) + eps)``);
        centered: of ``nu - mu^2``; the averages bias-corrected if asked."""
        eps, mu_hat, nu_hat = hparams["eps"], state.mu, state.nu
        if bias_correction:
            nu_hat = optax.tree.bias_correction(state.nu, hparams["decay"], state.count)
            if centered:
                mu_hat = optax.tree.bias_correction(state.mu, hparams["decay"], state.count)
        if centered:
            nu_hat = jax.tree.map(lambda m, n: n - abs_sq(m), mu_hat, nu_hat)
        if eps_in_sqrt:
            return jax.tree.map(lambda n: jax.lax.rsqrt(n + eps), nu_hat)
        return jax.tree.map(lambda n: 1 / (jnp.sqrt(n) + eps), nu_hat)

    def preconditioner(state: RMSpropState, hparams: HParams) -> Params:
        """The reciprocal of :func:`inverse_scale`."""
        return jax.tree.map(jnp.reciprocal, inverse_scale(state, hparams))

    return PureOptimizer(init, update, preconditioner)


def rmsprop(
    learning_rate: optax.ScalarOrSchedule,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """RMSprop: ``nu <- decay nu + (1-decay) g^2;  p <- p - lr * g / sqrt(nu + eps)``.

    Hinton (2012, Coursera lecture 6e). With ``centered=True``, Graves (2013): also track
    ``mu``, the average of ``g``, and divide by ``sqrt(nu - mu^2 + eps)``, an estimate of
    the gradient's standard deviation. Follows optax: ``eps`` *inside* the square root
    (``eps_in_sqrt=False``: outside, as torch) and ``nu`` starting at ``initial_scale`` (0),
    so the first step is about ``3.16 lr sign(g)``; ``bias_correction`` divides the averages
    by ``1 - decay^t``; ``momentum`` adds a heavy-ball (``nesterov``: Nesterov) stage *after*
    the learning rate. torch's RMSprop defaults to ``alpha=0.99``. optax's signature.
    """
    return RMSPROP.from_arguments(locals())


_RANGES = {"learning_rate": NON_NEGATIVE, "decay": DECAY, "eps": NON_NEGATIVE,
           "initial_scale": NON_NEGATIVE, "momentum": DECAY}

RMSPROP = OptimizerSpec(
    name="rmsprop",
    summary="nu <- decay nu + (1-decay) g^2;  p <- p - lr * g / sqrt(nu + eps)",
    rule=rule,
    defaults=float_defaults(rmsprop, learning_rate=1e-2),
    ranges=_RANGES,
    optax_factory=optax.rmsprop,
    reference="Hinton, Coursera lecture 6e (2012)",
    notes="eps inside the sqrt (optax, Keras); torch adds it outside and defaults decay to 0.99.",
)

RMSPROP_CENTERED = OptimizerSpec(
    name="rmsprop_centered",
    summary="p <- p - lr * g / sqrt(nu - mu^2 + eps)  (mu, nu: averages of g, g^2)",
    rule=rule,
    structure={"centered": True},
    defaults=RMSPROP.defaults,
    ranges=_RANGES,
    optax_factory=functools.partial(optax.rmsprop, centered=True),
    reference="Graves (2013), eqs. 38-41 (without momentum)",
)
