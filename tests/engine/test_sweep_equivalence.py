"""The engine's batched runs equal the same configurations run one by one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench import optimizers
from optbench.engine.run import RunSettings, run_block
from optbench.optimizers.reference import VERIFY_LANDSCAPES, trajectory
from tests.engine.helpers import surface_task

STEPS, RECORD_EVERY, SEEDS = 200, 10, (0, 1, 2, 3)


def _rosenbrock_sweep(name):
    spec = optimizers.get(name)
    task = surface_task(landscape="rosenbrock", dim=2, start="random")
    settings = RunSettings(steps=STEPS, record_every=RECORD_EVERY, targets=(1e-1, 1e-3),
                           divergence_threshold=1e10, float64=True)
    # 8 learning rates up to the one screened as non-chaotic, x 4 seeds (random starts)
    lrs = VERIFY_LANDSCAPES["rosenbrock-2d"]["learning_rates"][name] * np.geomspace(0.01, 1, 8)
    lr = np.repeat(lrs, len(SEEDS))
    hparams = {k: np.full(len(lr), v) for k, v in spec.defaults.items()} | {"learning_rate": lr}
    seeds = np.tile(SEEDS, len(lrs))
    result = run_block(spec.pure, spec.gradient, task, settings, hparams, seeds,
                       np.zeros(len(lr), int))
    return spec, task, lr, seeds, result.outcome


# Centered RMSprop divides by sqrt(nu - mu^2 + eps): where the gradient barely changes,
# nu - mu^2 cancels almost entirely and turns ulp-level differences between the batched and
# the single-run program (XLA fuses them differently) into ~1e-12 ones within 200 steps.
TOLERANCE = {"rmsprop_centered": 1e-11}


@pytest.mark.parametrize("name", optimizers.names())
def test_float64_sweep_equals_each_configuration_alone(name):
    spec, task, lr, seeds, outcome = _rosenbrock_sweep(name)
    tolerance = TOLERANCE.get(name, 1e-12)
    with jax.enable_x64(True):
        args = jax.tree.map(jnp.asarray, task.args(spec.gradient))
        alone = jax.jit(lambda lr, x0: trajectory(
            optimizers.as_gradient_transformation(spec.pure, {**spec.defaults,
                                                              "learning_rate": lr}),
            task.surface.fn, x0, STEPS))
        compared, program = 0, task.program(spec.gradient)
        for i in range(len(lr)):
            x0 = program.init(args, jax.random.split(jax.random.key(int(seeds[i])))[0], 0)
            path = np.concatenate([np.asarray(x0)[None], np.asarray(alone(lr[i], x0))])
            gaps = np.asarray(jax.vmap(task.surface.fn)(jnp.asarray(path))) - task.f_min
            diverged_alone = not np.all(np.isfinite(gaps) & (gaps <= 1e10))
            assert bool(outcome.diverged[i]) == diverged_alone, i
            if diverged_alone:
                continue
            expected = path[::RECORD_EVERY]
            scale = np.max(np.abs(expected), axis=-1)
            deviation = np.max(np.abs(outcome.trajectory[i] - expected), axis=-1) / scale
            assert np.all(deviation <= tolerance), (i, deviation.max())
            # f - f_min of equal-to-1e-12 points: Rosenbrock's cancellation amplifies it
            np.testing.assert_allclose(outcome.curve[i], gaps[::RECORD_EVERY], rtol=1e-10)
            compared += 1
    assert compared >= len(lr) // 2  # most runs converge, so the comparison means something
