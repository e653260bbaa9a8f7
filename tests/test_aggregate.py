"""Tuning-budget curves, performance profiles and aggregate scores on hand-made tables."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import trim_mean

from optbench import aggregate
from optbench.analysis import convergence_table, recorded_hyperparameters

TARGET_COLUMNS = ["steps_to_1", "steps_to_1e-06", "steps_to_0.9", "steps_to_0.5"]


def _runs(finals, metric="f_gap", maximize=False, seeds=3):
    """A run table: ``finals[task][optimizer]`` lists each setting's final value (one
    number: every seed alike) or its seeds' values (a list)."""
    rows = []
    for task, by_optimizer in finals.items():
        for optimizer, settings in by_optimizer.items():
            for config, value in enumerate(settings):
                values = value if isinstance(value, list) else [value] * seeds
                rows += [{"task": task, "optimizer": optimizer, "method": "gd",
                          "config": config, "learning_rate": 10.0 ** -config, "seed": seed,
                          "start": 0, "metric": metric, "maximize": maximize, "final": v,
                          "best": v, "diverged": not np.isfinite(v), "wall_time": 0.01,
                          **dict.fromkeys(TARGET_COLUMNS, np.nan)}
                         for seed, v in enumerate(values)]
    return pd.DataFrame(rows)


def _monte_carlo_best(scores, k, maximize, draws=200_000, seed=1):
    """The mean best of ``k`` random draws with replacement, and its standard error."""
    picks = np.random.default_rng(seed).choice(scores, size=(draws, k), replace=True)
    best = picks.max(axis=1) if maximize else picks.min(axis=1)
    return best.mean(), best.std() / np.sqrt(draws)


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("k", [1, 3, 7, 20])
def test_expected_best_is_the_mean_best_of_k_random_trials(k, maximize):
    scores = np.array([0.2, 0.9, 0.5, 0.5, 0.1, 0.7, 0.35])
    mean, error = _monte_carlo_best(scores, k, maximize)
    assert aggregate.expected_best(scores, k, maximize) == pytest.approx(mean, abs=5 * error)


def test_expected_best_runs_from_the_mean_towards_the_best():
    scores = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    n = len(scores)
    up = [aggregate.expected_best(scores, k, True) for k in range(1, 60)]
    down = [aggregate.expected_best(scores, k, False) for k in range(1, 60)]
    assert np.all(np.diff(up) >= 0) and np.all(np.diff(down) <= 0)
    assert up[0] == pytest.approx(scores.mean()) == down[0]
    assert up[n - 1] < scores.max()  # k = N: N draws with replacement may miss the best
    # with one good setting of N, k = N gives the odds that N draws include it
    assert aggregate.expected_best([0.0] * 5 + [1.0], 6, True) == pytest.approx(
        1 - (5 / 6) ** 6)
    assert up[-1] == pytest.approx(scores.max(), rel=1e-4)
    assert down[-1] == pytest.approx(scores.min(), rel=1e-4)
    assert aggregate.expected_best([0.0, 1.0], 2, True) == 0.75  # 1 - P(both draws 0)


def test_expected_max_is_vectorized_over_resamples():
    samples = np.array([[1.0, 2.0, 3.0], [3.0, 3.0, 0.0]])
    assert aggregate.expected_max(samples, 2).tolist() == [
        aggregate.expected_max(s, 2) for s in samples]


def test_tuning_curves_average_f_gap_in_log_and_count_diverged_settings_as_worst():
    runs = _runs({"sphere": {"gd": [1e-2, 1e-4, np.inf], "adam": [1e-3, 0.0],
                             "sgd": [np.inf, np.inf]}})
    columns = aggregate.tuning_columns(runs, [1.0, 1e-6]).set_index("optimizer")
    # the diverged setting counts as the task's worst finite score (1e-2): a geometric mean
    assert columns.loc["gd", "expected_best@1"] == pytest.approx(10 ** (-8 / 3))
    # 0 counts as the floor, the tightest target / 10
    assert columns.loc["adam", "expected_best@1"] == pytest.approx(10 ** -5)
    assert columns.loc["adam", "expected_best@N"] == pytest.approx(10 ** (-3 / 4 - 7 * 3 / 4))
    assert columns.loc["gd", "settings_tried"] == 3
    # every setting diverged: the worst, not a number from the other optimizers' settings
    assert columns.loc["sgd", ["expected_best@1", "expected_best@N"]].tolist() == [
        np.inf, np.inf]
    low, high = columns.loc["gd", ["expected_best@1_low", "expected_best@1_high"]]
    assert low < columns.loc["gd", "expected_best@1"] < high


