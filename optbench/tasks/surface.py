"""Synthetic surfaces from :mod:`landscapes` as tasks, with an optional gradient-noise model.

The noise model makes GD, SGD and mini-batch SGD differ on a surface the way they differ on
data: each sample's gradient is the true gradient plus Gaussian noise of scale ``noise``, so
one sample (SGD) sees scale ``noise``, a batch of ``batch_size`` samples sees
``noise / sqrt(batch_size)``, and the full batch (GD) sees the exact gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

import landscapes


@dataclass(frozen=True)
class SurfaceTask:
    """A landscape, its starts, and the scale of per-sample gradient noise."""

    surface: landscapes.Landscape
    starts: np.ndarray | None = None  # (K, dim) fixed starts; None: random in the domain
    n_random_starts: int = 1
    noise: float = 0.0
    batch_size: int = 1
    label: str = field(default="")

    @property
    def name(self) -> str:
        return self.label or f"{self.surface.name}-{self.surface.dim}d"

    @property
    def dim(self) -> int:
        return self.surface.dim

    @property
    def f_min(self) -> float:
        """The minimum; 0 (the saddle value) for surfaces unbounded below, so that their
        ``f - f_min`` is f itself and reaching a target means getting below it."""
        return self.surface.f_min if self.surface.bounded else 0.0

    @property
    def n_starts(self) -> int:
        return self.n_random_starts if self.starts is None else len(self.starts)

    def start(self, key: jax.Array, start_index: jax.Array) -> jax.Array:
        """A fixed start, or a uniform draw from the domain keyed by (seed, start index).

        The uniform numbers are drawn in float32 whatever the run's precision, so that float32
        and float64 sweeps with the same seeds start from the same points (to float32
        rounding)."""
        dtype = jnp.result_type(float)
        if self.starts is not None:
            return jnp.asarray(self.starts, dtype)[start_index]
        low, high = (jnp.asarray(bound, dtype) for bound in self.surface.domain)
        u = jax.random.uniform(jax.random.fold_in(key, start_index), (self.dim,), jnp.float32)
        return low + u.astype(dtype) * (high - low)

    def loss(self, params: jax.Array) -> jax.Array:
        return self.surface.fn(params)

    def gradient(
        self, params: jax.Array, key: jax.Array, gradient_source: str
    ) -> tuple[jax.Array, jax.Array]:
        value, grad = jax.value_and_grad(self.surface.fn)(params)
        scale = self.noise_scale(gradient_source)
        if scale == 0.0:
            return value, grad
        return value, grad + scale * jax.random.normal(key, grad.shape, grad.dtype)

    def noise_scale(self, gradient_source: str) -> float:
        """The standard deviation of the gradient noise seen by ``gradient_source``."""
        if gradient_source == "full batch":
            return 0.0
        if gradient_source == "one sample":
            return self.noise
        return self.noise / math.sqrt(self.batch_size)

    def describe(self) -> dict:
        return {"task": self.name, "landscape": self.surface.name, "dim": self.dim,
                "noise": self.noise, "batch_size": self.batch_size}
