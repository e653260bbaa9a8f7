"""Convergence metrics from the result store: best settings, success, steps to target, ERT.

Everything here is a pure function of stored tables; nothing re-runs.

* The best hyperparameters of an optimizer on a task are those with the lowest **median
  final f - f_min** over seeds and starts (diverged runs count as +inf), or, for a task whose
  metric is maximized (a network's test accuracy), the highest (diverged runs: -inf).
* **Success** at a target: the run reached ``f - f_min <= target`` (a maximized metric:
  ``>= target``) before diverging.
* **ERT** (expected running time, as COCO defines it): the steps spent by all runs — the
  steps to the target for successful runs, the whole budget for the others — divided by the
  number of successful runs; inf when none succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench import render
from optbench.optimizers import hyperparameters as registry_hyperparameters
from optbench.optimizers.schedule import LR_DECAY
from optbench.store import ResultStore, target_column

GROUP = ["task", "optimizer"]
LEGEND = """\
Best setting: per task and optimizer, the hyperparameters with the lowest median final value
over seeds and starts (the highest for a maximized metric such as test accuracy; diverged runs
count as the worst value). Ties go to the lowest share of diverged runs, then the lowest ERT
at the tightest target, then the next; so no other setting is as good on the median and
diverges less. It names every hyperparameter that the sweep varied or set away from the
optimizer's default ("defaults": none).
succ: the share of runs that reached f - f* <= target (a maximized metric: >= target) before
diverging.
ERT (expected running time, COCO): the steps spent by all runs - the steps to the target for
those that reached it, the whole budget for the others - divided by the number that reached
it. It is a ratio, so it can be fractional, and it exceeds the step budget when some runs
fail (1 of 4 runs reaching the target at step 200 of 1000: (200 + 3 x 1000) / 1 = 3200).
"-": no run reached the target."""


Hyperparameters = Mapping[str, Mapping[str, float | None]]  # label -> name -> default


def setting(runs: pd.DataFrame, row: pd.Series, hyperparameters: Mapping[str, float | None]
            ) -> str:
    """The hyperparameters of the setting in ``row`` worth naming, e.g.
    ``learning_rate=0.01, momentum=0.95``: those that take more than one value among its
    optimizer's runs, or that differ from their default (``hyperparameters``: name ->
    default, None if required); "defaults" when there are none."""
    rows = runs[runs["optimizer"] == row["optimizer"]]
    defaults = {**hyperparameters, LR_DECAY: 0.0}
    names = [n for n, default in defaults.items()
             if n in row.index and pd.notna(row[n]) and (
        rows[n].nunique() > 1 or default is None
        or not np.isclose(row[n], default, rtol=1e-12, atol=0))]
    return ", ".join(f"{n}={row[n]:.3g}" for n in names) or "defaults"


def recorded_hyperparameters(meta: Mapping, runs: pd.DataFrame) -> dict:
    """Each optimizer label's hyperparameters and defaults, as its sweep recorded them in
    meta.json, so that reading imports no optimizer code; for a store written before that,
    looked up in the registry by each label's method."""
    if "hyperparameters" in meta:
        return dict(meta["hyperparameters"])
    methods = runs.drop_duplicates("optimizer").set_index("optimizer")["method"]
    return {label: registry_hyperparameters(method) for label, method in methods.items()}


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
    highest where the task's metric is maximized, such as a network's test accuracy).

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


def ert(hit_steps: pd.Series, steps: int) -> float:
    """:func:`ert_by` of one group of runs."""
    return float(ert_by(hit_steps, np.zeros(len(hit_steps), int), steps).iloc[0])


def all_targets(targets: Sequence[float] | PerTask) -> list[float]:
    """Every target of the sweep, largest first (each task's, where they differ)."""
    values = targets.values() if isinstance(targets, Mapping) else [targets]
    return sorted({float(t) for own in values for t in own}, reverse=True)


def convergence_table(runs: pd.DataFrame, targets: Sequence[float] | PerTask,
                      steps: int | PerTask, hyperparameters: Hyperparameters
                      ) -> pd.DataFrame:
    """One row per (task, optimizer) at its best hyperparameters (stated in ``setting``,
    from ``hyperparameters``: :func:`recorded_hyperparameters`), with success, median steps
    and ERT at every target of the sweep: NaN at a target that is not its task's own."""
    chosen = runs.merge(best_configs(runs, targets, steps), on=[*GROUP, "config"])
    wall = runs.groupby(GROUP, sort=False)["wall_time"].sum()
    rows = []
    for (task, optimizer), group in chosen.groupby(GROUP, sort=False):
        final = group["final"]
        row = {
            "task": task,
            "optimizer": optimizer,
            "setting": setting(runs, group.iloc[0], hyperparameters[optimizer]),
            "metric": group["metric"].iloc[0],  # f_gap, or e.g. test_accuracy (maximized)
            "runs": len(group),
            "median_final": final.median(),
            "q25_final": final.quantile(0.25, interpolation="nearest"),
            "q75_final": final.quantile(0.75, interpolation="nearest"),
            "diverged": group["diverged"].mean(),
            "wall_s": wall[(task, optimizer)],  # run time of the whole block
        }
        own = _of(targets, task)
        for target in all_targets(targets):
            hit = group[target_column(target)] if target in own else None
            row[f"success@{target:g}"] = np.nan if hit is None else hit.notna().mean()
            # median steps: NaN also when none succeeded
            row[f"median_steps@{target:g}"] = np.nan if hit is None else hit.median()
            row[f"ert@{target:g}"] = np.nan if hit is None else ert(hit, _of(steps, task))
        rows.append(row)
    return pd.DataFrame(rows)


