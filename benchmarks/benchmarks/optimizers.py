"""One update step of each optimizer on a flat float32 vector: ours against optax's.

The step is jitted with params and state donated, as a training loop runs it; ``setup``
compiles it and runs it once, so the timed body is one step of execution only."""

import jax
import numpy as np
import optax

from optbench import optimizers

# one per update rule (sgd and minibatch share gd's rule; they differ in the gradient)
NAMES = ["gd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "rmsprop_centered",
         "adam"]


def _stepper(tx):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


class TimeOptimizerUpdate:
    """A jitted, donated step at 1e5 and 1e7 parameters."""

    params = (NAMES, [10**5, 10**7])
    param_names = ["optimizer", "size"]
    timeout = 120

    def setup(self, name, size):
        spec = optimizers.get(name)
        self.grads = jax.numpy.asarray(np.random.default_rng(0).standard_normal(size, np.float32))
        self.runs = {}
        for label, tx in (("ours", spec.transformation()), ("optax", spec.optax_counterpart())):
            step = _stepper(tx)
            params = jax.numpy.ones(size, np.float32)
            params, state = jax.block_until_ready(step(params, tx.init(params), self.grads))
            self.runs[label] = [step, params, state]

    def _run(self, label):
        step, params, state = self.runs[label]
        self.runs[label][1:] = jax.block_until_ready(step(params, state, self.grads))

    def time_ours(self, name, size):
        self._run("ours")

    def time_optax(self, name, size):
        self._run("optax")
