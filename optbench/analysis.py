"""Convergence metrics from the result store: best settings, success, steps to target, ERT.

Everything here is a pure function of stored tables; nothing re-runs.

* The best hyperparameters of an optimizer on a task are those with the lowest **median
  final f - f_min** over seeds and starts (diverged runs count as +inf), or, for a task whose
  metric is maximized (a network's validation accuracy), the highest (diverged runs: -inf).
* **Success** at a target: the run reached ``f - f_min <= target`` (a maximized metric:
  ``>= target``) before diverging.
* **ERT** (expected running time, as COCO defines it): the steps spent by all runs — the
  steps to the target for successful runs, the whole budget for the others — divided by the
  number of successful runs; inf when none succeeded.
* **Seconds** (time to target, after AlgoPerf): a block's runs are one compiled program
  and share its time per step (``seconds_per_step``: run time, compilation excluded, times
  its devices, over the steps of all its runs), so every step statistic in seconds is the
  steps times it.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench import render, stats
from optbench.memo import on_disk
from optbench.store import (
    SECONDS_PER_STEP,
    STEPS_TO,
    ResultStore,
    target_column,
    with_seconds,
)

GROUP = ["task", "optimizer"]
LEGEND = """\
Best setting: per task and optimizer, the hyperparameters with the lowest median final value
over seeds and starts (the highest for a maximized metric such as validation accuracy;
diverged runs count as the worst value). Ties go to the lowest share of diverged runs, then
the lowest ERT at the tightest target, then the next; so no other setting is as good on the
median and diverges less. It names every hyperparameter that the sweep varied or set away
from the optimizer's default ("defaults": none). A network is tuned on its validation split:
"test at it" is the test metric at the setting chosen on validation, reported, never used to
choose.

[95% CI]: percentile bootstrap intervals (scipy.stats.bootstrap, 2000 resamples) over the
runs (seeds x starts) of the chosen setting, for the median, the success rate and the ERT.

succ: the share of runs that reached f - f* <= target (a maximized metric: >= target)
before diverging. ERT (expected running time, COCO): the steps spent by all runs - the
steps to the target for those that reached it, the whole budget for the others - divided by
the number that reached it. It is a ratio, so it can be fractional, and it exceeds the step
budget when some runs fail (1 of 4 runs reaching the target at step 200 of 1000:
(200 + 3 x 1000) / 1 = 3200). "-": no run reached the target.

vs best (paired): each optimizer against the task's best (ranked as settings are) on runs
paired by seed and start, which share their initial parameters and batches: Wilcoxon's
signed-rank test, Holm-corrected over the task's optimizers. "tied": p >= 0.05, no
difference shown at that level; "worse": p < 0.05 ("better on pairs" where most pairs favour
it though the best's median ranks first); "one observation": one independent pair, so no
test (one seed and one start, or a fixed start and exact gradients, where every seed runs
the same run). Where neither optimizer's seeds change its runs, each start counts once.

expected best of 1 / N settings: the expected best score (each setting scored by its median)
of a search that draws 1, or N, of the N settings tried at random, with replacement (Dodge et
al. 2019; N draws miss a given setting about a third of the time, so @N can fall short of the
best setting tried): an optimizer much better at N than at 1 is hard to tune; the report
draws the curve. A minimized metric is averaged on a log scale, each median floored at the
tightest target / 10, so @1 is a geometric mean, not the mean of the medians; a diverged
setting scores as the task's worst finite one. A stage-2 table shows stage 1's (recorded
when stage 2 was planned; one planned by optbench 0.1 shows its own, N=1).

ERT s: the ERT in seconds, the steps times the block's seconds per step ("s / step": its
program's run time, compilation excluded, times the devices it ran on, over the steps of all
the runs it ran, padding included, which share it).
Device-seconds (wall-clock on one device) on the machine that ran the sweep: not comparable
across machines.

