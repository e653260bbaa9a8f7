"""What the report's figures show a reader: readable log axes, zeros drawn as zeros, one
panel per metric group, notes where curves hide each other, colour bars and zooms."""

import pkgutil
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer

from optbench.report import build, figures, surfaces, workers
from optbench.report.data import ReportData, load
from tests.report.figure_checks import labelled_ticks, log_axes, panels, texts


def drawn(draw, data) -> list[plt.Figure]:
    return [d.figure for d in draw(data)]


@pytest.mark.parametrize("results", ["surface_results", "data_results"])
def test_every_log_axis_of_every_figure_can_be_read(results, request):
    data = load(request.getfixturevalue(results))
    for _, name in build.FIGURES:
        draw = pkgutil.resolve_name(name)
        try:
            shown = drawn(draw, data)
        except figures.Skip:
            continue
        for figure in shown:
            for axis in log_axes(figure):
                assert len(labelled_ticks(axis)) >= 3, (draw.__name__, axis.axes.get_title())
            plt.close(figure)


def test_optax_comparison_shows_exact_zeros_as_zero_not_as_tiny_bars(surface_results):
    data = load(surface_results)
    reference = data.curves.copy()
    adam = reference["run_id"].isin(data.runs.loc[data.runs["optimizer"] == "adam", "run_id"])
    reference.loc[adam, "f_gap"] *= 1 + 1e-6  # adam deviates by 1e-6, the others not at all
    data.reference_curves = reference
    (figure,) = drawn(figures.optax_comparison, data)
    (ax,) = figure.axes
    tops = [bar.get_y() + bar.get_height() for bar in ax.patches]
    assert len(tops) == 1 and tops[0] == pytest.approx(1e-6, rel=1e-3)
    assert min(bar.get_y() for bar in ax.patches) > 1e-8  # no bar from or to 1e-17
    assert "0 (exact)" in texts(ax)
    zeros = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(zeros) == 3  # gd, sgd, minibatch: a marker each on the zero line
    plt.close(figure)


def test_success_heatmap_draws_each_metric_group_at_its_own_named_target(mixed_data):
    (figure,) = drawn(figures.success_heatmap, mixed_data)
    heatmaps = panels(figure)
    titles = [ax.get_title() for ax in heatmaps]
    assert len(heatmaps) == 2, titles
    assert titles[0].startswith("f − f_min ≤ ") and titles[1].startswith("test loss ≤ ")
    surface_target, loss_target = (float(t.split("≤ ")[1]) for t in titles)
    assert surface_target in (1.0, 1e-2, 1e-4) and loss_target in (1.0, 0.1)
    for ax in heatmaps:  # a cell without a rate says why
        cells = {(round(t.get_position()[0], 1), round(t.get_position()[1], 1))
                 for t in ax.texts if t.get_text()}
        columns, rows = len(ax.get_xticks()), len(ax.get_yticks())
        assert len(cells) == columns * rows
    not_run = texts(heatmaps[1]).count("not run")
    assert not_run == 2  # sgd and minibatch did not run the regression
    plt.close(figure)


def test_ecdf_draws_one_panel_per_metric_group_naming_its_targets(mixed_data):
    (figure,) = drawn(figures.ecdf, mixed_data)
    shown = panels(figure)
    assert [ax.get_title() for ax in shown] == [
        "f − f_min: 2 task(s), targets 1, 0.01, 0.0001", "test loss: 1 task(s), targets 1, 0.1"]
    assert [len(ax.lines) for ax in shown] == [4, 2]  # the optimizers that ran each group
    plt.close(figure)


def _with_curves(results, change) -> ReportData:
    """The sweep's data with ``change(curves, runs)`` applied to its f_gap curves."""
    data = load(results)
    data.curves = change(data.curves.copy(), data.runs)
    return data


def _runs_of(runs, optimizer, task):
    return runs.loc[(runs["optimizer"] == optimizer) & (runs["task"] == task), "run_id"]


def test_convergence_draws_tiny_values_as_they_are_and_says_where_zeros_are(surface_results):
    def change(curves, runs):
        late = curves["step"] >= 20
        curves.loc[late & curves["run_id"].isin(_runs_of(runs, "gd", "himmelblau-2d")),
                   "f_gap"] = 1e-22
        curves.loc[late & curves["run_id"].isin(_runs_of(runs, "adam", "himmelblau-2d")),
                   "f_gap"] = 0.0
        return curves

    (figure,) = drawn(figures.convergence, _with_curves(surface_results, change))
    ax = next(ax for ax in panels(figure) if ax.get_title() == "himmelblau-2d")
    lowest = {line.get_label(): min(line.get_ydata()) for line in ax.lines
              if line.get_label() in ("gd", "adam")}
    assert lowest["gd"] == pytest.approx(1e-22)  # not clipped to a floor
    assert 0 < lowest["adam"] < 1e-22  # zero: below the smallest positive value, marked
    assert "0 (exact)" in texts(ax)
    plt.close(figure)


