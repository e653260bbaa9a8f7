"""Sharpness at record points: the recorded top Hessian eigenvalue of the training loss
equals the dense Hessian's (networks, CNNs, quadratics of known spectrum); Lanczos finds the
largest eigenvalue, not the largest in magnitude, and a warm start saves products; kinds
without a training loss and networks too large for the budget are refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from optbench import optimizers
from optbench.engine.run import PROGRAMS, DataTooLarge, RunSettings, parameter_count, run_block
from optbench.landscapes.convex import random_rotation
from optbench.tasks import curvature, registry
from optbench.validate import ConfigError


def _task(**fields):
    return registry.build([registry.parse(fields, "tasks[0]")])[0]


def _gd_block(task, lrs, steps=30, record_every=10, **kwargs):
    """Full-batch GD at ``lrs`` (one run each), keeping the parameters at every record
    point."""
    spec = optimizers.get("gd")
    settings = RunSettings(steps=steps, record_every=record_every, targets=(0.5,),
                           divergence_threshold=1e6)
    lr = np.asarray(lrs, float)
    return run_block(spec.pure, spec.gradient, task, settings, {"learning_rate": lr},
                     np.zeros(len(lr), int), np.zeros(len(lr), int), keep_path=True,
                     **kwargs).outcome


def _dense(task, path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top eigenvalue and the trace of the dense Hessian of the task's training loss at
    each of ``path``'s parameters (run and record axes first), in float64, and the standard
    error of Hutchinson's estimate of the trace there."""
    program, args = task.program("full batch"), task.args("full batch")
    with jax.enable_x64(True):
        args = jax.tree.map(lambda a: np.asarray(a, np.float64)
                            if np.issubdtype(np.asarray(a).dtype, np.floating) else a, args)
        points = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64).reshape(-1, *a.shape[2:]),
                              path)
        _, unravel = ravel_pytree(jax.tree.map(lambda a: a[0], points))

        @jax.jit
        def numbers(params):
            flat, _ = ravel_pytree(params)
            hessian = jax.hessian(lambda x: program.train_loss(args, unravel(x)))(flat)
            off = hessian - jnp.diag(jnp.diag(hessian))
            error = jnp.sqrt(2 * jnp.sum(off**2) / curvature.HUTCHINSON_PROBES)
            return jnp.linalg.eigvalsh(hessian)[-1], jnp.trace(hessian), error

        found = [numbers(jax.tree.map(lambda a, i=i: a[i], points))
                 for i in range(len(jax.tree.leaves(points)[0]))]
        shape = jax.tree.leaves(path)[0].shape[:2]
        return tuple(np.asarray(column).reshape(shape) for column in zip(*found, strict=True))


def _check_against_dense(task, outcome):
    assert outcome.path is not None
    top, trace, error = _dense(task, outcome.path)
    np.testing.assert_allclose(outcome.metrics["sharpness"], top, rtol=0.01)
    # Hutchinson's estimate: unbiased, within 4 standard errors at every record point
    assert np.all(np.abs(outcome.metrics["hessian_trace"] - trace) <= 4 * error + 1e-4)


@pytest.mark.parametrize("fields,lrs", [
    ({"kind": "mnist1d-mlp", "width": 6, "depth": 1, "activation": "tanh", "train_size": 100},
     [0.05, 0.5]),
    ({"kind": "digits-cnn", "channels": [2], "width": 0, "train_size": 100}, [0.5]),
], ids=["mlp", "cnn"])
def test_network_sharpness_and_trace_match_the_dense_hessian(fields, lrs):
    """At every record point of two learning rates (warm-started from the last point's
    eigenvector), within 1 % of jax.hessian's top eigenvalue at the same parameters, and
    hessian_trace within 4 standard errors of its trace; the CNN's products go
    forward-over-reverse through its convolutions."""
    task = _task(**fields, sharpness=True, hessian_trace=True)
    assert parameter_count(task) > curvature.DENSE_MAX_PARAMETERS
    outcome = _gd_block(task, lrs, steps=20)
    assert np.ptp(outcome.metrics["sharpness"]) > 0  # it moved: not one point checked
    _check_against_dense(task, outcome)


