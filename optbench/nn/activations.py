"""Activations by name, from ``jax.nn``; PReLU's slope is a learned parameter.

``apply(name, x, slope)`` applies one; ``slope`` (PReLU only) is the layer's parameter.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from optbench.nn.errors import NNError

PRELU_INITIAL_SLOPE = 0.25  # He et al. 2015

FIXED: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,  # slope 0.01
    "elu": jax.nn.elu,
    "silu": jax.nn.silu,
    "swish": jax.nn.swish,  # = silu
    "softplus": jax.nn.softplus,
    "softmax": jax.nn.softmax,  # over the last axis; for outputs
}
LEARNED = ("prelu",)
NAMES = (*FIXED, *LEARNED)


def check(name: str, path: str = "activation") -> str:
    """``name`` if it is an activation; an :class:`NNError` listing the names otherwise."""
    if name not in NAMES:
        raise NNError(f"{path}: unknown activation {name!r}; allowed {', '.join(NAMES)}")
    return name


def prelu(x: jax.Array, slope: jax.Array) -> jax.Array:
    """``x`` where positive, ``slope * x`` elsewhere (He et al. 2015)."""
    return jnp.where(x >= 0, x, slope * x)


def apply(name: str, x: jax.Array, slope: jax.Array | None = None) -> jax.Array:
    return prelu(x, slope) if name == "prelu" else FIXED[name](x)


def parameters(name: str, dtype=jnp.float32) -> dict:
    """The activation's learned parameters: PReLU's slope (one, shared by the layer's units,
    as in He et al.'s channel-shared variant), else none."""
    return {"slope": jnp.asarray(PRELU_INITIAL_SLOPE, dtype)} if name == "prelu" else {}
