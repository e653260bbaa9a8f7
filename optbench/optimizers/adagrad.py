"""Adagrad: per-coordinate steps shrinking with the sum of squared gradients."""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optbench.optimizers.base import (
    NON_NEGATIVE,
    POSITIVE,
    HParams,
    OptimizerSpec,
    Params,
    Updates,
    full_like,
    scale_by_learning_rate,
)

DEFAULTS = MappingProxyType(
    {"learning_rate": 1e-2, "initial_accumulator_value": 0.1, "eps": 1e-7}
)


class AdagradState(NamedTuple):
    """``G``: the running sum of squared gradients, started at ``initial_accumulator_value``."""

    sum_of_squares: Params


def init(params: Params, hparams: HParams = DEFAULTS) -> AdagradState:
    return AdagradState(full_like(params, hparams["initial_accumulator_value"]))


def update(
    grads: Updates, state: AdagradState, params: Params | None, hparams: HParams
) -> tuple[Updates, AdagradState]:
    """``G <- G + g^2;  u = -lr * g / sqrt(G + eps)`` (0 where ``G == 0``)."""
    del params
    eps = hparams["eps"]
    total = jax.tree.map(lambda g, s: g * g + s, grads, state.sum_of_squares)
    scaled = jax.tree.map(
        lambda g, s: jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0) * g, grads, total
    )
    return scale_by_learning_rate(scaled, hparams["learning_rate"]), AdagradState(total)


ADAGRAD = OptimizerSpec(
    name="adagrad",
    summary="G <- G + g^2;  p <- p - lr * g / sqrt(G + eps)",
    init=init,
    update=update,
    defaults=DEFAULTS,
    ranges={"learning_rate": POSITIVE, "initial_accumulator_value": NON_NEGATIVE,
            "eps": NON_NEGATIVE},
    optax_factory=lambda learning_rate, initial_accumulator_value, eps: optax.adagrad(
        learning_rate, initial_accumulator_value, eps
    ),
    optax_call="optax.adagrad(learning_rate, initial_accumulator_value, eps)",
    reference="Duchi, Hazan & Singer (2011)",
    notes="optax/Keras: eps inside the sqrt, G starts at 0.1; torch/Duchi: eps outside, G at 0.",
)


def adagrad(
    learning_rate: float, initial_accumulator_value: float = 0.1, eps: float = 1e-7
) -> optax.GradientTransformation:
    """Adagrad: ``G <- G + g^2;  p <- p - lr * g / sqrt(G + eps)``.

    Duchi, Hazan & Singer (2011), diagonal form. Follows optax: ``G`` starts at
    ``initial_accumulator_value`` (0.1) and ``eps`` (1e-7) sits *inside* the square root.
    torch's ``Adagrad`` starts ``G`` at 0 and adds ``eps`` (1e-10) *outside* the root, so
    the two differ slightly (about 1e-8 after 200 steps on a quadratic).
    """
    return ADAGRAD.transformation(
        learning_rate=learning_rate, initial_accumulator_value=initial_accumulator_value, eps=eps
    )