@pytest.mark.parametrize("dim", [2, 100])
def test_a_quadratics_sharpness_is_its_largest_curvature(dim):
    """f = x^T R diag(kappa^((i-1)/(d-1))) R^T x (a random rotation R): the Hessian's top
    eigenvalue is 2 kappa = 20 everywhere; dim 2 is exact (dense), dim 100 by Lanczos. The
    axis-aligned one's Hessian is diagonal: Hutchinson's trace is exact there."""
    task = _task(landscape="rotated_ellipsoid", dim=dim, params={"condition_number": 10.0},
                 sharpness=True)
    outcome = _gd_block(task, [0.01, 0.09], steps=20, record_every=5)
    np.testing.assert_allclose(outcome.metrics["sharpness"], 20.0, rtol=0.01)
    assert "hessian_trace" not in outcome.metrics
    diagonal = _task(landscape="ill_conditioned_quadratic", dim=dim, hessian_trace=True,
                     params={"condition_number": 10.0})
    traced = _gd_block(diagonal, [0.01], steps=10, record_every=5).metrics
    assert "sharpness" not in traced
    np.testing.assert_allclose(traced["hessian_trace"], 2 * np.sum(10.0 ** np.linspace(0, 1, dim)),
                               rtol=1e-5)
    assert outcome.metrics["f_gap"][0, -1] < outcome.metrics["f_gap"][0, 0]


def test_each_record_point_starts_from_the_last_ones_eigenvector():
    """On a quadratic (a constant Hessian, top eigenvalues 20 and 19.5 in 100 dimensions)
    the first record point's Lanczos, from a random vector, takes many products; every later
    one starts at the eigenvector found and stops at the minimum."""
    task = _task(landscape="rotated_ellipsoid", dim=100, params={"condition_number": 10.0},
                 sharpness=True)
    products = _gd_block(task, [0.01], steps=20, record_every=5).metrics["sharpness_hvps"][0]
    assert products[0] > 2 * curvature.LANCZOS_MIN_STEPS
    assert np.all(products[1:] <= curvature.LANCZOS_MIN_STEPS)


def _symmetric(spectrum, seed=0):
    q = random_rotation(len(spectrum), seed)
    return jnp.asarray(q @ np.diag(spectrum) @ q.T, jnp.float32), q


def test_lanczos_finds_the_largest_eigenvalue_not_the_largest_in_magnitude():
    spectrum = np.concatenate([[-50.0, -49.0], np.linspace(-5, 1, 97), [3.0]])
    matrix, _ = _symmetric(spectrum)
    start = jnp.asarray(np.random.default_rng(1).normal(size=100), jnp.float32)
    top = jax.jit(curvature.lanczos_top, static_argnums=0)(lambda v: matrix @ v, start)
    assert float(top.value) == pytest.approx(3.0, rel=1e-3)
    np.testing.assert_allclose(float(top.vector @ matrix @ top.vector), 3.0, rtol=1e-3)


def test_a_warm_start_at_the_eigenvector_needs_fewer_products():
    spectrum = np.linspace(0.0, 1.0, 300) ** 3 * 10
    matrix, q = _symmetric(spectrum)
    random = np.random.default_rng(2).normal(size=300)
    top = jax.jit(lambda start: curvature.lanczos_top(lambda v: matrix @ v, start))
    cold = top(jnp.asarray(random, jnp.float32))
    warm = top(jnp.asarray(q[:, -1] + 0.01 * random / np.linalg.norm(random), jnp.float32))
    assert float(warm.value) == pytest.approx(10.0, rel=1e-4)
    assert float(cold.value) == pytest.approx(10.0, rel=1e-2)
    assert curvature.LANCZOS_MIN_STEPS <= int(warm.steps) < int(cold.steps)


def test_sharpness_on_a_kind_without_a_training_loss_is_a_one_line_error():
    with pytest.raises(ConfigError) as error:
        _task(kind="online-linear", coefficients=[3.0, -1.0, -1.0], bounds=[-1.0, 1.0],
              sharpness=True)
    message = str(error.value)
    assert "\n" not in message and "tasks[0].sharpness" in message
    assert "online-linear" in message and "surface" in message and "mnist1d-mlp" in message
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.hessian_trace: found True; allowed only"):
        _task(kind="moving-target", dim=2, before=0.0, after=[5.0, 5.0], hessian_trace=True)
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.sharpness: found 'yes'; allowed true"):
        _task(landscape="sphere", dim=2, sharpness="yes")