compile s: the seconds to compile a block's program; "shared": the block ran a program
compiled for an earlier one (blocks that differ only in data share one)."""


Hyperparameters = Mapping[str, Mapping[str, float | None]]  # label -> name -> default


def setting(runs: pd.DataFrame, row: pd.Series, hyperparameters: Mapping[str, float | None]
            ) -> str:
    """The hyperparameters of the setting in ``row`` worth naming, e.g.
    ``learning_rate=0.01, momentum=0.95``: those that take more than one value among its
    optimizer's runs, or that differ from their default (``hyperparameters``: name ->
    default, None if required); "defaults" when there are none."""
    rows = runs[runs["optimizer"] == row["optimizer"]]
    names = [n for n, default in hyperparameters.items()
             if n in row.index and pd.notna(row[n]) and (
        rows[n].nunique() > 1 or default is None
        or not np.isclose(row[n], default, rtol=1e-12, atol=0))]
    return ", ".join(f"{n}={row[n]:.3g}" for n in names) or "defaults"


def recorded_hyperparameters(meta: Mapping, runs: pd.DataFrame) -> dict:
    """Each optimizer label's hyperparameters and defaults (the step-size decay power among
    them), as its sweep recorded them in meta.json, so that reading imports no optimizer code
    (nor JAX); for a store written before that, looked up in the registry by each label's
    method."""
    if "hyperparameters" in meta:
        return dict(meta["hyperparameters"])
    from optbench.optimizers import hyperparameters
    from optbench.optimizers.schedule import LR_DECAY

    methods = runs.drop_duplicates("optimizer").set_index("optimizer")["method"]
    return {label: {**hyperparameters(method), LR_DECAY: 0.0}
            for label, method in methods.items()}


PerTask = Mapping[str, Any]  # task name -> its value (its own targets, or step budget)


def plans(meta: Mapping) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Each task's targets and step budget, as its blocks recorded them (a ``[[tasks]]``
    table may set its own; stores written before that: the sweep's)."""
    config = meta["config"]
    targets, steps = {}, {}
    for block in meta["blocks"].values():
        targets[block["task"]] = list(block.get("targets", config["targets"]))
        steps[block["task"]] = int(block.get("steps", config["steps"]))
    return targets, steps


def _of(value: Any, task: str) -> Any:
    """``value`` for ``task``: its entry where ``value`` is per task, else ``value``."""
    return value[task] if isinstance(value, Mapping) else value


def best_configs(runs: pd.DataFrame, targets: Sequence[float] | PerTask,
                 steps: int | PerTask) -> pd.DataFrame:
    """Per (task, optimizer): the config index with the lowest median final value (the
    highest where the task's metric is maximized, such as a network's validation accuracy).

    Ties (common: many settings reach exactly 0 in float32, or every median is inf) go to
    the lowest share of diverged runs, so the choice is never dominated (another setting as
    good on the median that diverges less), then to the lowest ERT at the tightest target,
    the next tightest, and so on, then to the best median best value.
    ``targets`` and ``steps`` are the sweep's, or each task's (:func:`plans`).
    """
    return pd.concat([_best_configs(part, _of(targets, task), _of(steps, task))
                      for task, part in runs.groupby("task", sort=False)], ignore_index=True)


def _best_configs(runs: pd.DataFrame, targets: Sequence[float], steps: int) -> pd.DataFrame:
    """:func:`best_configs` of one task's runs."""
    maximize = bool(runs["maximize"].iloc[0])
    sign = -1.0 if maximize else 1.0  # sorted ascending: lower is better
    configs = runs.assign(final=sign * runs["final"], best=sign * runs["best"]).groupby(
        [*GROUP, "config"], sort=False)
    keys = configs["final"].median().rename("median_final").to_frame()
    keys["diverged"] = configs["diverged"].mean()
    tightest_first = sorted(targets, reverse=maximize)
    by = [runs[c] for c in [*GROUP, "config"]]
    for target in tightest_first:
        keys[f"ert_{target:g}"] = ert_by(runs[target_column(target)], by, steps)
    keys["median_best"] = configs["best"].median()
    order = keys.reset_index().sort_values(
        ["median_final", "diverged", *(f"ert_{t:g}" for t in tightest_first), "median_best"],
        kind="stable")
    return order.drop_duplicates(GROUP)[[*GROUP, "config"]].reset_index(drop=True)


def ert_by(hit_steps: pd.Series, by: Any, steps: int) -> pd.Series:
    """COCO's expected running time of each group (``by``, as for ``Series.groupby``): the
    steps spent by all its runs (``steps`` for those that never reached the target) divided
    by the number that did; inf if none did."""
    successes = hit_steps.notna().groupby(by, sort=False).sum()
    spent = hit_steps.fillna(steps).groupby(by, sort=False).sum()
    return (spent / successes.where(successes > 0)).fillna(np.inf)


