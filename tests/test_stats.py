"""Intervals and paired tests: their statistical behaviour, and the table's use of them."""

import numpy as np
import pandas as pd
import pytest

from optbench import stats
from optbench.analysis import compare_to_best


def test_the_median_interval_covers_the_true_median_at_about_the_nominal_rate():
    """200 samples of 40 draws from an exponential (median ln 2): the 95 % interval covers
    it in 88-99 % of them (binomial noise of 200 draws at 95 %: about +-3 %)."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(200):
        low, high = stats.bootstrap_interval(rng.exponential(size=40), stats.median)
        covered += low <= np.log(2) <= high
    assert 0.88 <= covered / 200 <= 0.99


def test_the_success_and_ert_intervals_bracket_their_estimates():
    hits = np.array([10.0, np.nan, 30.0, np.nan, 20.0, 25.0, np.nan, 15.0])
    ert = stats.ert_of(100)
    assert float(ert(hits)) == pytest.approx((10 + 30 + 20 + 25 + 15 + 300) / 5)
    for statistic in (stats.success_rate, ert):
        low, high = stats.bootstrap_interval(hits, statistic)
        assert low < float(statistic(hits)) < high
    assert stats.bootstrap_interval([np.nan] * 4, ert) == (np.inf, np.inf)
    assert stats.bootstrap_interval([3.0], stats.median) == (3.0, 3.0)


def test_paired_tests_see_a_consistent_difference_that_unpaired_noise_would_hide():
    """Seed effects (spread 1.0) dwarf the optimizers' gap (0.05), but every pair shows it:
    the signed-rank test on pairs finds it, and a diverged run counts as the worst."""
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(size=12)
    better = seed_effect + rng.normal(scale=0.01, size=12)
    worse = better + 0.05
    assert stats.paired_p_value(better, worse, maximize=False) < 0.01
    assert stats.paired_p_value(better, better, maximize=False) == 1.0
    accuracy = 0.9 - better / 100
    assert stats.paired_p_value(accuracy, accuracy - 0.01, maximize=True) < 0.01
    assert stats.paired_p_value(better, np.full(12, np.inf), maximize=False) < 0.01


def test_holm_adjusts_step_down_and_keeps_order():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert stats.holm([0.5]).tolist() == [0.5]


def _chosen(finals: dict[str, list[float]], maximize=False) -> pd.DataFrame:
    rows = [{"task": "t", "optimizer": name, "config": 0, "seed": seed, "start": 0,
             "final": value, "best": value, "maximize": maximize, "diverged": False,
             "steps_to_0.001": np.nan}
            for name, values in finals.items() for seed, value in enumerate(values)]
    return pd.DataFrame(rows)


def test_the_best_and_those_tied_with_it_are_marked():
    """adam beats sgd on every seed; momentum differs from adam by noise only."""
    rng = np.random.default_rng(1)
    seeds = rng.normal(size=10)
    chosen = _chosen({"sgd": seeds + 1.0, "adam": seeds,
                      "momentum": seeds + rng.normal(scale=0.05, size=10)})
    table = compare_to_best(chosen, [1e-3], 100).set_index("optimizer")
    assert table.loc["adam", "best"] or table.loc["momentum", "best"]
    best = table.index[table["best"]][0]
    other = "momentum" if best == "adam" else "adam"
    assert table.loc[other, "tied_with_best"] and not table.loc["sgd", "tied_with_best"]
    assert table.loc["sgd", "p_vs_best"] < 0.05 and table.loc["sgd", "pairs"] == 10


def test_runs_without_seed_variance_are_one_observation_not_many():
    """A fixed start and exact gradients: every seed the same run. Ten equal pairs are not
    ten observations (Wilcoxon would say p = 0.002): no test, worse only by the values."""
    chosen = _chosen({"gd": [1e-3] * 10, "adam": [1e-6] * 10, "sgd": [1e-6] * 10})
    table = compare_to_best(chosen, [1e-3], 100).set_index("optimizer")
    assert table.loc["adam", "best"] and table.loc["gd", "deterministic"]
    assert np.isnan(table.loc["gd", "p_vs_best"]) and not table.loc["gd", "tied_with_best"]
    assert table.loc["sgd", "tied_with_best"]


def test_seeds_that_copy_each_start_count_each_start_once():
    """Three fixed starts and exact gradients: each start's five seeds are one run five
    times. Three independent pairs (Wilcoxon's smallest p is 0.25), not fifteen (0.0006):
    tied, and the caveat says the task cannot separate them."""
    from optbench.analysis import _versus
    from optbench.caveats import separates_nothing

    per_start = {"gd": [2.1, 1.2, 0.5], "momentum": [2e-4, 1e-4, 4e-5]}
    chosen = pd.DataFrame([{"task": "t", "optimizer": name, "config": 0, "seed": seed,
                            "start": start, "final": value, "best": value,
                            "maximize": False, "diverged": False, "steps_to_0.001": np.nan}
                           for name, values in per_start.items()
                           for start, value in enumerate(values) for seed in range(5)])
    table = compare_to_best(chosen, [1e-3], 100).set_index("optimizer")
    assert table.loc["momentum", "best"] and table["pairs"].tolist() == [3, 3]
    assert table.loc["gd", "p_vs_best"] == pytest.approx(0.25)
    assert table.loc["gd", "tied_with_best"] and not table.loc["gd", "deterministic"]
    assert separates_nothing(table.reset_index())[0].endswith(
        "on 3 paired runs: Wilcoxon's test needs 6 to reach p < 0.05; give the task more "
        "starts: its seeds change none of these runs (fixed starts, exact gradients)")
    noisy = chosen.assign(final=chosen["final"] * (1 + 0.01 * chosen["seed"]))
    assert compare_to_best(noisy, [1e-3], 100)["pairs"].tolist() == [15, 15]  # seeds differ
    one_seed = compare_to_best(chosen[(chosen["seed"] == 0) & (chosen["start"] == 0)],
                               [1e-3], 100)
    assert _versus(one_seed.set_index("optimizer").loc["gd"]) == "worse (one observation)"


def test_a_seed_free_optimizer_against_a_noisy_one_keeps_every_pair():
    """One fixed start: GD's eight seeds are one run, SGD's differ. SGD's seeds are what the
    test has: all eight pairs count, on the best's row too (the caveats read the least).
    Runs alike at every seed on both sides at three starts are three pairs, tested: not
    one observation."""
    from optbench.analysis import _versus

    noisy = 2e-3 + np.random.default_rng(0).normal(scale=1e-4, size=8)
    table = compare_to_best(_chosen({"gd": [1e-3] * 8, "sgd": noisy}), [1e-3], 100)
    assert table.set_index("optimizer").loc["gd", "best"]
    assert table["pairs"].tolist() == [8, 8] and not table["deterministic"].any()
    chosen = pd.DataFrame([{"task": "t", "optimizer": name, "config": 0, "seed": seed,
                            "start": start, "final": value, "best": value,
                            "maximize": False, "diverged": False, "steps_to_0.001": np.nan}
                           for name, value in (("gd", 0.0), ("adam", np.inf))
                           for start in range(3) for seed in range(5)])
    row = compare_to_best(chosen, [1e-3], 100).set_index("optimizer").loc["adam"]
    assert row["pairs"] == 3 and _versus(row) == "tied (p=0.25)"


def test_an_optimizer_better_on_most_pairs_is_not_called_worse():
    """The best is ranked by its median first (here a tie, kept in listing order); the
    other wins every pair that differs: the verdict says so, never "worse"."""
    from optbench.analysis import _versus

    best = np.array([0.9] * 8 + [0.5] * 4)
    other = np.array([0.9] * 8 + [0.7] * 4)
    table = compare_to_best(_chosen({"a": best, "b": other}, maximize=True), [1e-3], 100)
    row = table.set_index("optimizer").loc["b"]
    assert table.set_index("optimizer").loc["a", "best"] and row["better_on_pairs"]
    assert _versus(row) == "tied (p=0.12)"  # 4 differing pairs: Wilcoxon's floor is 0.125
    # pairs where both runs diverged are ties, not a reason to lose the verdict
    diverged = compare_to_best(_chosen({"a": np.append(best, [-np.inf] * 3),
                                        "b": np.append(other, [-np.inf] * 3)}, maximize=True),
                               [1e-3], 100)
    assert diverged.set_index("optimizer").loc["b", "better_on_pairs"]
    significant = row.copy()
    significant["tied_with_best"], significant["p_vs_best"] = False, 0.01
    assert _versus(significant) == "better on pairs (p=0.01)"
