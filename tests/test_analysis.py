"""Convergence metrics on hand-made run tables (pure functions of the store)."""

import numpy as np
import pandas as pd
import pytest

from optbench.analysis import best_configs, ert_by, recorded_hyperparameters
from optbench.analysis import convergence_table as table_of


def convergence_table(runs, targets, steps):
    """The table, with each optimizer's hyperparameters looked up as for an old store."""
    return table_of(runs, targets, steps, recorded_hyperparameters({}, runs))


def _runs(rows):
    frame = pd.DataFrame(rows, columns=["config", "learning_rate", "final", "best",
                                        "steps_to_0.1", "steps_to_1e-08"])
    frame["task"], frame["optimizer"], frame["method"] = "sphere-2d", "gd", "gd"
    frame["metric"], frame["maximize"] = "f_gap", False
    frame["diverged"] = ~np.isfinite(frame["final"])
    frame["wall_time"] = 0.01
    frame["seed"], frame["start"] = frame.groupby("config").cumcount(), 0
    return frame


def test_ert_follows_coco():
    hits = pd.Series([10.0, np.nan, 30.0, np.nan])
    groups = ["a", "a", "a", "a"]
    assert ert_by(hits, groups, steps=100)["a"] == (10 + 100 + 30 + 100) / 2
    assert ert_by(pd.Series([np.nan, np.nan]), ["b", "b"], steps=100)["b"] == np.inf


def test_lowest_median_final_wins_and_diverged_runs_count_as_inf():
    runs = _runs([
        (0, 0.1, 1e-3, 1e-3, 5, np.nan), (0, 0.1, 2e-3, 2e-3, 6, np.nan),
        (1, 0.3, 1e-5, 1e-5, 3, np.nan), (1, 0.3, np.inf, 1e-2, np.nan, np.nan),
        (1, 0.3, 1e-5, 1e-5, 3, np.nan),
        (2, 0.5, np.inf, 5.0, np.nan, np.nan), (2, 0.5, np.inf, 5.0, np.nan, np.nan),
    ])
    assert best_configs(runs, [0.1, 1e-8], 100)["config"].tolist() == [1]
    table = convergence_table(runs, [0.1, 1e-8], 100)
    row = table.iloc[0]
    assert row["setting"] == "learning_rate=0.3" and row["median_final"] == 1e-5
    assert row["success@0.1"] == 2 / 3 and row["ert@0.1"] == (3 + 100 + 3) / 2
    assert row["diverged"] == 1 / 3 and row["ert@1e-08"] == np.inf


def test_ties_go_to_the_faster_setting():
    """Every setting reaches exactly 0: the one that gets to the tightest target first wins."""
    runs = _runs([
        (0, 0.1, 0.0, 0.0, 20, 47), (0, 0.1, 0.0, 0.0, 21, 48),
        (1, 0.3, 0.0, 0.0, 5, 12), (1, 0.3, 0.0, 0.0, 5, 13),
        (2, 0.5, 0.0, 0.0, 1, np.nan), (2, 0.5, 0.0, 0.0, 1, 1),
    ])
    assert best_configs(runs, [0.1, 1e-8], 100)["config"].tolist() == [1]


def test_the_best_setting_is_never_dominated_on_median_and_share_diverged():
    """Every median is inf (the nesterov-on-Rosenbrock case): the setting with half its runs
    diverged beats the one with three quarters, whatever their ERT or listing order."""
    inf = np.inf
    runs = _runs([
        (0, 3.2e-4, 1e-9, 1e-9, 2, 4), (0, 3.2e-4, inf, 1.0, np.nan, np.nan),
        (0, 3.2e-4, inf, 1.0, np.nan, np.nan), (0, 3.2e-4, inf, 1.0, np.nan, np.nan),
        (1, 1e-4, 1e-3, 1e-3, 50, np.nan), (1, 1e-4, 1e-2, 1e-2, 60, np.nan),
        (1, 1e-4, inf, 1.0, np.nan, np.nan), (1, 1e-4, inf, 1.0, np.nan, np.nan),
    ])
    assert best_configs(runs, [0.1, 1e-8], 100)["config"].tolist() == [1]
    maximized = runs.assign(final=-runs["final"], best=-runs["best"], maximize=True,
                            metric="test_accuracy")
    assert best_configs(maximized, [0.1, 1e-8], 100)["config"].tolist() == [1]


