"""Linear interpolation between kept parameters (Goodfellow et al. 2015, Lucas et al. 2021):
the barrier on segments whose loss is known by hand, the engine's initial parameters, the
pairing of two optimizers' solutions by seed, and the report's figure and table."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from optbench.engine import params as kept
from optbench.report import figures, interpolation, slices, style
from optbench.report.data import load
from optbench.store import ResultStore
from tests.report.figure_checks import labelled_ticks, log_axes, panels, texts
from tests.report.test_report import assert_valid_images
from tests.report.test_report import parse as parse_page


@dataclass(frozen=True)
class Wells:
    """A program whose losses of one parameter θ are known: the train loss a double well
    (θ² − 1)² tilted by ``tilt``·(θ + 1), the test loss (θ − 1)², falling towards θ = 1."""

    tilt: float

    def split_loss(self, args, params, split):
        theta = params["theta"][0]
        if split == "train":
            return (theta**2 - 1) ** 2 + self.tilt * (theta + 1)
        return (theta - 1) ** 2


def along(program, start: float, end: float) -> np.ndarray:
    with jax.enable_x64(True):
        point = {"theta": jnp.asarray([start], jnp.float64)}
        other = {"theta": jnp.asarray([end], jnp.float64)}
        return np.asarray(interpolation.segment_losses(
            program, {}, point, other, jnp.asarray(interpolation.ALPHAS)))


def test_the_barrier_of_a_double_well_is_its_hump_above_the_higher_end():
    # θ = 2α − 1 from one well to the other: θ = 0 (α = 0.5, a grid point) is the hump
    train, test = along(Wells(0.0), -1.0, 1.0)
    np.testing.assert_allclose(train[[0, 10, -1]], [0.0, 1.0, 0.0], atol=1e-15)
    assert interpolation.barrier(train) == pytest.approx(1.0, abs=1e-15)
    # tilted, the ends differ (0 and 0.5) and the grid's highest point is θ = 0.1:
    # 0.99² + 0.25 · 1.1 = 1.2551, so the barrier is 1.2551 − 0.5
    train, _ = along(Wells(0.25), -1.0, 1.0)
    assert interpolation.barrier(train) == pytest.approx(0.7551, abs=1e-12)
    # the test loss falls all the way: the barrier is 0 exactly, not a rounding residue
    assert interpolation.barrier(test) == 0.0


def test_a_rise_that_stays_below_the_higher_end_is_no_barrier():
    """θ from −1 to 2: the hump at θ = 0 (loss 1) is below the end at θ = 2 (loss 9); and a
    constant loss has barrier 0 too."""
    train, _ = along(Wells(0.0), -1.0, 2.0)
    assert train[1] > train[0] and train[-1] == pytest.approx(9.0)
    assert interpolation.barrier(train) == 0.0
    assert interpolation.barrier(np.full(interpolation.POINTS, 0.3)) == 0.0
    assert np.isnan(interpolation.barrier([0.1, np.nan, 0.2]))


def test_runs_of_one_seed_start_from_the_same_parameters_as_the_engines(wine_paths):
    """The engine's parameters at step 0 (the kept paths) are the same for adam and gd on
    one seed, differ between seeds, and are what interpolation.initial_params rebuilds."""
    store = ResultStore(wine_paths)
    e = slices.evaluator(store.meta()["config"], "wine-ann")
    runs = store.table("runs").set_index("run_id")
    starts = {}
    for optimizer in ("adam", "gd"):
        rows, _, path = kept.load_path(wine_paths / kept.path_name(f"{optimizer}__wine-ann"),
                                       e.like)
        for j, row in enumerate(rows):
            run = runs.loc[f"{optimizer}/wine-ann/{row}"]
            first = jax.tree.leaves(jax.tree.map(lambda a, j=j: a[j, 0], path))
            rebuilt = jax.tree.leaves(interpolation.initial_params(
                e.program, e.args, int(run["seed"]), int(run["start"]), e.dtype))
            for a, b in zip(first, rebuilt, strict=True):
                np.testing.assert_array_equal(a, b)
            starts[(optimizer, int(run["seed"]))] = first
    assert {seed for _, seed in starts} == {0, 1}
    for seed in (0, 1):
        for a, b in zip(starts[("adam", seed)], starts[("gd", seed)], strict=True):
            np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b)
                   for a, b in zip(starts[("adam", 0)], starts[("adam", 1)], strict=True))


def test_segments_end_at_the_recorded_losses_and_pair_solutions_of_one_seed(wine_paths):
    """Each θ₀ → θ_T segment starts at the run's recorded step-0 losses and ends at its final
    ones; the adam ↔ gd segment of a seed runs from adam's final losses of that seed to gd's
    (a pairing across seeds would end at another run's)."""
    data = load(wine_paths)
    segments = {s.label: s for s in interpolation.task_segments(
        data.directory, data.config, "wine-ann", data.best_runs(), data.optimizers)}
    assert list(segments) == ["θ₀ → adam", "θ₀ → gd", "adam ↔ gd"]
    best = data.best_runs().set_index(["optimizer", "seed"])["run_id"]
    curves = data.curves.set_index(["run_id", "step"])
    last = data.curves["step"].max()

    def recorded(optimizer, seed, step):
        row = curves.loc[(best[(optimizer, seed)], step)]
        return [row[f"{split}_loss"] for split in interpolation.SPLITS]

    for optimizer in ("adam", "gd"):
        s = segments[f"θ₀ → {optimizer}"]
        assert list(s.seeds) == [0, 1] and s.losses.shape == (2, 2, interpolation.POINTS)
        for i, seed in enumerate(s.seeds):
            np.testing.assert_allclose(s.losses[i, :, 0], recorded(optimizer, seed, 0),
                                       rtol=1e-5)
            np.testing.assert_allclose(s.losses[i, :, -1], recorded(optimizer, seed, last),
                                       rtol=1e-5)
    pair = segments["adam ↔ gd"]
    assert list(pair.seeds) == [0, 1]
    for i, seed in enumerate(pair.seeds):
        np.testing.assert_allclose(pair.losses[i, :, 0], recorded("adam", seed, last),
                                   rtol=1e-5)
        np.testing.assert_allclose(pair.losses[i, :, -1], recorded("gd", seed, last),
                                   rtol=1e-5)
    assert (pair.barriers >= 0).all()


def test_the_report_draws_the_interpolation_and_tables_its_barriers(wine_paths_report):
    folder = wine_paths_report.parent
    assert_valid_images(folder, ["interpolation-wine-ann"])
    text = " ".join(parse_page(wine_paths_report).text)
    assert "Linear interpolation on wine-ann" in text and "barrier" in text
    table = pd.read_csv(folder / "interpolation-wine-ann.csv")
    assert set(zip(table["segment"], table["split"], strict=True)) == {
        (s, split) for s in ("θ₀ → adam", "θ₀ → gd", "adam ↔ gd") for split in ("train", "test")}
    assert (table["runs"] == 2).all() and (table["seeds"] == "0, 1").all()
    assert (table["barrier_min"] >= 0).all()
    assert (table["barrier_min"] <= table["barrier_median"]).all()
    assert (table["barrier_median"] <= table["barrier_max"]).all()
    assert "interpolation-wine-ann.csv" in parse_page(wine_paths_report).links


def test_the_figure_reads_its_barriers_and_every_log_axis(wine_paths):
    style.apply()
    (drawn,) = figures.interpolations(load(wine_paths))
    assert drawn.name == "interpolation-wine-ann" and len(panels(drawn.figure)) == 4
    for axis in log_axes(drawn.figure):
        assert len(labelled_ticks(axis)) >= 3, axis.axes.get_title()
    legends = [t for t in texts(drawn.figure) if "barrier" in t]
    assert len(legends) == 6  # 3 segments x 2 splits, each with its median and range
    table = drawn.table.set_index(["segment", "split"])
    shown = f"adam ↔ gd: barrier {table.loc[('adam ↔ gd', 'train'), 'barrier_median']:.3g}"
    assert any(t.startswith(shown) for t in legends), legends
    plt.close(drawn.figure)