def all_targets(targets: Sequence[float] | PerTask) -> list[float]:
    """Every target of the sweep, largest first (each task's, where they differ)."""
    values = targets.values() if isinstance(targets, Mapping) else [targets]
    return sorted({float(t) for own in values for t in own}, reverse=True)


def machine(meta: Mapping) -> str | None:
    """The devices a sweep ran on, as its meta.json records them (``1 x cpu``); None where
    it does not."""
    kind = meta.get("device_kind")
    return None if kind is None else f"{meta.get('device_count', 1)} x {kind}"


@on_disk  # computed once per sweep: at its end, then read back by table and report
def convergence_table(runs: pd.DataFrame, targets: Sequence[float] | PerTask,
                      steps: int | PerTask, hyperparameters: Hyperparameters,
                      machine: str | None = None, stage1: Mapping | None = None
                      ) -> pd.DataFrame:
    """One row per (task, optimizer) at its best hyperparameters (stated in ``setting``,
    from ``hyperparameters``: :func:`recorded_hyperparameters`), with 95 % bootstrap
    intervals on its median final value, success rates and ERTs at every target of the sweep
    (NaN at a target that is not its task's own), in steps and in seconds (``*_seconds@``:
    the steps times the block's ``seconds_per_step``, NaN where the store has none; its
    caveat names ``machine``), the test metric at that setting where the
    primary metric is a validation one, its paired comparison with the task's best, and the
    expected best after 1 and all N settings tried (:mod:`optbench.aggregate`).
    ``table.attrs["caveats"]`` lists what a reviewer would flag
    (:func:`optbench.caveats.caveats`). For a stage-2 sweep, ``stage1`` (its meta's record,
    :func:`optbench.tuning.stage_1`) gives the settings tried, expected bests and edges of
    the search that chose each setting: its own runs hold one setting each."""
    runs = with_seconds(runs)  # NaN seconds where the runs have no time per step
    chosen = runs.merge(best_configs(runs, targets, steps), on=[*GROUP, "config"])
    wall = runs.groupby(GROUP, sort=False)["wall_time"].sum()
    rows: list[dict] = []
    todo: list[tuple[int, str, np.ndarray, stats.Statistic]] = []  # intervals to bootstrap
    for (task, optimizer), group in chosen.groupby(GROUP, sort=False):
        final = group["final"]
        interval = functools.partial(_interval, todo, len(rows), units=independent_runs(group))
        metric = group["metric"].iloc[0]  # f_gap, or e.g. valid_accuracy (maximized)
        row = {
            "task": task,
            "optimizer": optimizer,
            "setting": setting(runs, group.iloc[0], hyperparameters[optimizer]),
            "config": group["config"].iloc[0],  # the chosen setting's index in the runs
            "metric": metric,
            "maximize": bool(group["maximize"].iloc[0]),
            "runs": len(group),
            "seeds": group["seed"].nunique(),
            "median_final": final.median(),
            **interval("final", final, stats.median),
            "q25_final": final.quantile(0.25, interpolation="nearest"),
            "q75_final": final.quantile(0.75, interpolation="nearest"),
            **_test_at_chosen(group, metric, interval),
            "diverged": group["diverged"].mean(),
            "wall_s": wall[(task, optimizer)],  # run time of the whole block
            SECONDS_PER_STEP: float(group[SECONDS_PER_STEP].iloc[0]),  # one per block
        }
        own, budget = _of(targets, task), _of(steps, task)
        for target in all_targets(targets):
            hit = group[target_column(target)].to_numpy(float) if target in own else None
            row[f"success@{target:g}"] = np.nan if hit is None else stats.success_rate(hit)
            row |= interval(f"success@{target:g}", hit, stats.success_rate)
            # median steps of the runs that succeeded: NaN when none did
            row[f"median_steps@{target:g}"] = (np.nan if hit is None or np.isnan(hit).all()
                                               else float(np.nanmedian(hit)))
            row[f"ert@{target:g}"] = np.nan if hit is None else float(stats.ert_of(budget)(hit))
            row |= interval(f"ert@{target:g}", hit, stats.ert_of(budget))
            row |= in_seconds(row, target, row[SECONDS_PER_STEP])  # placed; filled below
        rows.append(row)
    _bootstrap(rows, todo)
    for row in rows:  # the seconds of the steps' intervals, bootstrapped now
        for target in all_targets(targets):
            row |= in_seconds(row, target, row[SECONDS_PER_STEP])
    from optbench.aggregate import (  # these modules read tables made here
        EXPECTED_BEST,
        TUNING_COLUMNS,
        tuning_columns,
    )
    from optbench.caveats import caveats

    table = pd.DataFrame(rows).merge(compare_to_best(chosen, targets, steps), on=GROUP,
                                     how="left")
    # a stage 2's own runs hold one setting each: what the search says is stage 1's
    stage_1 = (stage1 or {}).get("chosen")  # absent in stage-2 folders of optbench <= 0.1
    searched = tuning_columns(runs, targets) if stage_1 is None else pd.DataFrame(
        [{"task": task, "optimizer": optimizer, **{c: record[c] for c in TUNING_COLUMNS}}
         for task, by_optimizer in stage_1.items() for optimizer, record in by_optimizer.items()]
    ).astype(dict.fromkeys(EXPECTED_BEST, float))  # "inf" as JSON keeps it
    table = table.merge(searched, on=GROUP, how="left")
    table.attrs["caveats"] = caveats(runs, table, hyperparameters, machine) + [
        f"{optimizer} on {task}: {edge} (stage 1 chose it)"
        for task, by_optimizer in (stage_1 or {}).items()
        for optimizer, record in by_optimizer.items() for edge in record["edges"]]
    return table