def test_a_maximized_metric_picks_the_highest_median_and_diverged_runs_count_as_minus_inf():
    """Test accuracy: the best setting has the highest median; its ties go to the fastest at
    the highest target. Surfaces in the same table still pick the lowest f - f*."""
    surface = _runs([(0, 0.1, 1e-3, 1e-3, 5, np.nan), (1, 0.3, 1e-5, 1e-5, 3, np.nan)])
    network = pd.DataFrame(
        [(0, 0.01, 0.70, 0.72, 40, 90), (0, 0.01, 0.71, 0.71, 30, 80),  # reaches 0.7 slowly
         (1, 0.03, 0.71, 0.75, 10, 20), (1, 0.03, 0.70, 0.70, 10, 25),  # the same, faster
         (2, 0.10, -np.inf, 0.30, np.nan, np.nan), (2, 0.10, -np.inf, 0.20, np.nan, np.nan),
         (3, 0.003, 0.40, 0.40, 60, np.nan), (3, 0.003, 0.45, 0.45, 50, np.nan)],
        columns=["config", "learning_rate", "final", "best", "steps_to_0.1", "steps_to_1e-08"])
    network = network.rename(columns={"steps_to_0.1": "steps_to_0.5",
                                      "steps_to_1e-08": "steps_to_0.7"})
    network = network.assign(task="mnist1d-mlp", optimizer="gd", method="gd",
                             metric="test_accuracy", maximize=True, wall_time=0.01,
                             diverged=~np.isfinite(network["final"]),
                             seed=network.groupby("config").cumcount(), start=0)
    runs = pd.concat([surface, network], ignore_index=True)  # NaN: targets never reached
    targets = [0.1, 1e-8, 0.5, 0.7]
    best = best_configs(runs, targets, 100).set_index("task")["config"]
    assert best["sphere-2d"] == 1 and best["mnist1d-mlp"] == 1
    table = convergence_table(runs, targets, 100).set_index("task")
    assert table.loc["mnist1d-mlp", "median_final"] == pytest.approx(0.705)
    assert table.loc["mnist1d-mlp", "metric"] == "test_accuracy"


def _two_groups():
    """A surface (targets 0.1, 1e-8) and a network tuned on validation accuracy (targets
    0.5, 0.7), whose validation and test accuracies disagree: setting 1 wins on validation,
    setting 0 would win on test."""
    surface = _runs([(0, 0.1, 1e-3, 1e-3, 5, np.nan), (1, 0.3, 1e-5, 1e-5, 3, np.nan)])
    network = pd.DataFrame(
        [(0, 0.01, 0.60, 0.60, 40, np.nan, 0.90), (0, 0.01, 0.62, 0.62, 30, np.nan, 0.92),
         (1, 0.03, 0.80, 0.80, 10, 20, 0.70), (1, 0.03, 0.78, 0.78, 10, 25, 0.72)],
        columns=["config", "learning_rate", "final", "best", "steps_to_0.5", "steps_to_0.7",
                 "final_test_accuracy"])
    network = network.assign(task="mnist1d-mlp", optimizer="gd", method="gd",
                             metric="valid_accuracy", maximize=True, wall_time=0.01,
                             diverged=False, seed=[0, 1, 0, 1], start=0)
    return (pd.concat([surface, network], ignore_index=True),
            {"sphere-2d": [0.1, 1e-8], "mnist1d-mlp": [0.5, 0.7]})


def test_selection_follows_validation_and_test_is_reported_at_the_chosen_setting():
    runs, targets = _two_groups()
    table = convergence_table(runs, targets, 100).set_index("task")
    row = table.loc["mnist1d-mlp"]
    assert row["setting"] == "learning_rate=0.03" and row["median_final"] == pytest.approx(0.79)
    assert row["test_metric"] == "test_accuracy"
    assert row["median_test"] == pytest.approx(0.71)  # reported, though 0.91 was available
    assert np.isnan(table.loc["sphere-2d", "median_test"])


def test_each_metric_group_prints_its_own_targets_and_accuracies_as_percentages():
    from optbench.analysis import add_compile_columns, markdown

    runs, targets = _two_groups()
    table = add_compile_columns(convergence_table(runs, targets, 100), [
        {"task": "sphere-2d", "optimizer": "gd", "compile_seconds": 1.5},
        {"task": "mnist1d-mlp", "optimizer": "gd", "compile_seconds": 0.0,
         "program_reused": True}])
    text = markdown(table)
    surfaces, networks = text.split("valid_accuracy (higher is better")
    assert "f - f* (lower is better)" in surfaces and "| sphere-2d" in surfaces
    assert "0.1: succ" in surfaces and "1e-08: succ" in surfaces and "0.7: succ" not in surfaces
    assert "0.5: succ" in networks and "0.7: succ" in networks and "1e-08" not in networks
    assert "79.0 % [78.0, 80.0]" in networks and "test at it" in networks
    assert "71.0 % [70.0, 72.0]" in networks
    assert networks.index("0.5: succ") < networks.index("0.7: succ")  # the easier first
    assert "e-01" not in networks  # no accuracy in scientific notation
    assert surfaces.strip().endswith(" 1.5 |") and "| shared " in networks


