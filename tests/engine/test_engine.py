"""Engine behaviour: divergence, recording, chunking, sharding, determinism."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench import optimizers
from optbench.engine.run import (
    RunSettings,
    _devices_for,
    _fitting_chunk,
    _sharing_memory,
    chunk_size_for,
    run_block,
)
from tests.engine.helpers import surface_task


def _block(name="gd", lrs=(1e-3,), seeds=(0,), landscape="ill_conditioned_quadratic", dim=4,
           start="default", steps=100, record_every=10, float64=True, scoring="step",
           **kwargs):
    spec = optimizers.get(name)
    task = surface_task(landscape=landscape, dim=dim, start=start)
    settings = RunSettings(steps=steps, record_every=record_every, targets=(1.0, 1e-2, 1e-6),
                           divergence_threshold=1e6, float64=float64, scoring=scoring)
    lr = np.repeat(np.asarray(lrs, float), len(seeds))
    hparams = {k: np.full(len(lr), v) for k, v in spec.defaults.items()} | {"learning_rate": lr}
    result = run_block(spec.pure, spec.gradient, task, settings, hparams,
                       np.tile(seeds, len(lrs)), np.zeros(len(lr), int), **kwargs)
    return task, settings, result


@pytest.mark.parametrize("scoring", ["step", "record"])
def test_a_run_bad_from_its_start_has_no_values_rather_than_the_optimums(scoring):
    """A start beyond the divergence threshold (f - f_min about 1e8 > 1e6): the run
    diverges at step 0 with no valid record point, so its curve is NaN, never 0 (which
    reads as the optimum); the run beside it is not affected."""
    _, _, far = _block(lrs=(1e-3, 1e-3), seeds=(0,), start=[1e3] * 4, scoring=scoring)
    out = far.outcome
    assert out.diverged.all() and (out.divergence_step == 0).all()
    assert np.isnan(out.curve).all() and np.isnan(out.final).all()
    assert all(np.isnan(v).all() for v in out.metrics.values())
    _, _, near = _block(lrs=(1e-3, 1e-3), seeds=(0,), start=[1.0] * 4, scoring=scoring)
    assert not near.outcome.diverged.any() and np.isfinite(near.outcome.curve).all()


@pytest.mark.parametrize("record_every", [1, 2, 10])
def test_divergence_is_flagged_and_frozen_without_touching_other_runs(record_every):
    # gradient descent on sum kappa^(i/(d-1)) x_i^2 (kappa=100) diverges for lr > 0.01
    _, settings, mixed = _block(lrs=(1e-3, 0.5, 3e-3), record_every=record_every)
    # the same batch shape (so the same compiled program) with a calm run in the middle
    _, _, calm = _block(lrs=(1e-3, 2e-3, 3e-3), record_every=record_every)
    out = mixed.outcome
    assert out.diverged.tolist() == [False, True, False] and not calm.outcome.diverged.any()
    for field in ("curve", "trajectory", "final", "best", "hit_step"):
        np.testing.assert_array_equal(getattr(out, field)[[0, 2]],
                                      getattr(calm.outcome, field)[[0, 2]])
    # the growth factor is |1 - 2*0.5*100| = 99 a step: f - f_min passes 1e6 within 4 steps
    step = int(out.divergence_step[1])
    assert 1 <= step <= 4
    # frozen at its last valid recorded point: constant after the divergence, and valid
    steps = settings.recorded_steps
    frozen = out.curve[1, steps > step]
    assert np.all(frozen == frozen[0]) and np.all(frozen <= settings.divergence_threshold)
    assert out.final[1] == frozen[0] and np.isfinite(out.trajectory[1]).all()


def test_runs_stay_in_the_domain_where_the_minimum_is_taken_over_it():
    """McCormick is unbounded below beyond its box, where f_min is its minimum: heavy ball
    from the box's corner left it (f - f_min reached -973, a "success"); its updates are
    clipped to the box now, so it ends at the minimizer. Elsewhere nothing is clipped: on
    the quadratic a large step still diverges."""
    task, _, confined = _block(name="momentum", lrs=(0.1,), landscape="mccormick", dim=2,
                               start=[-1.5, -3.0], steps=2000, record_every=100)
    low, high = task.surface.domain
    path = confined.outcome.trajectory[0]
    assert (path >= low - 1e-12).all() and (path <= high + 1e-12).all()
    assert abs(confined.outcome.final[0]) < 1e-9 and not confined.outcome.diverged[0]
    np.testing.assert_allclose(path[-1], task.surface.minimizers[0], atol=1e-6)
    _, _, free = _block(lrs=(0.5,), start=[4.0] * 4)  # beyond its box's edge of 5 at once
    assert free.outcome.diverged[0]


def test_steps_to_target_is_the_first_step_below_it():
    task, settings, result = _block(name="momentum", lrs=(2e-3,), record_every=1, steps=300)
    curve = result.outcome.curve[0]  # recorded at every step
    for k, target in enumerate(settings.targets):
        below = np.flatnonzero(curve <= target)
        expected = below[0] if below.size else -1
        assert result.outcome.hit_step[0, k] == expected
    assert result.outcome.best[0] == curve.min()


def test_record_scoring_scores_the_record_points_only():
    """scoring = "record": the same runs, each hit step the first record point whose value
    reaches the target (never before the exact step), and divergence seen at a record."""
    kwargs = dict(name="momentum", lrs=(2e-3, 0.5), steps=300, record_every=25)
    _, settings, exact = _block(**kwargs)
    _, _, coarse = _block(**kwargs, scoring="record")
    records = settings.recorded_steps
    np.testing.assert_array_equal(coarse.outcome.curve, exact.outcome.curve)
    exact_hits, hits = exact.outcome.hit_step[0], coarse.outcome.hit_step[0]
    assert (exact_hits % 25 != 0).any()  # some exact hit falls between record points
    for k, target in enumerate(settings.targets):
        reached = np.flatnonzero(coarse.outcome.curve[0] <= target)
        assert hits[k] == (records[reached[0]] if reached.size else -1)
        assert hits[k] >= exact_hits[k] >= 0 or hits[k] == exact_hits[k] == -1
    assert exact.outcome.diverged[1] and coarse.outcome.diverged[1]  # lr 0.5 diverges
    divergence = coarse.outcome.divergence_step[1]
    assert divergence in records and divergence >= exact.outcome.divergence_step[1]


def test_record_every_need_not_divide_steps():
    _, settings, result = _block(steps=95, record_every=10)
    assert settings.recorded_steps.tolist() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
    assert result.outcome.curve.shape == (1, 11)
    _, _, every = _block(steps=95, record_every=1)
    np.testing.assert_allclose(result.outcome.curve[0], every.outcome.curve[0][[*range(0, 91, 10),
                                                                               95]], rtol=1e-14)


def test_chunks_give_the_same_numbers_as_one_batch():
    kwargs = dict(name="adam", lrs=np.geomspace(1e-3, 1e-1, 6), seeds=(0, 1, 2),
                  landscape="rosenbrock", dim=2, start="random")
    _, _, whole = _block(**kwargs)
    _, _, chunked = _block(max_memory_mb=0.001, **kwargs)
    assert whole.chunk_size == 18 and chunked.chunk_size < 18
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), whole.outcome,
                 chunked.outcome)


def test_same_seed_same_numbers_and_other_seed_other_start():
    kwargs = dict(name="sgd", seeds=(3, 4), landscape="himmelblau", dim=2, start="random")
    _, _, first = _block(**kwargs)
    _, _, second = _block(**kwargs)
    np.testing.assert_array_equal(first.outcome.trajectory, second.outcome.trajectory)
    assert not np.array_equal(first.outcome.trajectory[0, 0], first.outcome.trajectory[1, 0])


def test_each_start_of_a_seed_draws_its_own_noise():
    """Two starts at the same point, one seed: each (seed, start) pair draws its own noise."""
    spec = optimizers.get("sgd")
    task = surface_task(landscape="sphere", dim=2, noise=1.0, start=[[1.0, 1.0]] * 2)
    settings = RunSettings(steps=20, record_every=5, targets=(1e-2,), divergence_threshold=1e6)
    hparams = {k: np.full(3, v) for k, v in spec.defaults.items()} | {
        "learning_rate": np.full(3, 0.1)}
    curve = run_block(spec.pure, spec.gradient, task, settings, hparams, np.zeros(3, int),
                      np.array([0, 1, 1])).outcome.curve
    assert curve[0, 0] == curve[1, 0] and not np.array_equal(curve[0], curve[1])
    np.testing.assert_array_equal(curve[1], curve[2])


def test_gradient_noise_separates_gd_sgd_and_minibatch():
    task = surface_task(landscape="sphere", dim=3, noise=1.0, batch_size=16)
    keys = jax.random.split(jax.random.key(0), 400)
    x = jnp.ones(3)

    def noise_std(source):
        args = task.args(source)
        program = task.program(source)
        exact = jax.grad(program.value, argnums=1)(args, x)
        grads = jax.vmap(lambda k: program.loss_and_grad(args, x, k, 3)[1])(keys)
        return float(jnp.std(grads - exact))

    assert noise_std("full batch") == 0.0
    assert 0.9 < noise_std("one sample") < 1.1
    assert 0.9 / 4 < noise_std("mini-batch") < 1.1 / 4


SHARDED = textwrap.dedent("""
    import json, jax, numpy as np
    from optbench import optimizers
    from optbench.engine.run import RunSettings, run_block
    from optbench.tasks import registry
    spec = optimizers.get("adam")
    task, = registry.build([registry.parse({"landscape": "rosenbrock", "dim": 2,
                                            "start": "random"}, "tasks[0]")])
    settings = RunSettings(100, 10, (1e-1, 1e-3), 1e8, float64=True)
    lr = np.repeat(np.geomspace(1e-3, 1e-1, 5), 3)
    hp = {k: np.full(15, v) for k, v in spec.defaults.items()} | {"learning_rate": lr}
    args = (spec.pure, spec.gradient, task, settings, hp, np.tile([0, 1, 2], 5), np.zeros(15, int))
    one = run_block(*args, devices=jax.devices()[:1])
    four = run_block(*args)
    alone = run_block(*args[:4], {k: v[:1] for k, v in hp.items()}, args[5][:1], args[6][:1])
    print(json.dumps({"devices": four.n_devices, "chunk": four.chunk_size,
                      "alone": [alone.n_devices, alone.chunk_size],
                      "alone_equal": bool(np.array_equal(alone.outcome.curve[0],
                                                         one.outcome.curve[0])),
                      "max_rel": max(float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
                                     for a, b in zip(jax.tree.leaves(one.outcome),
                                                     jax.tree.leaves(four.outcome))
                                     if a.dtype.kind == "f"),
                      "equal_flags": bool((one.outcome.diverged == four.outcome.diverged).all())}))