def _interval(todo: list, row: int, name: str, sample: np.ndarray | pd.Series | None,
              statistic: stats.Statistic, units: np.ndarray) -> dict:
    """``{name}_low`` and ``{name}_high`` of row ``row``, NaN until :func:`_bootstrap` puts
    the 95 % bootstrap interval there (NaN without data), resampling the runs ``units``
    marks (:func:`independent_runs`)."""
    if sample is not None and len(sample):
        todo.append((row, name, np.asarray(sample, float)[units], statistic))
    return {f"{name}_low": np.nan, f"{name}_high": np.nan}


def _bootstrap(rows: list[dict], todo: list) -> None:
    """Fill the intervals :func:`_interval` deferred, one batched bootstrap per statistic."""
    by_statistic: dict[stats.Statistic, list] = {}
    for item in todo:
        by_statistic.setdefault(item[3], []).append(item)
    for statistic, items in by_statistic.items():
        bounds = stats.bootstrap_intervals([sample for _, _, sample, _ in items], statistic)
        for (row, name, _, _), (low, high) in zip(items, bounds, strict=True):
            rows[row][f"{name}_low"], rows[row][f"{name}_high"] = low, high


IN_SECONDS = {"median_steps": "median_seconds", "ert": "ert_seconds"}  # steps -> seconds


def in_seconds(row: Mapping, target: float, per_step: float) -> dict:
    """A row's step statistics at ``target`` (median steps, ERT and its interval) in
    seconds: the runs of a block share one time per step, so each is steps x ``per_step``
    (NaN without one; inf, never reached, stays inf)."""
    return {f"{seconds}@{target:g}{end}": row[f"{steps}@{target:g}{end}"] * per_step
            for steps, seconds in IN_SECONDS.items()
            for end in ("", "_low", "_high") if f"{steps}@{target:g}{end}" in row}


def test_metric(metric: str) -> str | None:
    """The test split's counterpart of a validation metric (``valid_accuracy`` ->
    ``test_accuracy``); None for other metrics (a surface's f_gap)."""
    return f"test_{metric.removeprefix('valid_')}" if metric.startswith("valid_") else None


def worst_if_diverged(runs: pd.DataFrame, column: str) -> pd.Series:
    """``runs[column]`` with each diverged run's value the worst (-inf for a maximized
    metric, +inf otherwise): a diverged run's other metrics are frozen at its last valid
    record, which must not count as its result."""
    worst = np.where(runs["maximize"].astype(bool), -np.inf, np.inf)
    return runs[column].where(~runs["diverged"].astype(bool), pd.Series(worst, runs.index))


