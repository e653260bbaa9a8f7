"""Valleys and ravines: narrow, often curved, descent paths that punish large or isotropic steps."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .base import CONDITION_NUMBER, Parts, box, const, register


@register(
    "rosenbrock",
    "valley",
    "sum 100(x_{i+1} - x_i^2)^2 + (1 - x_i)^2: curved banana valley (local minima for d >= 4)",
    dims=(2, None),
)
def rosenbrock(dim: int) -> Parts:
    def fn(x):
        head, tail = x[..., :-1], x[..., 1:]
        return jnp.sum(100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2, axis=-1)

    start = np.resize([-1.2, 1.0], dim)  # the classic start, repeated
    window = ((-2.0, 2.0), (-1.0, 3.0))
    return Parts(fn, 0.0, (np.ones(dim),), box(-5.0, 10.0, dim), window, start)


@register(
    "beale",
    "valley",
    "Beale: flat centre, narrow curved valleys and steep ridges toward the corners",
)
def beale(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v**2) ** 2 + (2.625 - u + u * v**3) ** 2

    window = ((-4.5, 4.5), (-4.5, 4.5))
    start = np.array([1.0, 1.0])
    return Parts(fn, 0.0, (np.array([3.0, 0.5]),), box(-4.5, 4.5, 2), window, start)


@register(
    "three_hump_camel",
    "valley",
    "2x^2 - 1.05x^4 + x^6/6 + xy + y^2: one global and two shallow local minima",
)
def three_hump_camel(dim: int) -> Parts:
    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return 2 * u**2 - 1.05 * u**4 + u**6 / 6 + u * v + v**2

    window = ((-2.0, 2.0), (-2.0, 2.0))
    start = np.array([-1.0, 1.5])
    return Parts(fn, 0.0, (np.zeros(2),), box(-5.0, 5.0, 2), window, start)


def dixon_price_minimizer(dim: int) -> np.ndarray:
    """The minimizer with every coordinate positive: x_i = 2^(-(2^i - 2) / 2^i), i = 1..d."""
    powers = 2.0 ** np.arange(1, dim + 1)
    return 2.0 ** (-(powers - 2.0) / powers)


@register(
    "dixon_price",
    "valley",
    "(x_1 - 1)^2 + sum i(2x_i^2 - x_{i-1})^2: curved valley with two global minimizers (±x_d)",
    dims=(2, None),
)
def dixon_price(dim: int) -> Parts:
    weights = np.arange(2, dim + 1, dtype=np.float64)

    def fn(x):
        chain = const(weights, x) * (2 * x[..., 1:] ** 2 - x[..., :-1]) ** 2
        return (x[..., 0] - 1.0) ** 2 + jnp.sum(chain, axis=-1)

    positive = dixon_price_minimizer(dim)
    # Only x_d can flip sign: x_i^2 = x_{i-1} / 2 forces x_{i-1} >= 0 for i = 2..d.
    mirrored = positive * np.r_[np.ones(dim - 1), -1.0]
    window = ((-2.0, 2.0), (-2.0, 2.0))
    start = np.full(dim, -1.0)
    return Parts(fn, 0.0, (positive, mirrored), box(-10.0, 10.0, dim), window, start)


@register(
    "ravine",
    "valley",
    "x^2 + kappa y^2: straight ravine across which gradient descent zig-zags",
    params={"condition_number": CONDITION_NUMBER},
)
def ravine(dim: int, condition_number: float) -> Parts:
    def fn(x):
        return x[..., 0] ** 2 + condition_number * x[..., 1] ** 2

    window = ((-5.0, 5.0), (-1.0, 1.0))
    start = np.array([-4.5, 0.8])
    return Parts(fn, 0.0, (np.zeros(2),), box(-5.0, 5.0, 2), window, start)
