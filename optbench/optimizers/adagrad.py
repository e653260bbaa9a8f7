"""Adagrad: per-coordinate steps shrinking with the sum of squared gradients."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optbench.optimizers.base import (
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


class AdagradState(NamedTuple):
    """``G``: the running sum of squared gradients, started at ``initial_accumulator_value``."""

    sum_of_squares: Params


@functools.cache
def rule() -> PureOptimizer:
    """Adagrad's pure functions."""

    def init(params: Params, hparams: HParams | None = None) -> AdagradState:
        value = (hparams or ADAGRAD.defaults)["initial_accumulator_value"]
        return AdagradState(optax.tree.full_like(params, value))

    def update(grads: Updates, state: AdagradState, params: Params | None, hparams: HParams
               ) -> tuple[Updates, AdagradState]:
        """``G <- G + |g|^2;  u = -lr * g / sqrt(G + eps)`` (0 where ``G == 0``)."""
        del params
        eps = hparams["eps"]
        total = jax.tree.map(lambda g, s: abs_sq(g) + s, grads, state.sum_of_squares)
        scaled = jax.tree.map(
            lambda g, s: jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0) * g, grads, total)
        return scale_by_learning_rate(scaled, hparams["learning_rate"]), AdagradState(total)

    def preconditioner(state: AdagradState, hparams: HParams) -> Params:
        """``sqrt(G + eps)``; infinite where ``G == 0`` (the step there is 0)."""
        return jax.tree.map(
            lambda s: jnp.where(s > 0, jnp.sqrt(s + hparams["eps"]), jnp.inf),
            state.sum_of_squares)

    return PureOptimizer(init, update, preconditioner)


def adagrad(
    learning_rate: optax.ScalarOrSchedule,
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
) -> optax.GradientTransformationExtraArgs:
    """Adagrad: ``G <- G + g^2;  p <- p - lr * g / sqrt(G + eps)``.

    Duchi, Hazan & Singer (2011), diagonal form. Follows optax: ``G`` starts at
    ``initial_accumulator_value`` (0.1) and ``eps`` (1e-7) sits *inside* the square root.
    torch's ``Adagrad`` starts ``G`` at 0 and adds ``eps`` (1e-10) *outside* the root, so
    the two differ slightly (about 1e-8 after 200 steps on a quadratic). optax's signature.
    """
    return ADAGRAD.from_arguments(locals())


ADAGRAD = OptimizerSpec(
    name="adagrad",
    summary="G <- G + g^2;  p <- p - lr * g / sqrt(G + eps)",
    rule=rule,
    defaults=float_defaults(adagrad, learning_rate=1e-2),
    ranges={"learning_rate": NON_NEGATIVE, "initial_accumulator_value": NON_NEGATIVE,
            "eps": NON_NEGATIVE},
    optax_factory=optax.adagrad,
    reference="Duchi, Hazan & Singer (2011)",
    notes="optax/Keras: eps inside the sqrt, G starts at 0.1; torch/Duchi: eps outside, G at 0.",
)
