"""Two-stage tuning, as DeepOBS does it: a grid of hyperparameters on a few seeds (stage 1,
an ordinary sweep), then each optimizer's best setting on each task rerun on fresh seeds
(stage 2), so that optimizers are compared at their own best, with the seed noise of that
best measured on seeds that did not pick it.

:func:`rerun_best` turns a finished stage-1 results folder into the stage-2 config: the
same tasks, optimizers and settings, each task's table fixing every optimizer's grid to its
best setting there (``grids``, as the convergence table picks it), and ``seeds`` seeds that
stage 1 did not run (:func:`fresh_seeds`). :func:`stage_1` is what stage 2 records of its
stage 1 in its ``meta.json`` (``meta["stage1"]``): where it is, its config hash, its search
budget and what the search says of each chosen setting (expected bests, a value on the edge
of those tried); the report states the protocol from it, and stage 2's table shows the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench.analysis import best_configs, plans, recorded_hyperparameters, tables_for
from optbench.errors import OptbenchError
from optbench.store import ResultStore
from optbench.validate import ConfigError

DEFAULT_SEEDS = 10  # DeepOBS reruns each best setting on 10 seeds
SUFFIX = "-best"  # stage 2's folder and sweep name: stage 1's with this suffix


class NotFinished(OptbenchError, ValueError):
    """The stage-1 folder does not hold a finished sweep."""


class NotStage1(OptbenchError, ValueError):
    """The folder holds a stage-2 sweep: its settings were chosen by another's seeds."""


