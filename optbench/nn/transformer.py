"""A decoder-only transformer language model as pure functions over a parameter dict.

GPT-2's layout (Radford et al. 2019): token and learned position embeddings, ``layers``
pre-layer-norm blocks ``x + attention(norm(x))`` then ``x + mlp(norm(x))`` (causal multi-head
self-attention, ``jax.nn.dot_product_attention``; a ``4 d_model`` GELU MLP), a final layer
norm and a linear map to the vocabulary's logits. GPT-2's initialization: every weight
N(0, 0.02²), the two projections back into the residual stream scaled by 1/√(2 layers),
biases 0, layer norms scale 1 and bias 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from optbench.nn import functional
from optbench.nn.errors import NNError

INIT_STDDEV = 0.02  # GPT-2's
MLP_RATIO = 4  # the MLP's hidden width over d_model


def layer_norm(params: dict, x: jax.Array, eps: float = 1e-5) -> jax.Array:
    """Normalize the last axis to zero mean and unit variance, then ``* scale + bias``."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    variance = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(variance + eps) * params["scale"] + params["bias"]


def causal_self_attention(params: dict, x: jax.Array, heads: int) -> jax.Array:
    """Multi-head self-attention over ``x`` of shape ``(batch, time, d_model)`` in which
    position t attends to positions <= t only."""
    batch, time, width = x.shape
    qkv = functional.dense(params["qkv"], x).reshape(batch, time, 3, heads, width // heads)
    attended = jax.nn.dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2],
                                            is_causal=True)
    return functional.dense(params["out"], attended.reshape(batch, time, width))


def mlp_block(params: dict, x: jax.Array) -> jax.Array:
    return functional.dense(params["down"], jax.nn.gelu(functional.dense(params["up"], x)))


def block(params: dict, x: jax.Array, heads: int) -> jax.Array:
    """One pre-layer-norm residual block: attention, then the MLP."""
    x = x + causal_self_attention(params["attention"], layer_norm(params["norm1"], x), heads)
    return x + mlp_block(params["mlp"], layer_norm(params["norm2"], x))


@dataclass(frozen=True)
class Transformer:
    """A decoder-only transformer over ``vocab`` tokens and contexts of up to ``seq_len``:
    ``init(key) -> params`` and ``apply(params, tokens) -> logits`` (see the module
    docstring). A frozen description, so it can be a compiled program's field."""

    vocab: int
    seq_len: int
    d_model: int
    layers: int
    heads: int

    def __post_init__(self):
        if self.d_model % self.heads:
            raise NNError(f"heads: {self.heads} heads do not divide d_model = {self.d_model}")

    def init(self, key: jax.Array, dtype=jnp.float32) -> dict:
        keys = iter(jax.random.split(key, 3 + 4 * self.layers))
        d, hidden = self.d_model, MLP_RATIO * self.d_model
        residual = INIT_STDDEV / math.sqrt(2 * self.layers)

        def normal(shape, stddev=INIT_STDDEV):
            key = next(keys)
            return stddev * functional.drawn_flat(
                lambda flat: jax.random.normal(key, flat, dtype), shape)

        def dense(n_in, n_out, stddev=INIT_STDDEV):
            return {"w": normal((n_in, n_out), stddev), "b": jnp.zeros((n_out,), dtype)}

        def norm():
            return {"scale": jnp.ones((d,), dtype), "bias": jnp.zeros((d,), dtype)}

        blocks = tuple({"norm1": norm(),
                        "attention": {"qkv": dense(d, 3 * d), "out": dense(d, d, residual)},
                        "norm2": norm(),
                        "mlp": {"up": dense(d, hidden), "down": dense(hidden, d, residual)}}
                       for _ in range(self.layers))
        embed = normal((self.vocab, d))
        position = normal((self.seq_len, d))
        return {"embed": embed, "position": position, "blocks": blocks,
                "norm": norm(), "head": dense(d, self.vocab)}

    def apply(self, params: dict, tokens: jax.Array) -> jax.Array:
        """Next-token logits ``(batch, time, vocab)`` for integer ``tokens`` ``(batch,
        time)``, ``time <= seq_len``: position t's logits depend on tokens 0..t only."""
        x = params["embed"][tokens] + params["position"][:tokens.shape[-1]]
        for p in params["blocks"]:
            x = block(p, x, self.heads)
        return functional.dense(params["head"], layer_norm(params["norm"], x))

    def widest(self) -> int:
        """The most activations one sequence holds at once (for evaluation in chunks):
        the MLP's, the logits' or the attention weights'."""
        return self.seq_len * max(MLP_RATIO * self.d_model, self.vocab,
                                  self.heads * self.seq_len)