def _subset(results, keep) -> ReportData:
    """The sweep's data with only the runs ``keep(runs)`` selects."""
    full = load(results)
    return ReportData(full.directory, full.meta, full.runs[keep(full.runs)], full.curves,
                      full.trajectories, [], {})


def test_convergence_names_curves_that_coincide(surface_results):
    """Without gradient noise, gd, sgd and minibatch at one learning rate are one method."""
    data = _subset(surface_results, lambda runs: runs["learning_rate"] == 1e-3)
    (figure,) = drawn(figures.convergence, data)
    for ax in panels(figure):
        assert "gd, sgd, minibatch coincide (noise 0)" in texts(ax), ax.get_title()
    plt.close(figure)


def test_convergence_counts_the_runs_whose_curves_are_held_after_diverging(surface_results):
    """Only gd's learning rate 0.1, whose runs diverge on both surfaces: the median curve of
    held values looks finite, so each panel says how many runs diverged."""
    data = _subset(surface_results, lambda runs: (runs["optimizer"] == "gd")
                   & (runs["learning_rate"] == 0.1))
    assert data.runs["diverged"].all()
    (figure,) = drawn(figures.convergence, data)
    for ax in panels(figure):
        assert "gd: 2 of 2 runs diverged (held at their last record)" in texts(ax)
    plt.close(figure)


def test_convergence_draws_crowded_wide_bands_as_thin_lines(surface_results):
    def change(curves, runs):  # every optimizer's seeds end at 10 and 20: one wide band
        seed = curves["run_id"].map(runs.set_index("run_id")["seed"])
        rosenbrock = curves["run_id"].isin(runs.loc[runs["task"] == "rosenbrock-2d", "run_id"])
        curves.loc[rosenbrock, "f_gap"] = 10.0 * (1 + seed[rosenbrock])
        return curves

    note = "IQR bands overlap: drawn as thin lines"
    for data, crowded in ((_with_curves(surface_results, change), True),
                          (load(surface_results), False)):  # one start: no band at all
        (figure,) = drawn(figures.convergence, data)
        ax = next(ax for ax in panels(figure) if ax.get_title() == "rosenbrock-2d")
        fills = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert (note in texts(ax), bool(fills)) == (crowded, not crowded)
        plt.close(figure)


def test_lr_sensitivity_with_one_learning_rate_per_optimizer_draws_error_bars(surface_results):
    """Stage 2 (``optbench sweep --best-of``) reruns one learning rate per optimizer."""
    best = set(load(surface_results).best_runs()["run_id"])
    data = _subset(surface_results, lambda runs: runs["run_id"].isin(best))
    (figure,) = drawn(figures.lr_sensitivity, data)
    for ax in panels(figure):
        assert len([c for c in ax.containers if isinstance(c, ErrorbarContainer)]) == 4
        assert any(t.startswith("one learning rate per optimizer") for t in texts(ax))
    plt.close(figure)


def test_trajectories_have_a_colour_bar_of_the_contour_levels(surface_results):
    data = load(surface_results)
    grid = surfaces.contours(data.surface("himmelblau-2d"))
    figure = surfaces.small_multiples(data, "himmelblau-2d", grid)
    (bar,) = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
    assert "f − f_min" in bar.get_ylabel() and len(labelled_ticks(bar.yaxis)) >= 3
    plt.close(figure)


def test_trajectories_zoom_to_paths_that_are_tiny_on_the_window(surface_results):
    """On a window a thousand times the paths' size (as Rastrigin's paths are a few pixels
    on its window), the panels zoom to the bold paths and say so."""
    data = load(surface_results)
    task = "rosenbrock-2d"
    x = np.linspace(-2000.0, 2000.0, 8)
    huge = surfaces.Contours(x, x, np.ones((8, 8)) + x[None, :] ** 2,
                             ((-2000.0, 2000.0), (-2000.0, 2000.0)),
                             data.surface(task).minimizers)
    figure = surfaces.small_multiples(data, task, huge)
    low, high = panels(figure)[0].get_xlim()
    assert high - low < 200
    assert any("zoomed to the bold paths" in t for t in texts(figure))
    plt.close(figure)


def test_lr_sensitivity_keeps_an_outlier_from_squashing_an_unbounded_metric():
    """An R² of -45 beside values near 0.4: the axis keeps the others readable and says
    what is below it; an accuracy's axis shows every median."""
    import matplotlib.pyplot as plt
    import numpy as np

    from optbench.report.figures import _robust_ylim

    medians = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.42, -45.7])
    figure, ax = plt.subplots()
    notes = _robust_ylim(ax, medians, bounded=False)
    assert ax.get_ylim()[0] > -1 and notes == ["1 setting(s) below the axis (worst median -45.7)"]
    assert _robust_ylim(ax, np.array([0.62, 0.95, 0.99]), bounded=True) == []
    assert ax.get_ylim()[0] < 0.62
    plt.close(figure)