def test_tuning_curves_of_a_maximized_metric_rise_with_k():
    runs = _runs({"mnist": {"adam": [0.5, 0.9, 0.8, -np.inf]}}, "valid_accuracy", True)
    curve = aggregate.tuning_curves(runs, [0.9])
    assert curve["k"].tolist() == [1, 2, 3, 4] and curve["settings"].eq(4).all()
    assert curve["expected_best"].iloc[0] == pytest.approx((0.5 + 0.9 + 0.8 + 0.5) / 4)
    assert curve["expected_best"].is_monotonic_increasing
    assert (curve["low"] <= curve["expected_best"]).all()
    assert (curve["expected_best"] <= curve["high"]).all()


def test_many_settings_are_evaluated_at_log_spaced_k():
    ks = aggregate.budget_steps(500)
    assert ks[0] == 1 and ks[-1] == 500 and len(ks) <= 30
    assert aggregate.budget_steps(5).tolist() == [1, 2, 3, 4, 5]


def _table(erts):
    """A convergence table's ERT columns: ``erts[task][optimizer]`` = (ert@1, ert@0.01)."""
    return pd.DataFrame([{"task": t, "optimizer": o, "metric": "f_gap", "maximize": False,
                          "success@1": 1.0, "success@0.01": 0.5, "ert@1": a, "ert@0.01": b}
                         for t, by in erts.items() for o, (a, b) in by.items()])