def _test_at_chosen(group: pd.DataFrame, metric: str, interval: Callable) -> dict:
    """The test metric's median (and interval) over the runs of the setting chosen on the
    validation metric (diverged runs the worst): reported, never used to choose."""
    name = test_metric(metric)
    column = f"final_{name}"
    if name is None or column not in group:
        return {"test_metric": None, "median_test": np.nan, "test_low": np.nan,
                "test_high": np.nan}
    values = worst_if_diverged(group, column).to_numpy(float)
    return {"test_metric": name, "median_test": float(np.median(values)),
            **interval("test", values, stats.median)}


def _pair_signs(best: np.ndarray, other: np.ndarray, sign: float) -> np.ndarray:
    """+1 where ``other``'s run beats the best's paired one, -1 where it loses, 0 where they
    are equal (two diverged runs, +-inf both, tie)."""
    with np.errstate(invalid="ignore"):
        return np.where(best == other, 0.0, np.sign(sign * (best - other)))


def seed_free(runs: pd.DataFrame) -> bool:
    """Whether the seed changes none of one setting's ``runs``: at each start, every seed's
    results (final values, steps to the targets) are the same, NaN included, as with fixed
    starts and exact gradients. Such copies of a run are one observation, not many."""
    columns = ["final", *(c for c in runs if c.startswith((STEPS_TO, "final_")))]
    order = np.argsort(runs["start"].to_numpy(), kind="stable")  # each start's runs together
    values, starts = runs[columns].to_numpy(float)[order], runs["start"].to_numpy()[order]
    alike = (values[1:] == values[:-1]) | (np.isnan(values[1:]) & np.isnan(values[:-1]))
    return bool(alike[starts[1:] == starts[:-1]].all())


def independent_runs(runs: pd.DataFrame) -> np.ndarray:
    """Which of one setting's ``runs`` are independent observations: all of them, or where
    the seed changes none (:func:`seed_free`), the first of each start. Copies counted as
    many would narrow every interval."""
    if seed_free(runs):
        return ~runs["start"].duplicated().to_numpy()
    return np.ones(len(runs), bool)


def compare_to_best(chosen: pd.DataFrame, targets: Sequence[float] | PerTask,
                    steps: int | PerTask) -> pd.DataFrame:
    """Per (task, optimizer) at its chosen setting: whether it is the task's best (ranked
    as settings are, :func:`best_configs`), and else the Holm-adjusted p-value of Wilcoxon's
    signed-rank test against the best over runs paired by seed and start, the pairs used
    (``per_start``: one per start, see below),
    ``tied_with_best`` (p >= :data:`optbench.stats.ALPHA`) and ``better_on_pairs`` (most
    pairs favour it: the test is two-sided, and the best is ranked by its median first).
    Where the seed changes the runs of neither (:func:`seed_free`), each start is one pair;
    a single pair is one observation: no test (p NaN, ``deterministic``), tied if equal."""
    rows = []
    for task, part in chosen.groupby("task", sort=False):
        as_settings = part.assign(config=part["optimizer"], optimizer="")
        best = best_configs(as_settings, {task: _of(targets, task)}, {task: _of(steps, task)}
                            )["config"].iloc[0]
        maximize = bool(part["maximize"].iloc[0])
        finals = part.pivot_table(index=["seed", "start"], columns="optimizer",
                                  values="final", aggfunc="first")
        sign = -1.0 if maximize else 1.0  # lower is better after the sign
        others = [o for o in part["optimizer"].unique() if o != best]
        free = {o: seed_free(own) for o, own in part.groupby("optimizer", sort=False)}
        compared = []
        for other in others:
            both = finals[[best, other]].dropna()
            if free[best] and free[other]:
                both = both[~both.index.get_level_values("start").duplicated()]
            a, b = both[best].to_numpy(), both[other].to_numpy()
            fixed = len(both) <= 1
            compared.append({
                "task": task, "optimizer": other, "best": False, "pairs": len(both),
                "per_start": free[best] and free[other],
                "deterministic": fixed, "equal": bool(np.array_equal(a, b)),
                "better_on_pairs": bool(np.mean(_pair_signs(a, b, sign)) > 0),
                "p": np.nan if fixed else stats.paired_p_value(a, b, maximize)})
        tested = [c for c in compared if not c["deterministic"]]
        for c, p in zip(tested, stats.holm([c["p"] for c in tested]), strict=True):
            c["p"] = p
        alone = int(independent_runs(part[part["optimizer"] == best]).sum())
        rows.append({"task": task, "optimizer": best, "best": True, "p_vs_best": np.nan,
                     "pairs": max((c["pairs"] for c in compared), default=alone),
                     "per_start": all(free.values()), "tied_with_best": True,
                     "better_on_pairs": False, "deterministic": False})
        rows += [{**{k: c[k] for k in (*GROUP, "best", "pairs", "per_start",
                                       "better_on_pairs", "deterministic")},
                  "p_vs_best": c["p"],
                  "tied_with_best": c["equal"] if c["deterministic"] else c["p"] >= stats.ALPHA}
                 for c in compared]
    return pd.DataFrame(rows, columns=[*GROUP, "best", "p_vs_best", "pairs", "per_start",
                                       "tied_with_best", "better_on_pairs", "deterministic"])