def test_a_network_whose_products_do_not_fit_the_budget_is_refused_before_compiling():
    """About 1.1 M parameters: 28 parameter-sized vectors (4.4 MB each) need more than 60 MB,
    while the run alone (its parameters four times) would fit."""
    task = _task(kind="mnist1d-mlp", width=1024, train_size=100, sharpness=True)
    compiled = PROGRAMS.compiled
    with pytest.raises(DataTooLarge) as error:
        _gd_block(task, [0.1], max_memory_mb=60)
    message = str(error.value)
    assert "\n" not in message and "sharpness needs about" in message
    n = parameter_count(task)
    assert f"{curvature.LANCZOS_STEPS + 8} vectors of its {n} parameters" in message
    assert "max_memory_mb = 60" in message
    assert PROGRAMS.compiled == compiled


@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad"])
def test_preconditioned_sharpness_is_the_top_eigenvalue_of_the_scaled_hessian(name):
    """An adaptive method on a rotated ellipse (Hessian A, top eigenvalue 20): at each record
    point after the first, the top eigenvalue of P^-1/2 A P^-1/2 with P from the optimizer's
    own state (replayed here in float64); NaN at step 0, before any step; GD, without a
    preconditioner, records none."""
    task = _task(landscape="rotated_ellipsoid", dim=2, params={"condition_number": 10.0},
                 start=[1.0, -0.5], sharpness=True)
    spec = optimizers.get(name)
    settings = RunSettings(steps=10, record_every=5, targets=(0.5,), divergence_threshold=1e6)
    hparams = {k: np.full(1, v) for k, v in spec.defaults.items()} | {
        "learning_rate": np.full(1, 0.05)}
    outcome = run_block(spec.pure, spec.gradient, task, settings, hparams, np.zeros(1, int),
                        np.zeros(1, int)).outcome
    recorded = outcome.metrics["preconditioned_sharpness"][0]
    program, args = task.program("any"), task.args("any")
    with jax.enable_x64(True):
        f = lambda x: program.train_loss(args, x)  # noqa: E731
        hessian = np.asarray(jax.hessian(f)(jnp.asarray([1.0, -0.5])))
        x = jnp.asarray([1.0, -0.5])
        hp = {k: float(v[0]) for k, v in hparams.items()}
        state = spec.pure.init(x, hp)
        expected = [np.nan]
        for step in range(1, 11):
            update, state = spec.pure.update(jax.grad(f)(x), state, x, hp)
            x = x + update
            if step % 5 == 0:
                scale = 1 / np.sqrt(np.asarray(spec.pure.preconditioner(state, hp)))
                expected.append(np.linalg.eigvalsh(scale[:, None] * hessian * scale).max())
    assert np.isnan(recorded[0])
    np.testing.assert_allclose(recorded[1:], expected[1:], rtol=1e-3)
    np.testing.assert_allclose(outcome.metrics["sharpness"][0], 20.0, rtol=1e-3)
    assert np.all(np.isfinite(recorded[1:]))
    gd = _gd_block(task, [0.01], steps=10, record_every=5)
    assert "preconditioned_sharpness" not in gd.metrics


def test_the_chunk_budget_counts_the_lanczos_vectors():
    """One run's estimate grows by 28 parameter-sized vectors with sharpness on, so fewer
    runs share a chunk."""
    from optbench.engine.run import bytes_per_run
    spec = optimizers.get("gd")
    sizes = {}
    for sharp in (False, True):
        task = _task(kind="mnist1d-mlp", width=32, train_size=100, sharpness=sharp)
        args = task.args("full batch")
        sizes[sharp] = bytes_per_run(spec.pure, task.program("full batch"), args, np.float32,
                                     11, {"learning_rate": 0.1})
    n = parameter_count(task)
    # the extra vectors, and the record columns (sharpness, its products) per record point
    columns = len(curvature.Curvature().metrics())
    assert sizes[True] - sizes[False] == (curvature.LANCZOS_STEPS + 8) * 4 * n + 11 * 4 * columns
