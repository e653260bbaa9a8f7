"""Synthetic optimization test surfaces as pure `jax.numpy` functions.

Each surface is registered by name with its global minimum, all global minimizers, domain,
plotting window and a default start, and `get` builds it at a given dimension:

    >>> from optbench import landscapes
    >>> ls = landscapes.get("rosenbrock", dim=5)
    >>> float(ls(ls.minimizers[0]))
    0.0

Surfaces are grouped by the difficulty they test (`KINDS`): convex quadratics, valleys,
multimodal surfaces, saddles and plateaus.

Installed as ``optbench.landscapes`` (the repository keeps it in the top-level folder
``landscapes/``), so it cannot collide with the unrelated PyPI project ``landscapes``.
"""

from . import convex, multimodal, saddles, valleys  # noqa: F401  (they register surfaces)
from .base import KINDS, Landscape, LandscapeError, Parts, box, get, names, register

__all__ = ["KINDS", "Landscape", "LandscapeError", "Parts", "box", "get", "names", "register"]
