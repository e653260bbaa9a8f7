"""Synthetic optimization test surfaces as pure `jax.numpy` functions.

Each surface is registered by name with its global minimum, all global minimizers, domain,
plotting window and a default start, and `get` builds it at a given dimension:

    >>> import landscapes
    >>> ls = landscapes.get("rosenbrock", dim=5)
    >>> float(ls(ls.minimizers[0]))
    0.0

Surfaces are grouped by the difficulty they test (`KINDS`): convex quadratics, valleys,
multimodal surfaces, saddles and plateaus.

This package ships with `optbench`; it is unrelated to the PyPI project also called `landscapes`.
"""

from landscapes import convex, multimodal, saddles, valleys  # noqa: F401  (they register surfaces)
from landscapes.base import KINDS, Landscape, LandscapeError, get, names

__all__ = ["KINDS", "Landscape", "LandscapeError", "get", "names"]
