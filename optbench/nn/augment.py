"""Seeded, jittable augmentation of image batches ``(batch, height, width, channels)``.

One random affine map per image (horizontal flip, rotation, zoom, shift about the centre),
resampled bilinearly with zeros outside; the key decides everything, so under ``vmap`` each
run augments its own way and a rerun with the same key augments the same way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates


def _transform(key: jax.Array, image: jax.Array, flip: bool, shift: float, zoom: float,
               rotate_degrees: float) -> jax.Array:
    k_flip, k_shift, k_zoom, k_rot = jax.random.split(key, 4)
    h, w = image.shape[:2]
    sign = jnp.where(flip & jax.random.bernoulli(k_flip), -1.0, 1.0)
    dy, dx = jax.random.uniform(k_shift, (2,), minval=-shift, maxval=shift)
    scale = jax.random.uniform(k_zoom, minval=1.0 - zoom, maxval=1.0 + zoom)
    angle = jnp.deg2rad(jax.random.uniform(k_rot, minval=-rotate_degrees,
                                           maxval=rotate_degrees))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y, x = jnp.meshgrid(jnp.arange(h) - cy, jnp.arange(w) - cx, indexing="ij")
    x = x * sign  # output pixel -> source pixel: flip, rotate, then zoom and shift
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    src_y = (cos * y - sin * x) / scale + cy - dy
    src_x = (sin * y + cos * x) / scale + cx - dx
    channels = [map_coordinates(image[..., c], [src_y, src_x], order=1, mode="constant")
                for c in range(image.shape[-1])]
    return jnp.stack(channels, axis=-1)


def augment(key: jax.Array, images: jax.Array, *, flip: bool = True, shift: float = 1.0,
            zoom: float = 0.1, rotate_degrees: float = 10.0) -> jax.Array:
    """Each image flipped left-right with probability 1/2 (if ``flip``), shifted by up to
    ``shift`` pixels per axis, zoomed by a factor in ``1 ± zoom`` and rotated by up to
    ``rotate_degrees``."""
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda k, im: _transform(k, im, flip, shift, zoom, rotate_degrees))(
        keys, images)