def test_lr_sensitivity_does_not_join_the_trials_of_a_joint_search():
    """Each learning rate one trial whose momentum varies too: neighbours differ in more
    than the learning rate, so they are not joined by a line; a grid's are."""
    import pandas as pd

    from optbench.report.figures import _searched_jointly

    search = pd.DataFrame({"optimizer": "momentum", "config": [0, 0, 1, 1],
                           "learning_rate": [0.1, 0.1, 0.01, 0.01],
                           "momentum": [0.9, 0.9, 0.5, 0.5], "seed": [0, 1, 0, 1],
                           "final": [1.0, 1.0, 2.0, 2.0]})  # equal seeds: a fixed start
    hyperparameters = {"momentum": {"learning_rate": None, "momentum": 0.9}}
    grid = search.assign(momentum=0.9)  # its results still differ by setting
    assert _searched_jointly(search, hyperparameters) == {"momentum": True}
    assert _searched_jointly(grid, hyperparameters) == {"momentum": False}


def test_sharpness_figure_per_task_with_two_over_eta_for_gd(tmp_path):
    """On x^T A x with A's top eigenvalue 10 (Hessian 20), every median sharpness is 20
    throughout; GD's chosen rate gets its 2/eta line, heavy ball 2(1 + beta)/eta, Adam none;
    a task without the metric gets no figure."""
    from optbench.engine import run_sweep
    raw = {"name": "sharp", "steps": 20, "record_every": 5, "seeds": [0, 1], "targets": [1e-2],
           "tasks": [{"landscape": "rotated_ellipsoid", "dim": 2, "sharpness": True,
                      "params": {"condition_number": 10.0}, "name": "ellipse"},
                     {"landscape": "sphere", "dim": 2, "name": "plain"}],
           "optimizers": {"gd": {"learning_rate": [0.05, 0.08]},
                          "momentum": {"learning_rate": [0.1], "momentum": [0.5]},
                          "adam": {"learning_rate": [0.1]}}}
    data = load(run_sweep(raw, tmp_path, quiet=True))
    (drawn_,) = figures.sharpness(data)
    assert drawn_.name == "sharpness-ellipse"
    (ax,) = drawn_.figure.axes
    medians = {line.get_label(): line.get_ydata() for line in ax.get_lines()
               if line.get_linestyle() == "-"}
    assert set(medians) == {"gd", "momentum", "adam"}
    for values in medians.values():
        np.testing.assert_allclose(values, 20.0, rtol=1e-3)
    dashed = sorted(line.get_ydata()[0] for line in ax.get_lines()
                    if line.get_linestyle() == "--")
    # GD's faster rate, 0.08; heavy ball's 2(1 + 0.5)/0.1
    assert dashed == [pytest.approx(2 / 0.08), pytest.approx(2 * 1.5 / 0.1)]
    assert ax.get_ylim()[1] > 30 and any("coincide" in text for text in texts(ax))
    drawn_.figure.savefig(tmp_path / "sharpness.png")
    plt.close(drawn_.figure)


def test_a_negative_sharpness_is_drawn_inside_the_axis(tmp_path):
    """At Himmelblau's local maximum every Hessian eigenvalue is negative (the top one about
    -16): the median curve lies inside the y axis, which runs upwards and shows 0."""
    from optbench.engine import run_sweep
    raw = {"name": "concave", "steps": 10, "record_every": 5, "seeds": 1, "targets": [1e-2],
           "tasks": [{"landscape": "himmelblau", "start": [-0.270845, -0.923039],
                      "sharpness": True}],
           "optimizers": {"gd": {"learning_rate": 1e-4}}}
    (drawn_,) = figures.sharpness(load(run_sweep(raw, tmp_path, quiet=True)))
    (ax,) = drawn_.figure.axes
    (median,) = [line.get_ydata() for line in ax.get_lines() if line.get_linestyle() == "-"]
    low, high = ax.get_ylim()
    np.testing.assert_allclose(median, -16.1, atol=0.1)
    assert low < min(median) and max(median) < high and high > 0
    plt.close(drawn_.figure)


def test_sharpness_figure_is_skipped_without_the_metric(surface_results):
    with pytest.raises(figures.Skip, match="sharpness = true"):
        figures.sharpness(load(surface_results))


def test_listing_the_figure_jobs_imports_nothing_that_draws():
    """The process that lists the figure jobs writes the page's text while the workers draw:
    it must not wait for matplotlib first. Every listed figure function exists."""
    code = ("import sys\nfrom optbench.report import build\n"
            "print(sorted(m for m in ('matplotlib', 'seaborn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    names = {name for _, name in build.FIGURES}
    assert all(callable(pkgutil.resolve_name(name)) for name in names)
    assert set(build.LONGEST) <= names  # started first: by the names the jobs carry
    # every figure's module is imported before forking, and preloaded by the fork server
    assert {name.split(":")[0] for name in names} <= set(workers.FIGURE_MODULES)
    assert set(workers.FIGURE_MODULES) <= set(workers.PRELOAD)
