"""Losses by name, each the batch mean of an ``optax.losses`` function.

``loss(outputs, targets)``: ``outputs`` are the network's raw outputs (logits for the
classification losses, whose sigmoid/softmax is folded into the loss for stability).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from optbench.nn.errors import NNError


def mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error (optax's ``squared_error`` has no 1/2)."""
    return jnp.mean(optax.losses.squared_error(outputs, targets.reshape(outputs.shape)))


def binary_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """BCE of one logit per example against 0/1 labels."""
    return jnp.mean(optax.losses.sigmoid_binary_cross_entropy(
        logits.reshape(labels.shape), labels.astype(logits.dtype)))


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy of class logits against integer labels."""
    return jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels))


def multilabel_binary_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Independent BCE per output (multi-label), averaged over outputs and examples."""
    return jnp.mean(optax.losses.sigmoid_binary_cross_entropy(logits,
                                                              labels.astype(logits.dtype)))


LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "mse": mse,
    "binary_cross_entropy": binary_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
    "multilabel_binary_cross_entropy": multilabel_binary_cross_entropy,
}


def get(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    if name not in LOSSES:
        raise NNError(f"loss: unknown loss {name!r}; allowed {', '.join(LOSSES)}")
    return LOSSES[name]