def table_targets(table: pd.DataFrame) -> list[float]:
    """The targets a convergence table has columns for, easiest first: largest first for
    a minimized metric, smallest first for a maximized one."""
    maximize = "maximize" in table and bool(table["maximize"].all()) and len(table) > 0
    return sorted((float(c.removeprefix("success@")) for c in table
                   if c.startswith("success@") and not c.endswith(("_low", "_high"))),
                  reverse=not maximize)


def metric_groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The table's rows by metric (f_gap, valid_accuracy, ...), in order of appearance, each
    with only the target columns its tasks use: metrics on different scales are never
    pooled (COCO aggregates per function group). The parts carry no ``attrs`` (pandas
    deep-copies them into every frame and column taken from a part)."""
    table = table.copy(deep=False)
    table.attrs = {}
    groups = []
    for metric, part in table.groupby("metric", sort=False):
        used = [c for c in part.columns if not (c.split("@")[0] in TARGET_STATISTICS
                                                and part[c].isna().all())]
        groups.append((metric, part[used].reset_index(drop=True)))
    return groups


TARGET_STATISTICS = ("success", "median_steps", "ert", *IN_SECONDS.values())


def markdown(table: pd.DataFrame, width: int | None = None) -> str:
    """A compact Markdown rendering (:func:`compact`), one table per metric group under a
    heading naming the metric. With ``width``, a wider table is split into column groups
    that fit it."""
    parts = []
    for metric, part in metric_groups(table):
        shown = compact(part)
        text = (render.markdown_split(shown, GROUP, width) if width is not None
                else shown.to_markdown(index=False))
        parts.append(f"{metric_title(metric, bool(part['maximize'].iloc[0]))}\n\n{text}")
    return "\n\n".join(parts)


def metric_title(metric: str, maximize: bool) -> str:
    """The heading of a metric group's table, saying which way is better."""
    if metric == "f_gap":
        return "f - f* (lower is better)"
    test = test_metric(metric)
    chosen = f"; settings chosen on it, {test} reported at them" if test else ""
    return f"{metric} ({'higher' if maximize else 'lower'} is better{chosen})"


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """One metric group's convergence table as strings (Markdown and the report's page
    show this): median [95 % CI] final, the test metric at the chosen setting, success /
    ERT at up to four targets spread over the group's ladder (blank at a target that is
    not the row's task's; with the ERT in seconds where the runs were timed), the
    comparison with the task's best, diverged share, times."""
    targets = table_targets(table)
    timed = SECONDS_PER_STEP in table and table[SECONDS_PER_STEP].notna().any()
    picks = sorted({round(i) for i in np.linspace(0, len(targets) - 1, min(4, len(targets)))})
    targets = [targets[i] for i in picks]
    estimate = estimate_format(table["metric"].iloc[0])
    value = value_format(table["metric"].iloc[0])
    test_shown = table["test_metric"].notna().any()
    return pd.DataFrame({
        "task": table["task"],
        "optimizer": table["optimizer"],
        "best setting": table["setting"],
        "final median [95% CI]": [
            estimate(*values) for values in
            zip(table["median_final"], table["final_low"], table["final_high"], strict=True)],
        **({"test at it [95% CI]": [
            "" if np.isnan(values[0]) else estimate(*values) for values in
            zip(table["median_test"], table["test_low"], table["test_high"], strict=True)]}
           if test_shown else {}),
        **{f"{t:g}: succ / ERT [95% CI]" + (" / ERT s" if timed else ""):
           [_target_cell(table, i, t) for i in range(len(table))] for t in targets},
        **({"expected best of 1 / N settings": [
            f"{value(one)} / {value(every)} (N={n})" for one, every, n in
            zip(table["expected_best@1"], table["expected_best@N"], table["settings_tried"],
                strict=True)]} if "expected_best@1" in table else {}),
        "vs best (paired)": [_versus(row) for _, row in table.iterrows()],
        "seeds": table["seeds"],
        "diverged": [f"{d:.0%}" for d in table["diverged"]],
        "run s": [f"{w:.3f}" for w in table["wall_s"]],
        **({"s / step": [_seconds(v) for v in table[SECONDS_PER_STEP]]} if timed else {}),
        "compile s": [_compile_cell(table, i) for i in range(len(table))],
    })


