"""Adam (Kingma & Ba 2015): momentum on bias-corrected first and second moments."""

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


class AdamState(NamedTuple):
    """Step count and the *uncorrected* moments ``mu`` (of g) and ``nu`` (of |g|^2)."""

    count: jax.Array
    mu: Params
    nu: Params


@functools.cache
def rule(nesterov: bool = False, mu_dtype: Any = None) -> PureOptimizer:
    """Adam's pure functions; ``nesterov``: Dozat's Nadam; ``mu_dtype``: the dtype of ``mu``
    (default: the parameters')."""

    def init(params: Params, hparams: HParams | None = None) -> AdamState:
        del hparams
        return AdamState(count=jnp.zeros([], jnp.int32),
                         mu=optax.tree.zeros_like(params, dtype=mu_dtype),
                         nu=optax.tree.zeros_like(params))

    def update(grads: Updates, state: AdamState, params: Params | None, hparams: HParams
               ) -> tuple[Updates, AdamState]:
        """``mu <- b1 mu + (1-b1) g;  nu <- b2 nu + (1-b2) |g|^2;
        u = -lr * mu_hat / (sqrt(nu_hat + eps_root) + eps)``, hats divided by ``1 - b^t``
        (Nesterov: ``mu_hat = b1 mu_hat(t+1) + (1-b1) g_hat``)."""
        del params
        b1, b2 = hparams["b1"], hparams["b2"]
        eps, eps_root = hparams["eps"], hparams["eps_root"]
        mu = optax.tree.update_moment(grads, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(grads, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: b1 * m + (1 - b1) * g,
                optax.tree.bias_correction(mu, b1, optax.safe_increment(count)),
                optax.tree.bias_correction(grads, b1, count))
        else:
            mu_hat = optax.tree.bias_correction(mu, b1, count)
        nu_hat = optax.tree.bias_correction(nu, b2, count)
        scaled = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return scale_by_learning_rate(scaled, hparams["learning_rate"]), AdamState(
            count, optax.tree.cast(mu, mu_dtype), optax.tree.cast_like(nu, state.nu))

    def preconditioner(state: AdamState, hparams: HParams) -> Params:
        """``sqrt(nu_hat + eps_root) + eps``."""
        nu_hat = optax.tree.bias_correction(state.nu, hparams["b2"], state.count)
        return jax.tree.map(lambda v: jnp.sqrt(v + hparams["eps_root"]) + hparams["eps"],
                            nu_hat)

    return PureOptimizer(init, update, preconditioner)


def adam(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Adam: ``p <- p - lr * mu_hat / (sqrt(nu_hat + eps_root) + eps)``.

    Kingma & Ba (2015), Algorithm 1: ``mu``, ``nu`` are moving averages of ``g`` and ``g^2``;
    the hats divide them by ``1 - b1^t`` and ``1 - b2^t``. ``eps`` is added outside the root
    of the bias-corrected ``nu`` (as in optax, torch and the paper); ``eps_root`` inside it
    keeps gradients through the update finite. Keras instead uses the paper's "epsilon hat"
    reordering with eps=1e-7, which is a different, time-varying epsilon. ``nesterov=True``
    is Nadam (Dozat 2016); ``mu_dtype`` stores ``mu`` in another dtype. optax's signature.
    """
    return ADAM.from_arguments(locals())


ADAM = OptimizerSpec(
    name="adam",
    summary="p <- p - lr * mu_hat / (sqrt(nu_hat + eps_root) + eps)",
    rule=rule,
    defaults=float_defaults(adam, learning_rate=1e-3),
    ranges={"learning_rate": NON_NEGATIVE, "b1": DECAY, "b2": DECAY, "eps": NON_NEGATIVE,
            "eps_root": NON_NEGATIVE},
    optax_factory=optax.adam,
    reference="Kingma & Ba (2015), Algorithm 1",
    notes="eps outside the sqrt of the bias-corrected nu (optax, torch); Keras differs.",
)
