"""Weight initializers by name, from ``jax.nn.initializers``.

Every initializer takes ``(key, shape, dtype)``; for a kernel of shape ``(*window, in, out)``
``fan_in = prod(window) * in`` and ``fan_out = prod(window) * out`` (``in_axis=-2``,
``out_axis=-1``, the rest the receptive field), so conv kernels get the right variance.

| name | distribution | variance |
|---|---|---|
| zeros | 0 | 0 |
| uniform | U(±1/√fan_in) (torch's default for Linear and Conv kernels) | 1/(3 fan_in) |
| lecun_normal, lecun_uniform | LeCun et al. 1998, "Efficient BackProp" | 1/fan_in |
| xavier_normal, xavier_uniform | Glorot & Bengio 2010 | 2/(fan_in + fan_out) |
| he_normal, he_uniform | He et al. 2015 | 2/fan_in |
| truncated_normal(σ) | N(0, σ²) cut at ±2σ, not rescaled (TensorFlow 1's
  ``truncated_normal_initializer(stddev=σ)``, DeepOBS's MLP and 2c2d) | 0.774 σ² |

The normal variants above it are truncated at two standard deviations and rescaled, so the
variance is still the one in the table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import jax
from jax.nn import initializers

from optbench.nn.errors import NNError
from optbench.nn.functional import drawn_flat

# jax.nn.initializers' presets, as their variance_scaling(scale, mode, distribution)
SCALING = {
    "uniform": (1 / 3, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "xavier_normal": (1.0, "fan_avg", "truncated_normal"),
    "xavier_uniform": (1.0, "fan_avg", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
}
NAMES = ("zeros", *SCALING)  # the names a config may choose
_TRUNCATED = re.compile(r"truncated_normal\(([0-9.eE+-]+)\)")


def truncated_stddev(name: str) -> float | None:
    """σ of ``"truncated_normal(σ)"`` (a positive number), else None."""
    match = _TRUNCATED.fullmatch(name) if isinstance(name, str) else None
    try:
        sigma = float(match.group(1)) if match else None
    except ValueError:
        return None
    return sigma if sigma is not None and sigma > 0 else None


def check(name: str, path: str = "initializer") -> str:
    if name not in NAMES and truncated_stddev(name) is None:
        raise NNError(f"{path}: unknown initializer {name!r}; allowed {', '.join(NAMES)} "
                      "or truncated_normal(σ)")
    return name


def get(name: str) -> jax.nn.initializers.Initializer:
    """``name``'s ``jax.nn`` initializer, drawn flat (:func:`~optbench.nn.functional.
    drawn_flat`): the same numbers as the preset's for every shape, compiled faster."""
    sigma = truncated_stddev(check(name))
    if name == "zeros":
        return initializers.zeros

    def draw(key: jax.Array, shape: tuple[int, ...], dtype=None) -> jax.Array:
        if sigma:  # jax's truncated_normal: a standard normal cut at ±2, times σ (TF 1's)
            flat = initializers.truncated_normal(sigma)
        else:  # the preset's variance on an (n, 1) column whose fan-in is 1
            scale, mode, distribution = SCALING[name]
            fan_in, fan_out = fans(shape)
            flat = _as_column(initializers.variance_scaling(
                scale / (fan_in if mode == "fan_in" else (fan_in + fan_out) / 2), "fan_in",
                distribution, in_axis=-1, out_axis=-2))
        return drawn_flat(lambda n: flat(key, n, dtype), shape)

    return draw


def _as_column(initializer: jax.nn.initializers.Initializer) -> Callable:
    """``initializer`` over a flat shape ``(n,)``, drawn as an ``(n, 1)`` column."""
    return lambda key, shape, dtype: initializer(key, (*shape, 1), dtype).reshape(shape)


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a dense ``(in, out)`` or conv ``(*window, in, out)`` kernel."""
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def variance(name: str, shape: tuple[int, ...]) -> float:
    """The theoretical variance of one weight drawn by ``name`` for ``shape``."""
    fan_in, fan_out = fans(shape)
    sigma = truncated_stddev(check(name))
    if sigma:
        from scipy import stats  # here: importing it costs every process 0.6 s

        return float(stats.truncnorm(-2, 2).var()) * sigma**2
    return {"zeros": 0.0, "uniform": 1 / (3 * fan_in),
            "lecun_normal": 1 / fan_in, "lecun_uniform": 1 / fan_in,
            "xavier_normal": 2 / (fan_in + fan_out), "xavier_uniform": 2 / (fan_in + fan_out),
            "he_normal": 2 / fan_in, "he_uniform": 2 / fan_in}[check(name)]
