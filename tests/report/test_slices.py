"""Kept parameters (``keep_params``) and the report's loss-landscape slices (Li et al. 2018)."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench.config import ConfigError, parse
from optbench.engine import params as kept
from optbench.engine import run_sweep
from optbench.report import slices, write_report
from optbench.store import ResultStore, block_key
from tests.report.conftest import WINE
from tests.report.test_report import assert_valid_images
from tests.report.test_report import parse as parse_page


@pytest.fixture(scope="module")
def wine_results(tmp_path_factory):
    return run_sweep(WINE, tmp_path_factory.mktemp("sweeps") / "wine", quiet=True,
                     compile_cache=False)


def test_keep_params_is_a_boolean_or_best():
    with pytest.raises(ConfigError, match=r"keep_params: found 'all'; allowed true, false or "
                                          r"\"best\""):
        parse({**WINE, "keep_params": "all"})
    assert parse({**WINE, "keep_params": "best"}).keep_params == "best"
    # a setting of what is written, not of the results: the hash ignores it
    assert parse(WINE).digest() == parse({**WINE, "keep_params": False}).digest()
    assert parse(WINE).digest() == parse({**WINE, "keep_params": "best"}).digest()


def test_best_keeps_the_path_of_the_best_setting_at_the_record_points(wine_paths):
    """The kept path ends at the kept final parameters, and the train loss along it is the
    recorded curve of each of the best setting's runs."""
    store = ResultStore(wine_paths)
    assert kept.path_name("adam__wine-ann") in store.manifest().files and not store.damage()
    task, _ = slices.build_task(store.meta()["config"], "wine-ann")
    args, program = task.args("full batch"), task.program("full batch")
    like = program.init(args, jax.random.key(0), jnp.int32(0))
    runs, steps, path = kept.load_path(wine_paths / kept.path_name("adam__wine-ann"), like)
    table = store.table("runs").set_index("run_id")
    best = table.loc[[f"adam/wine-ann/{r}" for r in runs]]
    assert list(steps) == [0, 10, 20] and len(runs) == 2  # 2 seeds of one learning rate
    assert best["learning_rate"].nunique() == 1
    medians = table[table["optimizer"] == "adam"].groupby("learning_rate")["final"].median()
    assert best["learning_rate"].iloc[0] == medians.idxmax()  # accuracy: the highest
    final = kept.load(wine_paths / kept.name("adam__wine-ann"), like)
    for leaf_path, leaf_final in zip(jax.tree.leaves(path), jax.tree.leaves(final),
                                     strict=True):
        np.testing.assert_array_equal(leaf_path[:, -1], leaf_final[runs])
    curves = store.table("curves").set_index(["run_id", "step"])["train_loss"]
    evaluate = jax.jit(lambda p: program.evaluate(args, p)["train_loss"])
    for j, row in enumerate(runs):
        for k, step in enumerate(steps):
            point = jax.tree.map(lambda a, j=j, k=k: a[j, k], path)
            np.testing.assert_allclose(evaluate(point), curves[(f"adam/wine-ann/{row}", step)],
                                       rtol=1e-5)


