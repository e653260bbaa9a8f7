"""One update step of each optimizer on a flat float32 vector: ours against optax's."""

import jax
import jax.numpy as jnp
import numpy as np

from optbench import optimizers

NAMES = ["gd", "momentum", "adagrad", "adadelta", "rmsprop", "adam"]


def _stepper(tx):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return params + updates, state

    return jax.jit(step, donate_argnums=(0, 1))


class TimeOptimizerStep:
    """A jitted step with its buffers donated, as a training loop runs it."""

    params = (NAMES, [10**5, 10**6])
    param_names = ["optimizer", "size"]
    timeout = 120

    def setup(self, name, size):
        spec = optimizers.get(name)
        self.grads = jnp.asarray(np.random.default_rng(0).standard_normal(size), jnp.float32)
        self.runs = {}
        for label, tx in (("ours", spec.transformation()), ("optax", spec.optax_counterpart())):
            step = _stepper(tx)
            params = jnp.ones(size, jnp.float32)
            params, state = jax.block_until_ready(step(params, tx.init(params), self.grads))
            self.runs[label] = [step, params, state]

    def _run(self, label):
        step, params, state = self.runs[label]
        self.runs[label][1:] = jax.block_until_ready(step(params, state, self.grads))

    def time_ours(self, name, size):
        self._run("ours")

    def time_optax(self, name, size):
        self._run("optax")