def value_format(metric: str) -> Callable[[float], str]:
    """How a metric's values print: accuracies as percentages (``95.6 %``), f - f* in
    scientific notation, three significant digits otherwise."""
    if metric.endswith("accuracy"):
        return lambda v: f"{100 * v:.1f} %"
    if metric == "f_gap":
        return lambda v: f"{v:.2e}"
    return lambda v: f"{v:.3g}"


def estimate_format(metric: str) -> Callable[[float, float, float], str]:
    """An estimate and its interval, e.g. ``95.6 % [94.9, 96.3]`` for an accuracy,
    ``2.1e-05 [1.0e-05, 4.0e-05]`` for f - f*."""
    value = value_format(metric)
    if metric.endswith("accuracy"):
        return lambda v, a, b: f"{value(v)} [{100 * a:.1f}, {100 * b:.1f}]"
    if metric == "f_gap":
        return lambda v, a, b: f"{value(v)} [{a:.1e}, {b:.1e}]"
    return lambda v, a, b: f"{value(v)} [{value(a)}, {value(b)}]"


def _target_cell(table: pd.DataFrame, i: int, target: float) -> str:
    success = table[f"success@{target:g}"].iloc[i]
    if np.isnan(success):
        return ""
    low, high = (table[f"success@{target:g}_{end}"].iloc[i] for end in ("low", "high"))
    ert_value, ert_low, ert_high = (table[f"ert@{target:g}{end}"].iloc[i]
                                    for end in ("", "_low", "_high"))
    seconds = table.get(f"ert_seconds@{target:g}", pd.Series(np.nan, table.index)).iloc[i]
    return (f"{success:.0%} [{low:.0%}, {high:.0%}] / {_ert(ert_value)} "
            f"[{_ert(ert_low)}, {_ert(ert_high)}]"
            + ("" if np.isnan(seconds) else f" / {_seconds(seconds)}"))


def _versus(row: pd.Series) -> str:
    """The comparison with the task's best, as the table prints it."""
    if row["best"]:
        return "best"
    verdict = ("tied" if row["tied_with_best"] else
               "better on pairs" if row["better_on_pairs"] else "worse")
    if row["deterministic"]:
        return f"{verdict} (one observation)"
    return f"{verdict} (p={row['p_vs_best']:.2g})"


def _compile_cell(table: pd.DataFrame, i: int) -> str:
    """A block's compile seconds; "shared" where it ran a program compiled before."""
    if "program_reused" in table and bool(table["program_reused"].iloc[i]):
        return "shared"
    seconds = table["compile_s"].iloc[i]
    return "-" if np.isnan(seconds) else f"{seconds:.2f}"