def test_the_pca_plane_holds_a_flat_path_exactly():
    """Points on a 2-D affine plane in 50-D: two directions hold all of the variance, and
    the projection keeps the distances from the last point."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(50, 2)))[0].T
    coefficients = rng.normal(size=(12, 2))
    points = 3.0 + coefficients @ basis
    directions, coords, explained = slices.pca_plane(points)
    np.testing.assert_allclose(explained.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(coords, axis=1),
                               np.linalg.norm(points - points[-1], axis=1), rtol=1e-10)
    np.testing.assert_allclose(directions @ directions.T, np.eye(2), atol=1e-12)


def test_report_draws_the_training_paths(wine_paths_report):
    index = wine_paths_report
    assert_valid_images(index.parent, ["training-paths-wine-ann", "landscape-slices-wine-ann"])
    text = " ".join(parse_page(index).text)
    assert "Training paths on wine-ann" in text and "principal directions" in text


def test_kept_parameters_are_in_the_manifest_and_load_in_the_tasks_shapes(wine_results):
    store = ResultStore(wine_results)
    names = {kept.name(block_key(o, "wine-ann")) for o in WINE["optimizers"]}
    assert names <= set(store.manifest().files)
    assert not store.damage()
    task, _ = slices.build_task(store.meta()["config"], "wine-ann")
    args = task.args("full batch")
    like = task.program("full batch").init(args, jax.random.key(0), jnp.int32(0))
    for name in names:
        every = kept.load(wine_results / name, like)
        runs = 2 if "adam" in name else 1
        shapes = [(runs, *np.shape(a)) for a in jax.tree.leaves(like)]
        assert [np.shape(a) for a in jax.tree.leaves(every)] == shapes
        one = kept.load(wine_results / name, like, run=runs - 1)
        assert jax.tree.map(np.shape, one) == jax.tree.map(np.shape, like)
        # trained: the weights moved from the (seed 0) start
        assert not np.allclose(one[0]["w"], like[0]["w"])


def test_the_slice_center_is_the_train_loss_at_the_kept_parameters(wine_results):
    meta = ResultStore(wine_results).meta()
    chosen = [("adam", "adam/wine-ann/1", 1)]
    (found,) = slices.task_slices(wine_results, meta["config"], "wine-ann", chosen)
    task, _ = slices.build_task(meta["config"], "wine-ann")
    args, program = task.args("full batch"), task.program("full batch")
    like = program.init(args, jax.random.key(0), jnp.int32(0))
    params = kept.load(wine_results / kept.name("adam__wine-ann"), like, run=1)
    expected = float(program.evaluate(args, params)["train_loss"])
    center_1d = found.values_1d[slices.POINTS_1D // 2]
    center_2d = found.values_2d[slices.POINTS_2D // 2, slices.POINTS_2D // 2]
    np.testing.assert_allclose([center_1d, center_2d], expected, rtol=1e-5)
    assert found.values_2d.shape == (slices.POINTS_2D, slices.POINTS_2D)
    assert np.all(np.isfinite(found.values_1d)) and found.values_1d.min() > 0
    # moving away along a random direction costs: the ends are above the trained point
    assert found.values_1d[0] > center_1d and found.values_1d[-1] > center_1d


def test_directions_are_filter_normalized_and_leave_biases():
    params = ({"w": jnp.arange(1.0, 13.0).reshape(4, 3), "b": jnp.ones(3)},
              {"w": jnp.full((3, 3, 2, 5), 2.0), "b": jnp.ones(5)})
    d = slices.filter_normalized(jax.random.key(1), params)
    for p, q in zip(params, d, strict=True):
        axes = tuple(range(p["w"].ndim - 1))
        norms = [np.sqrt(np.sum(np.square(a), axis=axes)) for a in (q["w"], p["w"])]
        np.testing.assert_allclose(*norms, rtol=1e-5)
        assert not np.any(q["b"])


def test_report_draws_the_slices_when_parameters_are_kept(wine_results, tmp_path):
    folder = shutil.copytree(wine_results, tmp_path / "wine")
    index = write_report(folder, workers=1)
    assert_valid_images(index.parent, ["landscape-slices-wine-ann"])
    text = " ".join(parse_page(index).text)
    assert "Loss-landscape slices on wine-ann" in text and "filter-normalized" in text
    assert "PCA" in text and "no kept network parameters" not in text
    assert "Skipped: no kept parameter paths in this folder" in text


def test_without_keep_params_the_slices_are_skipped_and_resume_adds_them(tmp_path):
    config = {**WINE, "keep_params": False, "optimizers": {"gd": {"learning_rate": [0.1]}}}
    folder = run_sweep(config, tmp_path / "wine", quiet=True, compile_cache=False)
    assert not (folder / kept.FOLDER).exists()
    text = " ".join(parse_page(write_report(folder, workers=1)).text)
    assert "Skipped: no kept network parameters in this folder" in text
    # the same sweep asked again with keep_params: the block runs again, now keeping them
    run_sweep({**config, "keep_params": True}, folder, quiet=True, compile_cache=False)
    assert (folder / kept.name("gd__wine-ann")).is_file()
    assert not ResultStore(folder).damage()
