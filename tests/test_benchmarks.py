"""The asv suite stays runnable and measures what it says: each benchmark runs once, small,
and its result is checked against an independent computation."""

import importlib
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench import landscapes, optimizers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.fixture(scope="module")
def suite():
    return {name: importlib.import_module(f"benchmarks.{name}")
            for name in ("optimizers", "sweep", "landscapes", "convergence")}


def test_optimizer_update_benchmark_steps_ours_and_optax_alike(suite):
    bench = suite["optimizers"].TimeOptimizerUpdate()
    size = 1000
    bench.setup("adam", size)
    bench.time_ours("adam", size)
    bench.time_optax("adam", size)
    # both took two steps (setup's warm-up and the timed one) from ones with the same grads
    tx = optimizers.get("adam").optax_counterpart()
    params = jnp.ones(size, jnp.float32)
    state = tx.init(params)
    for _ in range(2):
        updates, state = tx.update(bench.grads, state, params)
        params = params + updates
    for label in ("ours", "optax"):
        np.testing.assert_allclose(bench.runs[label][1], params, rtol=1e-6)
    assert not np.allclose(params, 1.0)


def test_sweep_block_benchmark_reuses_its_program(suite):
    first = suite["sweep"]._block("momentum", n_lr=2, n_start=2, steps=20)
    again = suite["sweep"]._block("momentum", n_lr=2, n_start=2, steps=20)
    reference = suite["sweep"]._block("momentum", reference=True, n_lr=2, n_start=2, steps=20)
    assert first.outcome.curve.shape == (4, 3)
    assert again.program_reused and again.compile_seconds == 0.0
    np.testing.assert_allclose(again.outcome.final, reference.outcome.final, rtol=1e-5)


def test_landscape_benchmark_evaluates_the_surface(suite):
    bench = suite["landscapes"].TimeSurfaceGrid()
    bench.setup("himmelblau")
    bench.time_grid("himmelblau")
    values = np.asarray(bench.fn(bench.grid))
    surface = landscapes.get("himmelblau")
    assert values.shape == (512, 512)
    point = np.asarray(bench.grid[100, 200])
    np.testing.assert_allclose(values[100, 200], float(surface.fn(jnp.asarray(point))),
                               rtol=1e-6)
    assert values.min() < 0.1  # the grid passes close to Himmelblau's minima (f = 0)


def test_convergence_benchmark_tracks_every_optimizer(suite, monkeypatch):
    module = suite["convergence"]
    monkeypatch.setitem(module.CONFIG, "steps", 300)
    bench = module.TrackConvergence()
    runs = bench.setup_cache()
    start_gap = float(landscapes.get("rosenbrock", dim=2).fn(jnp.asarray([-1.2, 1.0])))
    for name in module.LEARNING_RATES:
        final = bench.track_final_gap(runs, name)
        assert 0 <= final < start_gap
        steps = bench.track_steps_to_target(runs, name)
        assert np.isnan(steps) or 0 < steps <= 300
    assert bench.track_steps_to_target(runs, "momentum") <= 300  # 122 steps at full length


def test_peakmem_benchmark_records_at_most_200_points(suite):
    result = suite["sweep"]._block("adam", n_lr=1, n_start=2, steps=5000, record_every=None)
    assert result.outcome.curve.shape[1] <= 200
    assert jax.numpy.isfinite(result.outcome.final).all()


def test_network_block_benchmark_trains_every_seed(suite):
    result = suite["sweep"]._network_block("mnist1d-cnn", seeds=2, steps=20)
    start, end = result.outcome.metrics["train_loss"][:, 0], result.outcome.metrics[
        "train_loss"][:, -1]
    assert result.outcome.curve.shape == (2, 2) and not start[0] == start[1]  # two seeds
    assert np.all(end < start)  # 20 Adam steps lower the training loss
