"""Evaluating surfaces on a plotting grid, as figures and landscape slices do."""

import jax
import jax.numpy as jnp
import numpy as np

from optbench import landscapes


class TimeSurfaceGrid:
    params = (["rosenbrock", "rastrigin", "himmelblau", "ackley"],)
    param_names = ["landscape"]

    def setup(self, name):
        surface = landscapes.get(name)
        (x0, x1), (y0, y1) = surface.window
        x, y = np.meshgrid(np.linspace(x0, x1, 512), np.linspace(y0, y1, 512))
        self.grid = jnp.asarray(np.stack([x, y], axis=-1), jnp.float32)
        self.fn = jax.jit(surface.fn)
        jax.block_until_ready(self.fn(self.grid))

    def time_grid(self, name):
        jax.block_until_ready(self.fn(self.grid))
