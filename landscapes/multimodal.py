"""Multimodal surfaces: a few equal or unequal minima (2-D classics) or regular lattices of them.

Minimizers that have no closed form were polished with Newton's method in float64 (gradient norm
below 1e-13); the tests check both f(x*) = f_min and grad f(x*) = 0 for each.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from .base import Parts, box, const, register

_TWO_PI = 2.0 * math.pi


@register("himmelblau", "multimodal", "(x^2+y-11)^2 + (x+y^2-7)^2: four equal global minima")
def himmelblau(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return (u**2 + v - 11) ** 2 + (u + v**2 - 7) ** 2

    minimizers = (
        np.array([3.0, 2.0]),
        np.array([-2.805118086952745, 3.131312518250573]),
        np.array([-3.779310253377747, -3.2831859912861696]),
        np.array([3.5844283403304917, -1.8481265269644034]),
    )
    window = ((-5.0, 5.0), (-5.0, 5.0))
    start = np.array([0.0, 0.0])
    return Parts(fn, 0.0, minimizers, box(-5.0, 5.0, 2), window, start)


@register(
    "six_hump_camel",
    "multimodal",
    "six-hump camel back: six local minima, two of them global and mirror images",
)
def six_hump_camel(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return (4 - 2.1 * u**2 + u**4 / 3) * u**2 + u * v + (4 * v**2 - 4) * v**2

    minimizer = np.array([0.08984201310031806, -0.7126564030207396])
    f_min = -1.0316284534898774
    window = ((-2.0, 2.0), (-1.0, 1.0))
    start = np.array([-1.5, -0.5])
    domain = box((-3.0, -2.0), (3.0, 2.0), 2)
    return Parts(fn, f_min, (minimizer, -minimizer), domain, window, start)


@register(
    "goldstein_price",
    "multimodal",
    "Goldstein-Price: four local minima spanning three orders of magnitude, global 3 at (0,-1)",
)
def goldstein_price(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        first = 1 + (u + v + 1) ** 2 * (19 - 14 * u + 3 * u**2 - 14 * v + 6 * u * v + 3 * v**2)
        second = 30 + (2 * u - 3 * v) ** 2 * (
            18 - 32 * u + 12 * u**2 + 48 * v - 36 * u * v + 27 * v**2
        )
        return first * second

    window = ((-2.0, 2.0), (-2.0, 2.0))
    start = np.array([-1.0, 1.0])
    return Parts(fn, 3.0, (np.array([0.0, -1.0]),), box(-2.0, 2.0, 2), window, start)


# Branin-Hoo constants (the usual ones).
_BRANIN_B = 5.1 / (4 * math.pi**2)
_BRANIN_C = 5 / math.pi
_BRANIN_T = 1 / (8 * math.pi)


@register("branin", "multimodal", "Branin-Hoo: three equal global minima, no other minimum")
def branin(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        valley = (v - _BRANIN_B * u**2 + _BRANIN_C * u - 6) ** 2
        return valley + 10 * (1 - _BRANIN_T) * jnp.cos(u) + 10

    # At x = -pi, pi, 3pi: cos x = -1 and y sits on the parabola, so f = 10 t exactly.
    xs = (-math.pi, math.pi, 3 * math.pi)
    minimizers = tuple(np.array([u, _BRANIN_B * u**2 - _BRANIN_C * u + 6]) for u in xs)
    window = ((-5.0, 10.0), (0.0, 15.0))
    start = np.array([0.0, 10.0])
    domain = box((-5.0, 0.0), (10.0, 15.0), 2)
    return Parts(fn, 10 * _BRANIN_T, minimizers, domain, window, start,
                 minimum_over="domain")  # on R^2 every x = (2k + 1) pi is a minimizer


@register(
    "mccormick",
    "multimodal",
    "sin(x+y) + (x-y)^2 - 1.5x + 2.5y + 1: non-convex, mildly multimodal",
)
def mccormick(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return jnp.sin(u + v) + (u - v) ** 2 - 1.5 * u + 2.5 * v + 1

    # Closed form: x - y = 1 and x + y = -2 pi / 3.
    minimizer = np.array([0.5 - math.pi / 3, -0.5 - math.pi / 3])
    f_min = -math.sqrt(3) / 2 - math.pi / 3
    window = ((-1.5, 4.0), (-3.0, 4.0))
    start = np.array([3.0, 3.0])
    domain = box((-1.5, -3.0), (4.0, 4.0), 2)
    return Parts(fn, f_min, (minimizer,), domain, window, start,
                 minimum_over="domain")  # on R^2: along u = v + c, f falls like v -> -inf


@register(
    "rastrigin",
    "multimodal",
    "10d + sum x_i^2 - 10cos(2 pi x_i): regular lattice of local minima on a bowl",
    dims=(1, None),
)
def rastrigin(dim: int) -> Parts:
    def fn(x):
        # 10 (1 - cos 2 pi x) as 20 sin^2(pi x): equal, without float32's cancellation near
        # the minimum (where 1 - cos reads 0 and f - f_min only x^2)
        return jnp.sum(x**2 + 20 * jnp.sin(math.pi * x) ** 2, axis=-1)

    window = ((-5.12, 5.12), (-5.12, 5.12))
    return Parts(fn, 0.0, (np.zeros(dim),), box(-5.12, 5.12, dim), window, np.full(dim, 2.5))


def _safe_norm_mean(x: jnp.ndarray) -> jnp.ndarray:
    """sqrt(mean x_i^2) with a zero (not NaN) gradient at the origin, where the cone tip sits."""
    mean_square = jnp.mean(x**2, axis=-1)
    positive = mean_square > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, mean_square, 1.0)), 0.0)


@register(
    "ackley",
    "multimodal",
    "Ackley: nearly flat rippled outer region around a deep central funnel",
    dims=(1, None),
)
def ackley(dim: int) -> Parts:
    def fn(x):
        # 20 (1 - exp(-0.2 r)) + e (1 - exp(mean cos 2 pi x - 1)), with mean cos - 1 as
        # -2 mean sin^2(pi x): equal, without float32's cancellation near the minimum
        radius = _safe_norm_mean(x)
        ripple = -2 * jnp.mean(jnp.sin(math.pi * x) ** 2, axis=-1)
        return -20 * jnp.expm1(-0.2 * radius) - math.e * jnp.expm1(ripple)

    window = ((-5.0, 5.0), (-5.0, 5.0))
    domain = box(-32.768, 32.768, dim)
    return Parts(fn, 0.0, (np.zeros(dim),), domain, window, np.full(dim, 2.5))


@register(
    "griewank",
    "multimodal",
    "sum x_i^2/4000 - prod cos(x_i/sqrt(i)) + 1: small regular ripples on a wide bowl",
    dims=(1, None),
)
def griewank(dim: int) -> Parts:
    inv_sqrt_index = 1 / np.sqrt(np.arange(1, dim + 1))

    def fn(x):
        # 1 - prod cos y_i as sum_i (prod_{j<i} cos y_j) 2 sin^2(y_i / 2): equal, without
        # float32's cancellation near the minimum (where 1 - prod cos reads 0)
        y = x * const(inv_sqrt_index, x)
        cosines = jnp.cos(y)
        before = jnp.concatenate([jnp.ones_like(y[..., :1]),
                                  jnp.cumprod(cosines, axis=-1)[..., :-1]], axis=-1)
        ripple = jnp.sum(before * 2 * jnp.sin(y / 2) ** 2, axis=-1)
        return jnp.sum(x**2, axis=-1) / 4000 + ripple

    window = ((-10.0, 10.0), (-10.0, 10.0))
    domain = box(-600.0, 600.0, dim)
    return Parts(fn, 0.0, (np.zeros(dim),), domain, window, np.full(dim, 2.0))


def _styblinski_tang_root() -> float:
    """The negative root of 4x^3 - 32x + 5 = 0 (the 1-D global minimizer), Newton-polished."""
    root = float(min(r.real for r in np.roots([4.0, 0.0, -32.0, 5.0])))
    for _ in range(3):
        root -= (4 * root**3 - 32 * root + 5) / (12 * root**2 - 32)
    return root


STYBLINSKI_TANG_X = _styblinski_tang_root()  # -2.903534027771177
STYBLINSKI_TANG_F = 0.5 * (STYBLINSKI_TANG_X**4 - 16 * STYBLINSKI_TANG_X**2 + 5 * STYBLINSKI_TANG_X)


@register(
    "styblinski_tang",
    "multimodal",
    "sum (x_i^4 - 16x_i^2 + 5x_i) / 2: separable, 2^d minima, global -39.1661657 d",
    dims=(1, None),
)
def styblinski_tang(dim: int) -> Parts:
    def fn(x):
        return 0.5 * jnp.sum(x**4 - 16 * x**2 + 5 * x, axis=-1)

    minimizer = np.full(dim, STYBLINSKI_TANG_X)
    window = ((-5.0, 5.0), (-5.0, 5.0))
    start = np.full(dim, 0.5)
    return Parts(fn, dim * STYBLINSKI_TANG_F, (minimizer,), box(-5.0, 5.0, dim), window, start)


@register(
    "levy",
    "multimodal",
    "Levy: non-separable sin^2 ripples on a quadratic, global 0 at (1, ..., 1)",
    dims=(1, None),
)
def levy(dim: int) -> Parts:
    def fn(x):
        w = 1 + (x - 1) / 4
        head, last = w[..., :-1], w[..., -1]
        first = jnp.sin(math.pi * w[..., 0]) ** 2
        middle = jnp.sum((head - 1) ** 2 * (1 + 10 * jnp.sin(math.pi * head + 1) ** 2), axis=-1)
        tail = (last - 1) ** 2 * (1 + jnp.sin(_TWO_PI * last) ** 2)
        return first + middle + tail

    window = ((-10.0, 10.0), (-10.0, 10.0))
    start = np.full(dim, -4.0)
    return Parts(fn, 0.0, (np.ones(dim),), box(-10.0, 10.0, dim), window, start)


@register(
    "levi13",
    "multimodal",
    "Levi N.13: sin^2 ripples of different frequency in x and y, global 0 at (1, 1)",
)
def levi13(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return (
            jnp.sin(3 * math.pi * u) ** 2
            + (u - 1) ** 2 * (1 + jnp.sin(3 * math.pi * v) ** 2)
            + (v - 1) ** 2 * (1 + jnp.sin(_TWO_PI * v) ** 2)
        )

    window = ((-4.0, 6.0), (-4.0, 6.0))
    start = np.array([-1.5, -1.5])
    return Parts(fn, 0.0, (np.ones(2),), box(-10.0, 10.0, 2), window, start)
