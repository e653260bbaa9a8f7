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


def _saturate(image: jax.Array, factor: jax.Array) -> jax.Array:
    """TensorFlow's ``adjust_saturation`` (HSV saturation times ``factor``, capped at 1;
    hue and value kept) in closed form: with per-pixel max M and min m of the channels,
    each channel c becomes ``M - g (M - c)``, ``g = min(factor, M / (M - m))``."""
    high = jnp.max(image, axis=-1, keepdims=True)
    spread = high - jnp.min(image, axis=-1, keepdims=True)
    cap = jnp.where(spread > 0, high / jnp.where(spread > 0, spread, 1.0), factor)
    gain = jnp.clip(jnp.minimum(factor, cap), 0.0)
    return high - gain * (high - image)


def _deepobs_cifar(key: jax.Array, image: jax.Array) -> jax.Array:
    k_crop, k_flip, k_bright, k_sat, k_con = jax.random.split(key, 5)
    h, w, c = image.shape
    padded = jnp.pad(image, ((2, 2), (2, 2), (0, 0)))
    dy, dx = jax.random.randint(k_crop, (2,), 0, 5)
    image = jax.lax.dynamic_slice(padded, (dy, dx, 0), (h, w, c))
    image = jnp.where(jax.random.bernoulli(k_flip), image[:, ::-1], image)
    image = image + jax.random.uniform(k_bright, minval=-63 / 255, maxval=63 / 255)
    image = _saturate(image, jax.random.uniform(k_sat, minval=0.5, maxval=1.5))
    mean = jnp.mean(image, axis=(0, 1), keepdims=True)
    return (image - mean) * jax.random.uniform(k_con, minval=0.2, maxval=1.8) + mean


def deepobs_cifar(key: jax.Array, images: jax.Array) -> jax.Array:
    """DeepOBS's CIFAR training augmentation, per image, in its order: zero-pad to 36×36
    and crop a random 32×32 window, flip left-right with probability 1/2, add a brightness
    delta from U(±63/255), scale the saturation by U(0.5, 1.5) and the contrast (about each
    channel's mean) by U(0.2, 1.8). The pixels are DeepOBS's, 0-255; the per-image
    standardization that follows is the model's first layer (``models.Standardize``)."""
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(_deepobs_cifar)(keys, images)
