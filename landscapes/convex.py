"""Convex quadratics: the baseline on which every optimizer should converge linearly.

They isolate one difficulty each: none (`sphere`), axis-aligned conditioning
(`ill_conditioned_quadratic`), rotated conditioning (`rotated_ellipsoid`), and coupled coordinates
in 2-D (`booth`, `matyas`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .base import CONDITION_NUMBER, SEED, Parts, box, const, register

_ZERO_WINDOW = ((-5.0, 5.0), (-5.0, 5.0))


def axis_scales(dim: int, condition_number: float) -> np.ndarray:
    """Curvatures `kappa^((i-1)/(d-1))`, i = 1..d: from 1 to `condition_number`, log-spaced."""
    return condition_number ** (np.arange(dim) / (dim - 1))


def random_rotation(dim: int, seed: int) -> np.ndarray:
    """A Haar-random orthogonal matrix from the QR decomposition of a Gaussian matrix."""
    gaussian = np.random.default_rng(seed).standard_normal((dim, dim))
    q, r = np.linalg.qr(gaussian)
    return q * np.sign(np.diag(r))  # fixes the column signs so that Q is unique (and Haar)


@register("sphere", "convex", "sum x_i^2: perfectly conditioned bowl", dims=(1, None))
def sphere(dim: int) -> Parts:
    def fn(x):
        return jnp.sum(x**2, axis=-1)

    origin = np.zeros(dim)
    return Parts(fn, 0.0, (origin,), box(-5.0, 5.0, dim), _ZERO_WINDOW, np.full(dim, 3.0))


@register(
    "ill_conditioned_quadratic",
    "convex",
    "sum kappa^((i-1)/(d-1)) x_i^2: axis-aligned ellipsoid with condition number kappa",
    dims=(2, None),
    params={"condition_number": CONDITION_NUMBER},
)
def ill_conditioned_quadratic(dim: int, condition_number: float) -> Parts:
    scales = axis_scales(dim, condition_number)

    def fn(x):
        return jnp.sum(const(scales, x) * x**2, axis=-1)

    origin = np.zeros(dim)
    return Parts(fn, 0.0, (origin,), box(-5.0, 5.0, dim), _ZERO_WINDOW, np.full(dim, 3.0))


@register(
    "rotated_ellipsoid",
    "convex",
    "ill-conditioned ellipsoid in a random orthonormal basis: conditioning without separability",
    dims=(2, None),
    params={"condition_number": CONDITION_NUMBER, "seed": SEED},
)
def rotated_ellipsoid(dim: int, condition_number: float, seed: int) -> Parts:
    scales = axis_scales(dim, condition_number)
    rotation = random_rotation(dim, seed)

    def fn(x):
        z = x @ const(rotation, x).T
        return jnp.sum(const(scales, x) * z**2, axis=-1)

    origin = np.zeros(dim)
    return Parts(fn, 0.0, (origin,), box(-5.0, 5.0, dim), _ZERO_WINDOW, np.full(dim, 3.0))


@register("booth", "convex", "(x+2y-7)^2 + (2x+y-5)^2: coupled quadratic, condition 9")
def booth(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return (u + 2 * v - 7) ** 2 + (2 * u + v - 5) ** 2

    window = ((-10.0, 10.0), (-10.0, 10.0))
    start = np.array([-5.0, -5.0])
    return Parts(fn, 0.0, (np.array([1.0, 3.0]),), box(-10.0, 10.0, 2), window, start)


@register("matyas", "convex", "0.26(x^2+y^2) - 0.48xy: flat valley along x = y, condition 25")
def matyas(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return 0.26 * (u**2 + v**2) - 0.48 * u * v

    window = ((-10.0, 10.0), (-10.0, 10.0))
    start = np.array([8.0, -4.0])
    return Parts(fn, 0.0, (np.zeros(2),), box(-10.0, 10.0, 2), window, start)


@register(
    "lessard",
    "convex",
    "Lessard, Recht & Packard (2016) §4.6: piecewise quadratic (L = 25, mu = 1, summed over "
    "coordinates) on which optimally tuned heavy-ball cycles",
    dims=(1, None),
)
def lessard(dim: int) -> Parts:
    """The sum over coordinates of 25u^2/2 (u < 1), u^2/2 + 24u - 12 (1 <= u < 2),
    25u^2/2 - 24u + 36 (u >= 2): C^1, strongly convex with mu = 1 and L = 25, minimum 0 at 0.
    The paper's function is the 1-D case."""

    def fn(x):
        piece = jnp.where(x < 1, 12.5 * x**2,
                          jnp.where(x < 2, 0.5 * x**2 + 24 * x - 12, 12.5 * x**2 - 24 * x + 36))
        return jnp.sum(piece, axis=-1)

    window = ((-3.0, 4.0), (-3.0, 4.0))
    return Parts(fn, 0.0, (np.zeros(dim),), box(-5.0, 5.0, dim), window, np.full(dim, 3.3))
