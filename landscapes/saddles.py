"""Saddles and plateaus: places where the gradient is (nearly) zero but no minimum is.

The saddles are unbounded below over R^2 (`f_min = -inf`, no minimizers, `bounded=False`); their
`domain` is only the box in which starts are drawn. Benchmark them by escape time from a start
slightly off the saddle point, not by distance to a minimum.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from .base import Parts, box, register

_SADDLE_WINDOW = ((-2.0, 2.0), (-2.0, 2.0))
_OFF_SADDLE = np.array([0.5, 1e-3])  # on the attracting axis, a hair off the repelling one


@register("saddle", "saddle", "x^2 - y^2: non-degenerate saddle at 0, unbounded below")
def saddle(dim: int) -> Parts:
    def fn(x):
        return x[..., 0] ** 2 - x[..., 1] ** 2

    return Parts(fn, -math.inf, (), box(-2.0, 2.0, 2), _SADDLE_WINDOW, _OFF_SADDLE, bounded=False)


@register(
    "monkey_saddle",
    "saddle",
    "x^3 - 3xy^2: degenerate saddle at 0 (zero Hessian) with three descending valleys",
)
def monkey_saddle(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return u**3 - 3 * u * v**2

    return Parts(fn, -math.inf, (), box(-2.0, 2.0, 2), _SADDLE_WINDOW, _OFF_SADDLE, bounded=False)


@register(
    "easom",
    "plateau",
    "-cos x cos y exp(-(x-pi)^2 - (y-pi)^2): flat plateau around one narrow well at (pi, pi)",
)
def easom(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        well = jnp.exp(-((u - math.pi) ** 2) - (v - math.pi) ** 2)
        return -jnp.cos(u) * jnp.cos(v) * well

    window = ((0.0, 2 * math.pi), (0.0, 2 * math.pi))
    start = np.array([2.5, 2.0])  # on the rim of the well, where the gradient is still visible
    minimizer = np.array([math.pi, math.pi])
    return Parts(fn, -1.0, (minimizer,), box(-100.0, 100.0, 2), window, start)
