"""A first look: every optimizer at its defaults on a few landscapes (until the sweep engine)."""

from __future__ import annotations

import jax.numpy as jnp
import pandas as pd

import landscapes
from optbench import optimizers
from optbench.optimizers.reference import trajectory

QUICK_LANDSCAPES = (("sphere", 10), ("ill_conditioned_quadratic", 10), ("rosenbrock", 2),
                    ("himmelblau", 2), ("rastrigin", 2))


def quick_table(steps: int = 2000) -> pd.DataFrame:
    """Final ``f - f_min`` of each optimizer (rows) on each landscape (columns)."""
    table = {}
    for name, dim in QUICK_LANDSCAPES:
        surface = landscapes.get(name, dim=dim)
        x0 = jnp.asarray(surface.start, jnp.float32)
        column = {}
        for optimizer in optimizers.names():
            final = trajectory(optimizers.get(optimizer).transformation(), surface.fn, x0, steps)
            column[optimizer] = float(surface.fn(final[-1])) - surface.f_min
        table[f"{name}-{dim}d"] = column
    frame = pd.DataFrame(table)
    frame.index.name = "optimizer"
    return frame.reset_index()
