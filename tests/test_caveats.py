"""What a careful reviewer would flag, on hand-made run tables."""

import numpy as np
import pandas as pd

from optbench.analysis import caveats_text, convergence_table

HP = {"learning_rate": 0.1, "weight_decay": 0.0}


def _runs(task, optimizer, settings, seeds=6, starts=1, metric="f_gap", **fixed):
    """Runs of ``optimizer`` on ``task``: ``settings`` maps a learning rate to the final
    value of every run (a number, or a function of (seed, start))."""
    rows = []
    for config, (lr, final) in enumerate(settings.items()):
        for seed in range(seeds):
            for start in range(starts):
                value = final(seed, start) if callable(final) else final
                rows.append({"task": task, "optimizer": optimizer, "method": optimizer,
                             "config": config, "learning_rate": lr, "seed": seed,
                             "start": start, "final": value, "best": value,
                             "metric": metric, "maximize": metric != "f_gap",
                             "diverged": False, "wall_time": 0.01, "steps_to_0.5": np.nan,
                             **fixed})
    return pd.DataFrame(rows)


def _caveats(runs, hyperparameters=None):
    labels = runs["optimizer"].unique()
    table = convergence_table(runs, [0.5], 100, hyperparameters or {o: HP for o in labels})
    return table, table.attrs["caveats"]


def test_a_best_setting_on_the_edge_of_the_searched_range_is_flagged():
    runs = _runs("sphere", "momentum", {0.01: 3.0, 0.1: 2.0, 1.0: 1.0})
    _, notes = _caveats(runs)
    assert notes == ["momentum on sphere: learning_rate=1 is the largest value tried "
                     "(0.01 to 1); the best may lie beyond it"]
    inside = _runs("sphere", "momentum", {0.01: 3.0, 0.1: 1.0, 1.0: 2.0})
    assert _caveats(inside)[1] == []


def test_escapes_from_a_saddle_ranked_as_divergence_are_flagged():
    """On x^2 - y^2 a run that escapes to -inf is flagged diverged and ranks last; a bounded
    surface's divergence is no escape."""
    runs = _runs("saddle-2d", "gd", {0.01: -5.0, 0.1: np.inf}, landscape="saddle", dim=2,
                 bounded=False)
    runs["diverged"] = runs["learning_rate"] == 0.1
    notes = _caveats(runs)[1]
    assert [n for n in notes if "unbounded below" in n] == [
        "saddle-2d is unbounded below: its runs that escaped to -inf are flagged diverged and "
        "rank last, so its best settings may be the slowest to escape; compare the steps to "
        "its targets (and divergence_step, the escape) instead"]
    bowl = runs.assign(task="sphere-2d", landscape="sphere", bounded=True)
    assert not [n for n in _caveats(bowl)[1] if "unbounded below" in n]
    runs["diverged"] = False
    assert not [n for n in _caveats(runs)[1] if "unbounded below" in n]


def test_a_validation_choice_that_test_disagrees_with_is_flagged():
    runs = _runs("wine", "adam", {0.01: 0.9, 0.1: 0.8}, metric="valid_accuracy")
    runs["final_test_accuracy"] = np.where(runs["config"] == 0, 0.7, 0.75)
    _, notes = _caveats(runs)
    assert notes == ["adam on wine: the best setting on validation (learning_rate=0.01) is not "
                     "the best on test (learning_rate=0.1); the test metric is reported at "
                     "the validation choice"]
    runs["final_test_accuracy"] = np.where(runs["config"] == 0, 0.8, 0.75)
    assert _caveats(runs)[1] == []


def test_a_difference_claimed_on_fewer_than_five_seeds_is_flagged():
    """3 seeds x 4 starts: 12 pairs are enough for the test to claim a difference, but the
    seeds behind it are few."""
    noise = np.random.default_rng(0).normal(size=(3, 4))
    adam = _runs("sphere", "adam", {0.1: lambda s, k: 1.0 + noise[s, k]}, seeds=3, starts=4)
    sgd = _runs("sphere", "sgd", {0.1: lambda s, k: 1.5 + noise[s, k]}, seeds=3, starts=4)
    table, notes = _caveats(pd.concat([adam, sgd], ignore_index=True))
    assert not table.set_index("optimizer").loc["sgd", "tied_with_best"]
    assert "sgd on sphere: reported worse than the best on 3 seeds, fewer than 5" in notes