""")


def test_sharded_over_four_devices_equals_one_device(tmp_path):
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "4", "JAX_PLATFORMS": "cpu"}
    # outside the checkout, so that the child imports the installed package
    out = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4 and report["chunk"] % 4 == 0
    assert report["equal_flags"] and report["max_rel"] <= 1e-12
    assert report["alone"] == [1, 1] and report["alone_equal"]  # one run: one device, no padding


def test_a_block_has_no_more_devices_than_runs_or_than_the_ram_holds_with_its_data():
    cpus = [SimpleNamespace(platform="cpu", process_index=0) for _ in range(4)]
    assert _devices_for(cpus, runs=16, memory_holds=100) == cpus
    assert _devices_for(cpus, runs=2, memory_holds=100) == cpus[:2]
    assert _devices_for(cpus, runs=16, memory_holds=3) == cpus[:3]
    assert _devices_for(cpus, runs=16, memory_holds=0) == cpus[:1]  # one run may still fit
    gpus = [SimpleNamespace(platform="gpu", process_index=0) for _ in range(4)]
    assert _devices_for(gpus, runs=16, memory_holds=1) == gpus  # each has its own memory
    assert _devices_for(gpus, runs=2, memory_holds=1) == gpus[:2]


def test_the_cpu_devices_of_this_process_share_one_memory():
    cpu, gpu = (SimpleNamespace(platform=p, process_index=0) for p in ("cpu", "gpu"))
    elsewhere = SimpleNamespace(platform="cpu", process_index=1)  # another process's RAM
    assert _sharing_memory([cpu] * 4) == 4
    assert _sharing_memory([cpu, cpu, elsewhere, elsewhere]) == 2
    assert _sharing_memory([gpu] * 4) == 1


def test_a_compiled_chunk_is_shrunk_to_fit_the_ram_its_devices_share():
    """The compiled program's analysis is one device's share: CPU devices that keep their
    shares in one RAM add up against the budget; devices with their own memory do not."""
    share = SimpleNamespace(temp_size_in_bytes=200, argument_size_in_bytes=80,
                            output_size_in_bytes=20)
    compiled = SimpleNamespace(memory_analysis=lambda: share)  # 300 bytes per device
    assert _fitting_chunk(compiled, 16, budget=1000, n_devices=4, sharing=1) == 16
    smaller = _fitting_chunk(compiled, 16, budget=1000, n_devices=4, sharing=4)
    assert smaller % 4 == 0 and 4 <= smaller < 16


def test_a_chunk_holds_every_run_padded_to_the_devices_or_what_memory_allows():
    mb = 2**20
    assert chunk_size_for(16, mb, 100) == 16
    assert chunk_size_for(16, mb, 100, n_devices=3) == 18  # one chunk, not 15 and 1 padded
    assert chunk_size_for(16, mb, 7, n_devices=3) == 6  # the most that fit, per device alike
    assert chunk_size_for(16, mb, 1, n_devices=3) == 3  # never fewer than one run per device
    assert chunk_size_for(16, mb, 5) == 5


@pytest.mark.parametrize("float64", [False, True])
def test_dtype_follows_the_float64_setting(float64):
    _, _, result = _block(float64=float64)
    assert result.outcome.trajectory.dtype == (np.float64 if float64 else np.float32)


@dataclass(frozen=True)
class _Climb:
    """A maximized metric: GD on -x climbs x by the learning rate each step; the score is x,
    until it becomes NaN above 1.3 (as an accuracy never does, but a broken run may)."""

    metric: ClassVar[str] = "score"
    maximize: ClassVar[bool] = True
    per_step_metric: ClassVar[bool] = False

    def init(self, args, key, start_index):
        return jnp.zeros(1, args["ceiling"].dtype)

    def loss_and_grad(self, args, params, key, step):
        return -jnp.sum(params), -jnp.ones_like(params)

    def evaluate(self, args, params):
        x = jnp.sum(params)
        return {"score": jnp.where(x <= args["ceiling"], x, jnp.nan)}

    def project(self, args, params):
        return params


@dataclass(frozen=True)
class _ClimbTask:
    kind: ClassVar[str] = "climb"
    name: ClassVar[str] = "climb"
    metric: ClassVar[str] = _Climb.metric
    maximize: ClassVar[bool] = _Climb.maximize
    n_starts: ClassVar[int] = 1

    def program(self, gradient_source):
        return _Climb()

    def args(self, gradient_source):
        return {"ceiling": np.float64(1.3)}

    def describe(self):
        return {"task": self.name, "kind": self.kind}


def test_a_maximized_metric_keeps_the_highest_value_hits_upward_and_diverges_only_if_not_finite():
    """x = 0.125 t: it reaches 0.5 at step 4 and 1.0 at step 8, never 2.0; it passes the
    divergence threshold (1.0) at step 9 without diverging (a higher score is better), and
    diverges at step 11, when the score turns NaN; the best is then 1.25, the last finite."""
    spec = optimizers.get("gd")
    settings = RunSettings(steps=16, record_every=1, targets=(0.5, 1.0, 2.0),
                           divergence_threshold=1.0)
    result = run_block(spec.pure, spec.gradient, _ClimbTask(), settings,
                       {"learning_rate": np.asarray([0.125])}, np.zeros(1, int),
                       np.zeros(1, int))
    out = result.outcome
    assert out.hit_step[0].tolist() == [4, 8, -1]
    assert float(out.best[0]) == 1.25 and float(out.final[0]) == 1.25
    assert bool(out.diverged[0]) and int(out.divergence_step[0]) == 11
    np.testing.assert_array_equal(out.curve[0, :12], 0.125 * np.arange(12).clip(max=10))


@dataclass(frozen=True)
class _TestNaN(_Climb):
    """_Climb, with a test metric that is NaN from the start: it must not flag the run."""

    def evaluate(self, args, params):
        return {**super().evaluate(args, params), "test_score": jnp.asarray(jnp.nan)}


@dataclass(frozen=True)
class _TestNaNTask(_ClimbTask):
    def program(self, gradient_source):
        return _TestNaN()


def test_a_non_finite_test_metric_does_not_mark_a_run_diverged():
    """The test split is reported, never used: not even to decide divergence."""
    spec = optimizers.get("gd")
    settings = RunSettings(steps=4, record_every=1, targets=(0.5,), divergence_threshold=1.0)
    out = run_block(spec.pure, spec.gradient, _TestNaNTask(), settings,
                    {"learning_rate": np.asarray([0.125])}, np.zeros(1, int),
                    np.zeros(1, int)).outcome
    assert not bool(out.diverged[0]) and float(out.final[0]) == 0.5