def _ert(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{value:.4g}"


def _seconds(value: float) -> str:
    """Seconds as the compact table prints them: three digits, "-" where not finite."""
    return "-" if not np.isfinite(value) else f"{value:.3g}"


Save = Callable[[str, Callable[[Path], Any]], None]  # (file name, writer of a path)


def caveats_text(table: pd.DataFrame) -> str:
    """The table's caveats as a list under a heading, wrapped to fit a terminal (empty when
    there are none)."""
    notes = table.attrs.get("caveats", [])
    items = [textwrap.fill(note, render.WIDTH, initial_indent="- ", subsequent_indent="  ",
                           break_on_hyphens=False)
             for note in notes]
    return "\n\nCaveats:\n" + "\n".join(items) if notes else ""


def write_tables(table: pd.DataFrame, save: Save) -> None:
    """Write ``convergence.{md,csv,tex}`` with ``save`` (e.g. :meth:`ResultStore.write`);
    the Markdown file lists the caveats too."""
    text = markdown(table) + caveats_text(table) + "\n\n" + LEGEND + "\n"
    save("convergence.md", lambda tmp: tmp.write_text(text))
    save("convergence.csv", lambda tmp: table.to_csv(tmp, index=False))
    save("convergence.tex", lambda tmp: tmp.write_text(
        table.to_latex(index=False, float_format="%.3g", escape=True)))


def write_finished_tables(directory: str | Path) -> str:
    """Compute a finished sweep's convergence tables once, write them into its folder
    (``convergence.{md,csv,tex}``, in its manifest) and return their text for a terminal."""
    table, text = tables_for(directory)
    store = ResultStore(directory)
    with store:
        store.lock()
        write_tables(table, store.write)
    return text


def add_compile_columns(table: pd.DataFrame, blocks: Iterable[Mapping]) -> pd.DataFrame:
    """``compile_s`` (each row's block compile seconds, NaN where a block has no record: a
    rebuilt meta.json) and ``program_reused`` (it ran a program compiled for an earlier
    block, whose compile seconds are there), from the blocks' timing records."""
    record = {(b.get("task"), b.get("optimizer")): b for b in blocks}
    keys = list(zip(table["task"], table["optimizer"], strict=True))
    return table.assign(
        compile_s=[record.get(k, {}).get("compile_seconds", np.nan) for k in keys],
        program_reused=[bool(record.get(k, {}).get("program_reused", False)) for k in keys])


def tables_for(directory: str | Path, deviation: pd.Series | None = None,
               width: int | None = render.WIDTH) -> tuple[pd.DataFrame, str]:
    """The convergence table of a stored sweep and its text for a terminal (split to
    ``width`` columns, with the legend); reads only.

    ``deviation`` (per optimizer, from :func:`reference_deviation`) adds a column.
    """
    store = ResultStore(directory)
    meta = store.meta()
    runs = store.table("runs")
    table = convergence_table(runs, *plans(meta), recorded_hyperparameters(meta, runs),
                              machine(meta), meta.get("stage1"))
    table = add_compile_columns(table, meta["blocks"].values())
    if deviation is not None:
        table["optax_max_deviation"] = table["optimizer"].map(deviation)
    text = markdown(table, width) + caveats_text(table) + "\n\n" + LEGEND
    if deviation is not None:
        text += "\n\nMax relative deviation of the recorded curves from optax, per optimizer:\n"
        text += deviation.rename("max deviation").to_frame().to_markdown(floatfmt=".1e")
    return table, text


def reference_deviation(curves: pd.DataFrame, reference: pd.DataFrame,
                        runs: pd.DataFrame) -> pd.Series:
    """Per optimizer: the max over its runs of ``max_t |f_t - g_t| / max_t |g_t|``, where
    ``f`` is optbench's recorded curve of the run's primary metric (``f_gap`` on a surface,
    e.g. ``valid_accuracy`` on a network) and ``g`` the reference implementation's, over
    the steps where ``g`` is finite. A step where only one of the two is finite, or both are
    non-finite but unequal, counts as an infinite deviation; equal ones (both diverged to
    +inf) as none."""
    both = curves.merge(reference, on=["run_id", "step"], suffixes=("", "_ref"))
    metric = both["run_id"].map(runs.set_index("run_id")["metric"])
    value, value_ref = (pd.Series(np.nan, index=both.index) for _ in range(2))
    for name in metric.dropna().unique():
        rows = metric == name
        value[rows], value_ref[rows] = both.loc[rows, name], both.loc[rows, f"{name}_ref"]
    finite, finite_ref = np.isfinite(value), np.isfinite(value_ref)
    unequal = np.where(value == value_ref, 0.0, np.inf)  # where either is not finite
    both["diff"] = np.where(finite & finite_ref, (value - value_ref).abs(), unequal)
    both["scale"] = value_ref.abs().where(finite_ref, 0.0)
    both = both[finite | finite_ref | (value == value_ref)]
    per_run = both.groupby("run_id")[["diff", "scale"]].max()
    per_run = per_run["diff"] / per_run["scale"].where(per_run["scale"] > 0, 1.0)
    optimizer = runs.set_index("run_id")["optimizer"]
    return per_run.groupby(optimizer.reindex(per_run.index)).max()