def test_profile_uses_each_tasks_tightest_reached_target_and_inf_where_never():
    table = _table({"a": {"gd": (10, 40), "adam": (5, 20)},
                    "b": {"gd": (10, np.inf), "adam": (30, np.inf)},
                    "c": {"gd": (np.inf, np.inf), "adam": (np.inf, np.inf)}})
    ratios = aggregate.profile_ratios(table).set_index(["task", "optimizer"])
    assert ratios.loc["a", "target"].tolist() == [0.01, 0.01]
    assert ratios.loc["a", "ratio"].tolist() == [2.0, 1.0]
    assert ratios.loc["b", "target"].tolist() == [1.0, 1.0]  # 0.01 reached by none
    assert ratios.loc["b", "ratio"].tolist() == [1.0, 3.0]
    assert ratios.loc["c", "target"].isna().all() and np.isinf(ratios.loc["c", "ratio"]).all()
    profile = aggregate.performance_profile(ratios.reset_index(), [1.0, 2.0, 3.0, 1e9])
    rho = profile.set_index(["optimizer", "tau"])["rho"]
    assert rho["gd"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert rho["adam"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_the_optimizer_best_on_every_task_has_profile_one_at_tau_one():
    table = _table({"a": {"gd": (10, 40), "adam": (5, 20)},
                    "b": {"gd": (10, np.inf), "adam": (5, 80)}})
    ratios = aggregate.profile_ratios(table)
    profile = aggregate.performance_profile(ratios, [1.0])
    assert profile.set_index("optimizer")["rho"].to_dict() == {"gd": 0.0, "adam": 1.0}
    score = aggregate.profile_score(ratios)
    assert score[("f_gap", "adam")] == 1.0
    # gd: ratio 2 on a (area 2 of 3 over 1 <= tau <= 4), inf on b (none)
    assert score[("f_gap", "gd")] == pytest.approx((4 - 2) / 3 / 2)


def test_iqm_is_the_quarter_trimmed_mean():
    x = np.array([9.0, 1.0, 3.0, 100.0, 4.0, 2.0, 5.0, -50.0])
    assert aggregate.iqm(x, axis=None) == pytest.approx(trim_mean(x, 0.25)) == 3.5
    value, low, high = aggregate.iqm_interval([x[:4], x[4:]])
    assert value == 3.5 and low <= value <= high


def test_stratified_bootstrap_resamples_runs_within_each_task():
    # every task's runs agree, the tasks differ: only a pooled resampling would vary
    value, low, high = aggregate.iqm_interval([np.zeros(4), np.ones(4), np.full(4, 0.5)])
    assert value == low == high == 0.5
    spread = aggregate.iqm_interval([np.array([0.0, 1.0, 0.2, 0.9]), np.ones(4)])
    assert spread[1] < spread[0] < spread[2]


def test_copies_of_a_start_are_resampled_together():
    """Two starts, each run twenty times alike (fixed starts, exact gradients): the
    bootstrap draws starts, so a replicate holds both, or one of them twice, and the
    interval spans 0 to 1. Drawn as forty independent runs it would be narrower than two
    starts allow."""
    copies = np.repeat([[0.0], [1.0]], 20, axis=1)  # a row per start
    assert aggregate.iqm_interval([copies]) == (0.5, 0.0, 1.0)
    _, low, high = aggregate.iqm_interval([copies.ravel()])
    assert 0.0 < low < high < 1.0
    value, low, high = aggregate.improvement_interval([(copies, np.full(4, 0.5))])
    assert (value, low, high) == (0.5, 0.0, 1.0)


def test_scores_of_seeds_that_copy_each_start_are_grouped_by_start():
    """Starts interleaved as seeds run them; a start missing a seed: runs, as ever."""
    runs = _runs({"sphere": {"gd": [[1e-3, 1e-1, 1e-3, 1e-1]], "adam": [[1e-6, 1e-5, 1e-4,
                                                                          1e-3]]}}, seeds=4)
    runs["start"] = np.tile([0, 1, 0, 1], 2)  # gd: each start's two seeds alike
    scores = aggregate.normalized_scores(runs, [1e-6], 100)
    by = {o: aggregate.units(g) for o, g in scores.groupby("optimizer")}
    assert by["gd"].shape == (2, 2) and by["adam"].shape == (4, 1)
    np.testing.assert_array_equal(by["gd"][:, 0], by["gd"][:, 1])
    assert by["gd"][0, 0] != by["gd"][1, 0]
    assert aggregate.units(scores[scores["optimizer"] == "gd"].iloc[:3]).shape == (3, 1)


def test_the_aggregates_resample_the_starts_of_seeds_that_copy_them():
    """gd's two starts, each run 20 times alike, score 0 and 1; adam's runs differ: gd's
    IQM interval and its probability of beating adam span what two starts allow."""
    copies = [{"task": "t", "optimizer": "gd", "metric": "f_gap", "seed": seed, "start": start,
               "seed_free": True, "score": float(start)}
              for seed in range(20) for start in (0, 1)]
    noisy = [{"task": "t", "optimizer": "adam", "metric": "f_gap", "seed": seed, "start": 0,
              "seed_free": False, "score": 0.5} for seed in range(20)]
    scores = pd.DataFrame(copies + noisy)
    iqms = aggregate.aggregate_scores(scores).set_index("optimizer")
    assert iqms.loc["gd", ["iqm", "low", "high"]].tolist() == [0.5, 0.0, 1.0]
    pairs = aggregate.improvement_probabilities(scores)
    assert pairs[["probability", "low", "high"]].values.tolist() == [[0.5, 0.0, 1.0]]


def test_probability_of_improvement_counts_ties_half():
    x = np.array([0.1, 0.5, 0.5, 0.9])
    assert aggregate.probability_of_improvement(x, x) == 0.5
    assert aggregate.probability_of_improvement(x + 1, x) == 1.0
    assert aggregate.probability_of_improvement(x, x + 1) == 0.0
    assert aggregate.probability_of_improvement([1.0, 0.0], [0.5]) == 0.5
    value, low, high = aggregate.improvement_interval([(x, x), (x, x)])
    assert value == 0.5 and low < 0.5 < high
    value, low, high = aggregate.improvement_interval([(x + 1, x), (x, x + 1)])
    assert value == 0.5 and low == high == 0.5  # per task: certain, so no spread


def test_scores_are_normalized_per_task_and_diverged_runs_score_zero():
    runs = _runs({"sphere": {"gd": [[1e-4, 1e-2, np.inf], 1.0],
                             "adam": [[1e-6, 0.0, 1e-5], [10.0, 10.0, 10.0]]}})
    scores = aggregate.normalized_scores(runs, [1.0, 1e-6], 100)
    by = scores.set_index(["optimizer", "seed"])["score"]
    # log10 between the task's lowest run (0 -> the floor 1e-7) and its highest (10)
    assert by["gd"].tolist() == pytest.approx([5 / 8, 3 / 8, 0.0])
    assert by["adam"].tolist() == pytest.approx([7 / 8, 1.0, 6 / 8])
    accuracy = _runs({"mnist": {"gd": [[0.9, -np.inf, 0.5]]}}, "valid_accuracy", True)
    scores = aggregate.normalized_scores(accuracy, [0.5], 100)
    assert scores["score"].tolist() == [0.9, 0.0, 0.5]
    r2 = _runs({"diabetes": {"gd": [[0.4, -3e6, -np.inf]]}}, "valid_r2", True)
    assert aggregate.normalized_scores(r2, [0.5], 100)["score"].tolist() == [0.4, 0.0, 0.0]


def test_an_r2_below_zero_counts_as_zero_in_the_tuning_budget():
    runs = _runs({"diabetes": {"adam": [0.4, -3e6, 0.2]}}, "valid_r2", True)
    columns = aggregate.tuning_columns(runs, [0.5])
    assert columns["expected_best@1"].iloc[0] == pytest.approx(0.2)


def test_aggregates_never_pool_metric_groups():
    runs = pd.concat([_runs({"sphere": {"gd": [1e-3], "adam": [1e-6]}}),
                      _runs({"mnist": {"gd": [0.9], "adam": [0.8]}}, "valid_accuracy", True)])
    scores = aggregate.normalized_scores(runs, {"sphere": [1e-6], "mnist": [0.9]},
                                         {"sphere": 100, "mnist": 100})
    iqms = aggregate.aggregate_scores(scores).set_index(["metric", "optimizer"])
    assert iqms.loc[("valid_accuracy", "gd"), "iqm"] == pytest.approx(0.9)
    assert iqms["tasks"].eq(1).all()
    pairs = aggregate.improvement_probabilities(scores).set_index("metric")
    assert pairs.loc["f_gap", ["x", "y", "probability"]].tolist() == ["gd", "adam", 0.0]
    assert pairs.loc["valid_accuracy", "probability"] == 1.0


def test_convergence_table_has_the_tuning_budget_columns():
    runs = _runs({"sphere": {"gd": [10.0, 1000.0]}})
    table = convergence_table(runs, [1.0], 100, recorded_hyperparameters({}, runs))
    row = table.iloc[0]
    assert row["settings_tried"] == 2
    assert row["expected_best@1"] == pytest.approx(100.0)
    # two draws from {10, 1000} (log10 1 and 3) include 10 with odds 3/4
    assert row["expected_best@N"] == pytest.approx(10 ** (1 * 3 / 4 + 3 * 1 / 4))


def test_profiles_in_seconds_rank_by_seconds_where_steps_rank_otherwise():
    """adam reaches the target in fewer steps, each 10 times slower than gd's: the profile
    in steps puts it first, the one in seconds gd, and neither uses the other's unit."""
    runs = _runs({"sphere": {"gd": [1e-3], "adam": [1e-3]}, "rastrigin": {"gd": [1e-3]}},
                 seeds=4)
    adam = runs["optimizer"] == "adam"
    runs["steps_to_1"] = np.where(adam, 10.0, 40.0)
    runs["seconds_per_step"] = np.where(adam, 1e-3, 1e-4)
    table = convergence_table(runs, [1.0], 100, recorded_hyperparameters({}, runs))
    sphere = table[table["task"] == "sphere"].set_index("optimizer")
    assert sphere.loc["adam", "ert_seconds@1"] == pytest.approx(10 * 1e-3)
    assert sphere.loc["gd", "ert_seconds@1"] == pytest.approx(40 * 1e-4)
    ratios = {unit: aggregate.profile_ratios(table, unit) for unit in ("steps", "seconds")}
    on_sphere = {unit: r[r["task"] == "sphere"].set_index("optimizer")["ratio"].to_dict()
                 for unit, r in ratios.items()}
    assert on_sphere["steps"] == {"gd": 4.0, "adam": 1.0}
    assert on_sphere["seconds"] == pytest.approx({"gd": 1.0, "adam": 2.5})
    rho = aggregate.performance_profile(ratios["seconds"], [1.0]).set_index("optimizer")
    assert rho["rho"].to_dict() == {"gd": 1.0, "adam": 0.0}  # fastest on both tasks
    score = aggregate.profile_score(ratios["seconds"])
    assert score[("f_gap", "gd")] == 1.0 > score[("f_gap", "adam")]
