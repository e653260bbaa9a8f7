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

import jax
from jax.nn import initializers

from optbench.nn.errors import NNError

INITIALIZERS = {
    "zeros": initializers.zeros,
    "uniform": initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
    "lecun_normal": initializers.lecun_normal(),
    "lecun_uniform": initializers.lecun_uniform(),
    "xavier_normal": initializers.glorot_normal(),
    "xavier_uniform": initializers.glorot_uniform(),
    "he_normal": initializers.he_normal(),
    "he_uniform": initializers.he_uniform(),
}
NAMES = tuple(INITIALIZERS)  # the names a config may choose
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
    if name not in INITIALIZERS and truncated_stddev(name) is None:
        raise NNError(f"{path}: unknown initializer {name!r}; allowed {', '.join(NAMES)} "
                      "or truncated_normal(σ)")
    return name


def get(name: str) -> jax.nn.initializers.Initializer:
    sigma = truncated_stddev(check(name))
    # jax's truncated_normal: a standard normal cut at ±2, times σ (TensorFlow 1's)
    return initializers.truncated_normal(sigma) if sigma else INITIALIZERS[name]


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
