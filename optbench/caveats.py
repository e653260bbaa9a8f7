"""What a careful reviewer would say about a comparison, from the stored runs and the
convergence table: the chosen setting on the edge of what was searched, a validation choice
that test disagrees with, differences claimed on few seeds, shared hyperparameters that the
compared optimizers set differently, tasks that separate nothing, escapes from a saddle ranked
as divergence, and what times in seconds mean.

Each caveat is one sentence; :func:`caveats` lists them for the printed table, the files and
the report. Everything here reads tables; nothing re-runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from optbench.analysis import (
    Hyperparameters,
    best_configs,
    setting,
    test_metric,
    worst_if_diverged,
)
from optbench.store import SECONDS_PER_STEP

MIN_SEEDS = 5  # fewer seeds than this behind a claimed difference is flagged
MIN_EDGE_VALUES = 3  # a hyperparameter searched over fewer values has no inside to miss
MIN_PAIRS = 6  # Wilcoxon's two-sided exact p-value cannot fall below 0.05 on fewer pairs
# a block that ran for less is timed mostly by fixed costs (a fresh program's first call
# took 10-30 ms on a CPU core, longer than 10^4 steps of 8 runs on a 2-D surface)
BRIEF_RUN_SECONDS = 1.0


def caveats(runs: pd.DataFrame, table: pd.DataFrame, hyperparameters: Hyperparameters,
            machine: str | None = None) -> list[str]:
    """Every caveat of a sweep, task by task, then those across optimizers (``table``:
    :func:`optbench.analysis.convergence_table`, whose ``config`` is the chosen setting;
    ``machine``: the devices it ran on, :func:`optbench.analysis.machine`)."""
    out = []
    for _, row in table.iterrows():
        task, optimizer = row["task"], row["optimizer"]
        mine = runs[(runs["task"] == task) & (runs["optimizer"] == optimizer)]
        picked = mine[mine["config"] == row["config"]].iloc[0]
        out += [f"{optimizer} on {task}: {text}" for text in
                [*on_the_edge(mine, picked, hyperparameters[optimizer]),
                 *test_disagrees(mine, picked, row, hyperparameters[optimizer]),
                 *few_seeds(row)]]
    return [*out, *separates_nothing(table), *escapes_ranked_last(runs),
            *different_defaults(runs, hyperparameters), *shared_program_time(table, machine)]


def on_the_edge(runs: pd.DataFrame, picked: pd.Series,
                defaults: Mapping[str, float | None]) -> list[str]:
    """The chosen value of each hyperparameter searched over enough values that is the
    smallest or the largest tried: the best may lie beyond the values tried (on a random
    search, the trials' extremes, within the searched bounds or at them)."""
    out = []
    for name in defaults:
        if name not in runs or runs[name].nunique() < MIN_EDGE_VALUES:
            continue
        value, low, high = picked[name], runs[name].min(), runs[name].max()
        if value in (low, high):
            edge = "largest" if value == high else "smallest"
            out.append(f"{name}={value:.3g} is the {edge} value tried "
                       f"({low:.3g} to {high:.3g}); the best may lie beyond it")
    return out


def test_disagrees(runs: pd.DataFrame, picked: pd.Series, row: pd.Series,
                   defaults: Mapping[str, float | None]) -> list[str]:
    """Where the test split would have chosen another setting than validation did."""
    name = test_metric(row["metric"])
    column = f"final_{name}"
    if name is None or column not in runs or runs["config"].nunique() < 2:
        return []
    on_test = runs.assign(final=worst_if_diverged(runs, column))
    best_on_test = best_configs(on_test, [], 1)["config"].iloc[0]
    medians = on_test.groupby("config")["final"].median()
    if medians[best_on_test] == medians[picked["config"]]:  # a tie on test is no objection
        return []
    other = runs[runs["config"] == best_on_test].iloc[0]
    return [f"the best setting on validation ({setting(runs, picked, defaults)}) is not the "
            f"best on test ({setting(runs, other, defaults)}); the test metric is reported at "
            "the validation choice"]


def few_seeds(row: pd.Series) -> list[str]:
    """A difference from the best claimed on fewer than :data:`MIN_SEEDS` seeds."""
    if row["best"] or row["tied_with_best"] or row["seeds"] >= MIN_SEEDS:
        return []
    return [f"reported worse than the best on {row['seeds']} seeds, fewer than {MIN_SEEDS}"]


def separates_nothing(table: pd.DataFrame) -> list[str]:
    """Tasks on which every optimizer is statistically tied with the best."""
    out = []
    for task, part in table.groupby("task", sort=False):
        if len(part) > 1 and part["tied_with_best"].all():
            least = part.loc[part["pairs"].idxmin()]
            pairs = int(least["pairs"])
            more = ("give the task more starts: its seeds change none of these runs (fixed "
                    "starts, exact gradients)" if least.get("per_start", False) else
                    "rerun the best settings on more seeds (optbench sweep --best-of on "
                    "the tuning sweep, --seeds N)")
            if pairs < MIN_PAIRS:
                out.append(f"{task} cannot separate these optimizers on {pairs} paired runs: "
                           f"Wilcoxon's test needs {MIN_PAIRS} to reach p < 0.05; {more}")
            else:
                out.append(f"{task} does not separate these optimizers: each is tied with "
                           f"the best (Wilcoxon, Holm-corrected, p >= 0.05, on {pairs} "
                           "paired runs)")
    return out


def escapes_ranked_last(runs: pd.DataFrame) -> list[str]:
    """Tasks on a surface unbounded below (a saddle) where runs diverged: there a run that
    escapes to -inf, the event such a surface is for, is flagged diverged and ranks last, so
    the best setting can be the slowest to escape."""
    if "bounded" not in runs:  # no surface task (or results of optbench <= 0.1)
        return []
    escaped = runs[runs["bounded"].eq(False) & runs["diverged"].astype(bool)]
    return [f"{task} is unbounded below: its runs that escaped to -inf are flagged diverged "
            "and rank last, so its best settings may be the slowest to escape; compare the "
            "steps to its targets (and divergence_step, the escape) instead"
            for task in escaped["task"].unique()]


def different_defaults(runs: pd.DataFrame, hyperparameters: Hyperparameters) -> list[str]:
    """Hyperparameters shared by the optimizers compared on a task that each ran at its own
    default, and whose defaults differ: a reader comparing them would want to know (optax's
    lion decays weights by 1e-3 by default, a hand-written one not at all). A value anyone
    set or tuned is a choice, not a default, and is not flagged."""
    out = []
    for task, part in runs.groupby("task", sort=False):
        by_optimizer = dict(list(part.groupby("optimizer", sort=False)))
        names = sorted({n for label in by_optimizer for n in hyperparameters[label]
                        if n in part})
        for name in names:
            defaults = {label: hyperparameters[label].get(name)
                        for label, own in by_optimizer.items()
                        if name in hyperparameters[label] and own[name].notna().any()}
            ran_at_default = all(
                default is not None and np.allclose(by_optimizer[label][name], default)
                for label, default in defaults.items())
            if len(defaults) > 1 and ran_at_default and len(set(defaults.values())) > 1:
                listed = ", ".join(f"{label} {d:g}" for label, d in defaults.items())
                out.append(f"on {task}, the compared optimizers ran {name} at their own "
                           f"defaults, which differ ({listed})")
    return out


def shared_program_time(table: pd.DataFrame, machine: str | None) -> list[str]:
    """What the seconds to target are, where the table has them: each block's runs are one
    compiled program, so they share its time per step, and that time is this machine's;
    and which blocks ran too briefly for it to be the steps' (fixed costs dominate)."""
    if SECONDS_PER_STEP not in table or table[SECONDS_PER_STEP].isna().all():
        return []
    where = f"this machine ({machine})" if machine else "the machine that ran the sweep"
    out = ["times in seconds are each block's seconds per step times the steps: all runs of "
           "a block are one compiled program, so they share its per-step time (its run time, "
           "compilation excluded, times its devices, over the steps of all its runs, which "
           f"depends on how many runs it batches); device-seconds on {where}, not "
           "comparable across machines"]
    brief = table[table["wall_s"] < BRIEF_RUN_SECONDS]
    if len(brief):
        out.append(f"{len(brief)} of {len(table)} blocks ran for less than "
                   f"{BRIEF_RUN_SECONDS:g} s, so their seconds per step hold mostly the fixed "
                   "costs of a run (dispatch, transfers, a freshly compiled program's first "
                   "call), not the steps': compare times in seconds on longer runs")
    return out