def test_reference_deviation_is_relative_and_flags_one_sided_divergence():
    from optbench.analysis import reference_deviation

    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "optimizer": ["gd", "gd", "adam"],
                         "metric": "f_gap"})
    curves = pd.DataFrame({"run_id": ["a", "a", "b", "b", "c", "c"], "step": [0, 10] * 3,
                           "f_gap": [4.0, 2.0, 1.0, 1.0, 3.0, np.inf]})
    reference = curves.assign(f_gap=[4.0, 2.0 + 4e-6, 1.0, 1.0, 3.0, 1.0])
    deviation = reference_deviation(curves, reference, runs)
    assert deviation["gd"] == pytest.approx(1e-6) and deviation["adam"] == np.inf
    # the reference diverged where optbench did not, and both diverged alike
    reference = curves.assign(f_gap=[4.0, 2.0, 1.0, np.inf, 3.0, np.inf])
    deviation = reference_deviation(curves, reference, runs)
    assert deviation["gd"] == np.inf and deviation["adam"] == 0.0


def test_reference_deviation_reads_each_runs_own_metric():
    """A sweep of networks only has no f_gap column: each run is compared on its metric."""
    from optbench.analysis import reference_deviation

    runs = pd.DataFrame({"run_id": ["a", "b"], "optimizer": ["adam", "sgd"],
                         "metric": ["test_accuracy", "f_gap"]})
    curves = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "step": [0, 10] * 2,
                           "test_accuracy": [0.1, 0.5, np.nan, np.nan],
                           "f_gap": [np.nan, np.nan, 2.0, 1.0]})
    reference = curves.assign(test_accuracy=[0.1, 0.4, np.nan, np.nan],
                              f_gap=[np.nan, np.nan, 2.0, 1.0])
    deviation = reference_deviation(curves, reference, runs)
    assert deviation["adam"] == pytest.approx(0.1 / 0.4) and deviation["sgd"] == 0.0
    networks_only = reference_deviation(curves.drop(columns="f_gap").iloc[:2],
                                         reference.drop(columns="f_gap").iloc[:2], runs)
    assert networks_only["adam"] == pytest.approx(0.25)


def test_best_setting_names_fixed_hyperparameters_that_differ_from_the_default():
    runs = _runs([(0, 0.1, 1e-3, 1e-3, 5, np.nan), (1, 0.3, 1e-5, 1e-5, 3, np.nan)])
    runs["method"] = runs["optimizer"] = "momentum"
    runs["momentum"] = 0.5  # one value in the grid, optax's default is 0.9
    table = convergence_table(runs, targets=[0.1, 1e-8], steps=100)
    assert table["setting"].tolist() == ["learning_rate=0.3, momentum=0.5"]
    runs["momentum"] = 0.9
    table = convergence_table(runs, targets=[0.1, 1e-8], steps=100)
    assert table["setting"].tolist() == ["learning_rate=0.3"]


def test_a_minimized_network_metric_is_headed_lower_is_better():
    """markov-lm's valid_gap is minimized: its table must not say higher is better."""
    from optbench.analysis import metric_title

    assert metric_title("valid_gap", maximize=False).startswith(
        "valid_gap (lower is better; settings chosen on it, test_gap reported")
    assert metric_title("valid_accuracy", maximize=True).startswith(
        "valid_accuracy (higher is better")


def test_where_seeds_copy_each_starts_run_the_intervals_resample_the_starts():
    """Fixed starts and exact gradients: five seeds of each of 4 starts are one run five
    times. The intervals are those of the 4 starts' runs (median and ERT alike), not of 20
    runs that would narrow them; where the seeds differ, all 20 runs count."""
    starts = [(1e-1, 4), (1e-3, 9), (1e-5, 20), (1e-7, 50)]  # (final, steps to 0.1) each
    copies = _runs([(0, 0.1, final, final, hit, np.nan)
                    for final, hit in starts for _ in range(5)])
    copies["start"], copies["seed"] = np.repeat(range(4), 5), np.tile(range(5), 4)
    alone = copies[copies["seed"] == 0]
    columns = ["final_low", "final_high", "ert@0.1_low", "ert@0.1_high"]
    got, expected = (convergence_table(r, [0.1, 1e-8], 100)[columns].iloc[0]
                     for r in (copies, alone))
    pd.testing.assert_series_equal(got, expected)
    assert got["final_low"] <= 1e-5 and got["final_high"] >= 1e-3  # as wide as 4 runs say
    noisy = copies.assign(final=copies["final"] * (1 + 1e-3 * copies["seed"]))
    assert not convergence_table(noisy, [0.1, 1e-8], 100)[columns].iloc[0].equals(expected)