def test_a_task_that_separates_nothing_is_flagged():
    noise = np.random.default_rng(1).normal(size=8)
    adam = _runs("booth", "adam", {0.1: lambda s, k: noise[s]}, seeds=8)
    sgd = _runs("booth", "sgd", {0.1: lambda s, k: noise[s] + 1e-3 * (-1) ** s}, seeds=8)
    table, notes = _caveats(pd.concat([adam, sgd], ignore_index=True))
    assert table["tied_with_best"].all()
    assert notes == ["booth does not separate these optimizers: each is tied with the best "
                     "(Wilcoxon, Holm-corrected, p >= 0.05, on 8 paired runs)"]
    assert caveats_text(table).startswith("\n\nCaveats:\n- booth does not separate")
    few = pd.concat([adam[adam["seed"] < 3], sgd[sgd["seed"] < 3]], ignore_index=True)
    assert _caveats(few)[1] == ["booth cannot separate these optimizers on 3 paired runs: "
                                "Wilcoxon's test needs 6 to reach p < 0.05; rerun the best "
                                "settings on more seeds (optbench sweep --best-of on the "
                                "tuning sweep, --seeds N)"]


def test_shared_hyperparameters_left_at_different_defaults_are_flagged():
    """optax's lion decays weights by 1e-3 by default; a hand-written one does not. Values
    a user set (or a stage 2 fixed after tuning) are choices, not flagged."""
    lion = _runs("mlp", "lion", {1e-3: 0.8}, metric="valid_accuracy", weight_decay=1e-3)
    mine = _runs("mlp", "mylion", {3e-3: 0.8}, metric="valid_accuracy", weight_decay=0.0)
    runs = pd.concat([lion, mine], ignore_index=True)
    defaults = {"lion": {"learning_rate": None, "weight_decay": 1e-3},
                "mylion": {"learning_rate": None, "weight_decay": 0.0}}
    flagged = ("on mlp, the compared optimizers ran weight_decay at their own defaults, "
               "which differ (lion 0.001, mylion 0)")
    assert flagged in _caveats(runs, defaults)[1]
    runs.loc[runs["optimizer"] == "lion", "weight_decay"] = 0.0  # the user matched them
    assert not any("weight_decay" in note for note in _caveats(runs, defaults)[1])


def test_a_tie_on_test_is_no_objection_and_diverged_runs_count_as_worst_on_test():
    runs = _runs("wine", "adam", {0.01: 0.9, 0.1: 0.8}, metric="valid_accuracy")
    runs["final_test_accuracy"] = 1.0  # both settings perfect on test: a tie
    table, notes = _caveats(runs)
    assert notes == []
    runs.loc[runs.index[0], ["diverged", "final"]] = [True, -np.inf]
    runs.loc[runs.index[1:4], "final_test_accuracy"] = 0.5  # 3 of the chosen setting's 6
    table, _ = _caveats(runs)
    # the diverged run's frozen test value (1.0) does not count: the median is of
    # [-inf, 0.5, 0.5, 0.5, 1, 1], not [1, 0.5, 0.5, 0.5, 1, 1] (0.75)
    assert table.set_index("optimizer").loc["adam", "median_test"] == 0.5


def test_times_in_seconds_say_that_a_blocks_runs_share_one_program_and_the_machine():
    runs = _runs("booth", "adam", {0.1: 1e-3})
    table = convergence_table(runs.assign(seconds_per_step=2e-4), [0.5], 100,
                              {"adam": HP}, machine="1 x NVIDIA H100 80GB HBM3")
    (note, brief) = [n for n in table.attrs["caveats"] if "seconds" in n]
    assert "one compiled program" in note and "1 x NVIDIA H100 80GB HBM3" in note
    assert "not comparable across machines" in note
    assert brief.startswith("1 of 1 blocks ran for less than 1 s")  # 6 runs x 0.01 s
    long = convergence_table(runs.assign(seconds_per_step=2e-4, wall_time=1.0), [0.5], 100,
                             {"adam": HP})
    assert [n for n in long.attrs["caveats"] if "seconds" in n] == [
        note.replace("this machine (1 x NVIDIA H100 80GB HBM3)",
                     "the machine that ran the sweep")]
    assert _caveats(runs)[1] == []  # no time per step stored: nothing to say about it