def fresh_seeds(used: Iterable[int], n: int) -> list[int]:
    """The ``n`` smallest non-negative seeds not in ``used``: stage 2's seeds, disjoint from
    stage 1's, so that its runs are new draws rather than stage 1's runs again."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError("seeds", n, "an integer >= 1", source="--best-of")
    taken = set(used)
    return [s for s in range(n + len(taken)) if s not in taken][:n]


def stage_2_folder(directory: str | Path) -> Path:
    """Stage 2's default folder: ``<stage 1's folder>-best``, beside it."""
    folder = Path(directory).resolve()
    return folder.with_name(folder.name + SUFFIX)


def finished_sweep(directory: str | Path) -> tuple[dict, pd.DataFrame]:
    """The meta and runs of the finished sweep in ``directory``; a one-line error for a
    folder without one, one a sweep is still writing, or one with blocks missing."""
    store = ResultStore(directory)
    meta = store.meta()
    writing = store.partial_warning()
    if writing:
        raise NotFinished(f"--best-of: {writing}; wait for it to finish")
    planned = store.planned_blocks()
    done = sum(map(store.is_done, planned))
    if "finished" not in meta or done < len(planned):
        raise NotFinished(f"--best-of: {store.directory} holds an unfinished sweep ({done} of "
                          f"{len(planned)} blocks); run its config again to finish it")
    return meta, store.table("runs")


def rerun_best(directory: str | Path, seeds: int = DEFAULT_SEEDS) -> dict[str, Any]:
    """The stage-2 config (a dict, as ``optbench.sweep`` and ``config.parse`` take it) of
    the finished stage-1 sweep stored in ``directory``, on ``seeds`` fresh seeds."""
    meta, runs = finished_sweep(directory)
    if "stage1" in meta:  # its best is stage 1's, and "fresh" seeds must avoid stage 1's too
        raise NotStage1(f"--best-of: {directory} holds stage 2 of {meta['stage1']['directory']}"
                        ", whose seeds chose its settings; run --best-of on that folder "
                        "(--seeds N for more seeds, --out or --force for a new stage 2)")
    config = meta["config"]
    best = runs.merge(best_configs(runs, *plans(meta)), on=["task", "optimizer", "config"])
    grids: dict[str, dict[str, dict[str, float]]] = {}
    for _, row in best.drop_duplicates(["task", "optimizer"]).iterrows():
        table = config["optimizers"][row["optimizer"]]
        tuned = [name for name in table if name in row.index and pd.notna(row[name])
                 and not isinstance(table[name], bool | str)]  # every value that ran
        grids.setdefault(row["task"], {})[row["optimizer"]] = {
            name: float(row[name]) for name in tuned}
    optimizers = {label: _without_search(table, next(
        g[label] for g in grids.values() if label in g))
        for label, table in config["optimizers"].items()
        if any(label in g for g in grids.values())}
    tasks = [{**t, "grids": grids[t["name"]], "optimizers": list(grids[t["name"]])}
             for t in config["tasks"] if t["name"] in grids]
    return {**config, "name": config["name"] + SUFFIX, "tasks": tasks,
            "optimizers": optimizers, "seeds": fresh_seeds(config["seeds"], seeds)}


def _without_search(table: dict[str, Any], values: dict[str, float]) -> dict[str, Any]:
    """An optimizer's stage-1 table for stage 2, where every task fixes each value that ran
    (a task may have searched its own range): a search becomes one of the chosen settings
    (overridden on every task), so no task's value is checked against another's range."""
    if "search" not in table:
        return table
    return {name: [values[name]] if isinstance(value, dict) else value
            for name, value in table.items() if name not in ("search", "trials", "search_seed")}


def stage_1(directory: str | Path) -> dict[str, Any]:
    """What stage 2 records of the finished stage-1 sweep in ``directory``: the folder, its
    config hash and seeds, the primary metric it tuned each task on, and its search budget:
    the settings tried per (task, optimizer) and the runs (seeds x starts) per setting."""
    meta, runs = finished_sweep(directory)
    per_setting = runs.groupby(["task", "optimizer", "config"]).size()
    trials: dict[str, dict[str, int]] = {}
    for (task, optimizer), n in runs.groupby(["task", "optimizer"])["config"].nunique().items():
        trials.setdefault(task, {})[optimizer] = int(n)
    return {
        "directory": str(Path(directory).resolve()),
        "config_hash": meta["config_hash"],
        "seeds": list(meta["config"]["seeds"]),
        "metrics": _by_task(runs.groupby("task")["metric"].first()),
        "trials": trials,
        "starts": _by_task(runs.groupby("task")["start"].nunique()),
        "runs_per_trial": _by_task(per_setting.groupby(level="task").max()),
        "chosen": _searched(directory, meta, runs),
    }


def _searched(directory: str | Path, meta: dict, runs: pd.DataFrame) -> dict[str, Any]:
    """Per task and optimizer, what stage 1's search says of the setting it chose, which
    stage 2 (one setting each) cannot: its tuning-budget columns
    (:data:`optbench.aggregate.TUNING_COLUMNS`) and its caveats of a value on the edge of
    the values tried (:func:`optbench.caveats.on_the_edge`)."""
    from optbench.aggregate import EXPECTED_BEST
    from optbench.caveats import on_the_edge

    table, _ = tables_for(directory)
    defaults = recorded_hyperparameters(meta, runs)
    out: dict[str, Any] = {}
    for _, row in table.iterrows():
        mine = runs[(runs["task"] == row["task"]) & (runs["optimizer"] == row["optimizer"])]
        picked = mine[mine["config"] == row["config"]].iloc[0]
        out.setdefault(row["task"], {})[row["optimizer"]] = {
            "settings_tried": int(row["settings_tried"]),
            # JSON holds no inf (every setting diverged): "inf", which float() reads back
            **{c: v if np.isfinite(v := float(row[c])) else str(v) for c in EXPECTED_BEST},
            "edges": on_the_edge(mine, picked, defaults[row["optimizer"]])}
    return out


def _by_task(series: pd.Series) -> dict[str, Any]:
    """A Series as a plain dict for JSON (numpy integers as ints)."""
    return {str(k): v.item() if hasattr(v, "item") else v for k, v in series.items()}