def table_targets(table: pd.DataFrame) -> list[float]:
    """The targets a convergence table has columns for, largest first."""
    return sorted((float(c.removeprefix("success@")) for c in table
                   if c.startswith("success@")), reverse=True)


def markdown(table: pd.DataFrame, width: int | None = None) -> str:
    """A compact Markdown rendering: median [IQR] final, and success / ERT at up to four
    targets spread over the ladder (the CSV and LaTeX tables have every target). With
    ``width``, a wider table is split into column groups that fit it."""
    table = compact(table)
    if width is not None:
        return render.markdown_split(table, GROUP, width)
    return table.to_markdown(index=False)


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """The convergence table as strings: median [IQR] final, and success / ERT at up to four
    targets spread over the ladder (Markdown and the report's page show this); blank at a
    target that is not the row's task's."""
    targets = table_targets(table)
    picks = sorted({round(i) for i in np.linspace(0, len(targets) - 1, min(4, len(targets)))})
    targets = [targets[i] for i in picks]
    metric = table["metric"].replace({"f_gap": "f-f*"})
    surfaces_only = bool((metric == "f-f*").all())  # else say each row's metric
    return pd.DataFrame({
        "task": table["task"],
        "optimizer": table["optimizer"],
        "best setting": table["setting"],
        **({} if surfaces_only else {"metric": metric}),
        f"final {'f-f* ' if surfaces_only else ''}median [IQR]": [
            f"{m:.2e} [{a:.1e}, {b:.1e}]" for m, a, b in
            zip(table["median_final"], table["q25_final"], table["q75_final"], strict=True)],
        **{f"{t:g}: succ / ERT": ["" if np.isnan(s) else f"{s:.0%} / {_ert(e)}" for s, e in
                                  zip(table[f"success@{t:g}"], table[f"ert@{t:g}"],
                                      strict=True)]
           for t in targets},
        "diverged": [f"{d:.0%}" for d in table["diverged"]],
        "run s": [f"{w:.3f}" for w in table["wall_s"]],
        "compile s": [f"{c:.2f}" for c in table["compile_s"]],
    })


def _ert(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{value:.4g}"


Save = Callable[[str, Callable[[Path], Any]], None]  # (file name, writer of a path)


def write_tables(table: pd.DataFrame, save: Save) -> None:
    """Write ``convergence.{md,csv,tex}`` with ``save`` (e.g. :meth:`ResultStore.write`)."""
    text = markdown(table) + "\n\n" + LEGEND + "\n"
    save("convergence.md", lambda tmp: tmp.write_text(text))
    save("convergence.csv", lambda tmp: table.to_csv(tmp, index=False))
    save("convergence.tex", lambda tmp: tmp.write_text(
        table.to_latex(index=False, float_format="%.3g", escape=True)))


def compile_column(table: pd.DataFrame, blocks: Iterable[Mapping]) -> list[float]:
    """Each row's block compile seconds, from the blocks' timing records (``task``,
    ``optimizer``, ``compile_seconds``); nan where a block has none (a rebuilt meta.json)."""
    seconds = {(b.get("task"), b.get("optimizer")): b.get("compile_seconds", np.nan)
               for b in blocks}
    return [seconds.get(key, np.nan)
            for key in zip(table["task"], table["optimizer"], strict=True)]


def tables_for(directory: str | Path, deviation: pd.Series | None = None,
               width: int | None = render.WIDTH) -> tuple[pd.DataFrame, str]:
    """The convergence table of a stored sweep and its text for a terminal (split to
    ``width`` columns, with the legend); reads only.

    ``deviation`` (per optimizer, from :func:`reference_deviation`) adds a column.
    """
    store = ResultStore(directory)
    meta = store.meta()
    runs = store.table("runs")
    table = convergence_table(runs, *plans(meta), recorded_hyperparameters(meta, runs))
    table["compile_s"] = compile_column(table, meta["blocks"].values())
    if deviation is not None:
        table["optax_max_deviation"] = table["optimizer"].map(deviation)
    text = markdown(table, width) + "\n\n" + LEGEND
    if deviation is not None:
        text += "\n\nMax relative deviation of the recorded curves from optax, per optimizer:\n"
        text += deviation.rename("max deviation").to_frame().to_markdown(floatfmt=".1e")
    return table, text


def reference_deviation(curves: pd.DataFrame, reference: pd.DataFrame,
                        runs: pd.DataFrame) -> pd.Series:
    """Per optimizer: the max over its runs of ``max_t |f_t - g_t| / max_t |g_t|``, where
    ``f`` is optbench's recorded curve of the run's primary metric (``f_gap`` on a surface,
    e.g. ``test_accuracy`` on a network) and ``g`` the reference implementation's. A step
    where only one of the two is finite counts as an infinite deviation."""
    both = curves.merge(reference, on=["run_id", "step"], suffixes=("", "_ref"))
    metric = both["run_id"].map(runs.set_index("run_id")["metric"])
    value, value_ref = (pd.Series(np.nan, index=both.index) for _ in range(2))
    for name in metric.dropna().unique():
        rows = metric == name
        value[rows], value_ref[rows] = both.loc[rows, name], both.loc[rows, f"{name}_ref"]
    finite, finite_ref = np.isfinite(value), np.isfinite(value_ref)
    both["diff"] = np.where(finite != finite_ref, np.inf, (value - value_ref).abs())
    both["scale"] = value_ref.abs()
    both = both[finite | finite_ref]
    per_run = both.groupby("run_id")[["diff", "scale"]].max()
    per_run = per_run["diff"] / per_run["scale"].where(per_run["scale"] > 0, 1.0)
    optimizer = runs.set_index("run_id")["optimizer"]
    return per_run.groupby(optimizer.reindex(per_run.index)).max()
