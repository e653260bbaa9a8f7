"""The comparison figures (tuning budget, performance profiles, aggregate scores) on the
tiny sweeps: drawn, axes labelled with numbers, and a blank panel that says why."""

import dataclasses
import functools
import pkgutil

import matplotlib.pyplot as plt
import numpy as np
import pytest

from optbench.report import comparisons, style
from optbench.report.build import FIGURES
from optbench.report.data import load

DRAWERS = {"tuning-budget": comparisons.tuning_budget,
           "performance-profile": comparisons.performance_profile,
           "performance-profile-seconds": functools.partial(comparisons.performance_profile,
                                                            unit="seconds"),
           "aggregate-scores": comparisons.aggregate_scores}


@pytest.fixture(scope="module")
def surfaces(surface_results):
    style.apply()
    return load(surface_results)


def _draw(name, data):
    """The figure ``name`` of ``data``, drawn (so that tick labels exist)."""
    (drawn,) = DRAWERS[name](data)
    assert drawn.name == name and drawn.caption
    drawn.figure.canvas.draw()
    return drawn


def _texts(figure) -> str:
    return " ".join(t.get_text() for ax in figure.axes for t in ax.texts)


def _tick_labels(ax, which):
    axis = ax.yaxis if which == "y" else ax.xaxis
    low, high = sorted(ax.get_ylim() if which == "y" else ax.get_xlim())
    ticks = [*axis.get_major_ticks(), *axis.get_minor_ticks()]
    return [t.label1.get_text() for t in ticks
            if t.label1.get_text() and low <= t.get_loc() <= high]


@pytest.mark.parametrize("name", list(DRAWERS))
def test_comparison_figures_are_registered_and_label_their_axes(name, surfaces):
    assert any(pkgutil.resolve_name(drawer) in (DRAWERS[name], comparisons.across_tasks)
               for _, drawer in FIGURES)
    drawn = _draw(name, surfaces)
    axes = [ax for ax in drawn.figure.axes if ax.get_visible()]
    assert axes
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
        for which in "xy":  # log axes too: at least two numbers on each
            assert len(_tick_labels(ax, which)) >= 2, (name, ax.get_title(), which)
    plt.close(drawn.figure)


def test_tuning_budget_has_one_panel_per_task_and_values_above_the_floor(surfaces):
    drawn = _draw("tuning-budget", surfaces)
    assert [ax.get_title() for ax in drawn.figure.axes] == surfaces.tasks
    floor = min(surfaces.targets) / 10
    for ax in drawn.figure.axes:
        assert ax.get_yscale() == "log" and "f − f_min" in ax.get_ylabel()
        lowest = min(line.get_ydata().min() for line in ax.get_lines())
        assert lowest >= floor * (1 - 1e-9)  # a run that reached 0 is drawn at the floor
    plt.close(drawn.figure)


def test_profiles_and_scores_have_a_panel_per_metric_group(surfaces, data_results):
    data = load(data_results)  # a minimized metric other than f_gap: test_loss
    for name in ("performance-profile", "performance-profile-seconds", "aggregate-scores"):
        for source, metric in ((surfaces, "f − f_min"), (data, "test loss")):
            drawn = _draw(name, source)
            assert all(metric in ax.get_title() for ax in drawn.figure.axes)
            plt.close(drawn.figure)


def _with_runs(data, change):
    """``data`` with the runs ``change`` makes of a copy of its runs."""
    return dataclasses.replace(data, runs=change(data.runs.copy()))


def test_blank_panels_say_why(surfaces):
    def diverge(runs):
        rosenbrock = runs["task"] == "rosenbrock-2d"
        adam = (runs["task"] == "himmelblau-2d") & (runs["optimizer"] == "adam")
        runs.loc[rosenbrock | adam, ["final", "best"]] = np.inf
        runs.loc[rosenbrock | adam, "diverged"] = True
        runs.loc[:, [c for c in runs if c.startswith("steps_to_")]] = np.nan
        return runs

    data = _with_runs(surfaces, diverge)
    drawn = _draw("tuning-budget", data)
    panels = {ax.get_title(): " ".join(t.get_text() for t in ax.texts)
              for ax in drawn.figure.axes}
    assert "every setting of every optimizer diverged" in panels["rosenbrock-2d"]
    assert "every setting diverged: adam" in panels["himmelblau-2d"]
    assert "adam" not in [line.get_label() for line in drawn.figure.axes[1].get_lines()]
    plt.close(drawn.figure)
    drawn = _draw("performance-profile", data)
    assert "no optimizer reached any target" in _texts(drawn.figure)
    plt.close(drawn.figure)
    alone = _with_runs(surfaces, lambda runs: runs[runs["optimizer"] == "gd"])
    drawn = _draw("aggregate-scores", alone)
    assert "no pair to compare" in _texts(drawn.figure)
    plt.close(drawn.figure)


def test_the_profile_in_seconds_of_a_store_without_times_says_why(surfaces):
    def untimed(runs):  # as a sweep wrote them before steps were timed
        return runs.drop(columns=[c for c in runs if c == "seconds_per_step"
                                  or c.startswith("seconds_to_")])

    drawn = _draw("performance-profile-seconds", _with_runs(surfaces, untimed))
    assert "no seconds per step recorded" in _texts(drawn.figure)
    assert not any(ax.get_lines()[:-1] for ax in drawn.figure.axes)  # only the tau line
    plt.close(drawn.figure)
    timed = _draw("performance-profile-seconds", surfaces)
    assert "no seconds per step" not in _texts(timed.figure)
    assert "in seconds" in timed.figure.axes[0].get_xlabel()
    plt.close(timed.figure)
