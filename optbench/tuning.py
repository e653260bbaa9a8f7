"""Two-stage tuning, as DeepOBS does it: a grid of hyperparameters on a few seeds (stage 1,
an ordinary sweep), then each optimizer's best setting on each task rerun on more seeds
(stage 2), so that optimizers are compared at their own best, with the seed noise of that
best measured.

:func:`rerun_best` turns a finished stage-1 results folder into the stage-2 config: the
same tasks, optimizers and settings, each task's table fixing every optimizer's grid to its
best setting there (``grids``, as the convergence table picks it), and ``seeds`` seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbench.analysis import best_configs, plans
from optbench.store import ResultStore


def rerun_best(directory: str | Path, seeds: int = 5) -> dict[str, Any]:
    """The stage-2 config (a dict, as ``optbench.sweep`` and ``config.parse`` take it) of
    the stage-1 sweep stored in ``directory``."""
    store = ResultStore(directory)
    meta = store.meta()
    config, runs = meta["config"], store.table("runs")
    best = runs.merge(best_configs(runs, *plans(meta)), on=["task", "optimizer", "config"])
    grids: dict[str, dict[str, dict[str, float]]] = {}
    for _, row in best.drop_duplicates(["task", "optimizer"]).iterrows():
        swept = [name for name, value in config["optimizers"][row["optimizer"]].items()
                 if isinstance(value, list | dict)]  # grids, distributions; not options
        grids.setdefault(row["task"], {})[row["optimizer"]] = {
            name: float(row[name]) for name in swept}
    tasks = [{**t, "grids": grids[t["name"]], "optimizers": list(grids[t["name"]])}
             for t in config["tasks"] if t["name"] in grids]
    return {**config, "name": f"{config['name']}-best", "seeds": seeds, "tasks": tasks}
