"""What a report reads from a results folder: the finished blocks' tables and meta.json.

Blocks are read one by one (not the sweep's combined tables), so that the report of a killed
or partial sweep shows what exists and lists what is missing.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from optbench.analysis import (
    all_targets,
    best_configs,
    convergence_table,
    machine,
    plans,
    recorded_hyperparameters,
)
from optbench.errors import OptbenchError
from optbench.store import REFERENCE, ResultStore

if TYPE_CHECKING:
    from optbench import landscapes


class NotResults(OptbenchError, ValueError):
    """The folder is not an optbench results folder."""


@dataclass
class ReportData:
    """The tables of one sweep, as the report's figures need them."""

    directory: Path
    meta: dict
    runs: pd.DataFrame  # one row per run (finished blocks only)
    curves: pd.DataFrame  # run_id, step, one column per recorded metric
    trajectories: pd.DataFrame | None  # run_id, step, x0..x{d-1} (tasks with dim <= 3)
    missing_blocks: list[str]  # (optimizer, task) blocks of the config not in the store
    timings: dict[str, dict]  # block key -> timing.json
    best: pd.DataFrame = field(init=False)  # task, optimizer, config at the best setting
    reference_curves: pd.DataFrame | None = None  # optax re-run (optbench table --reference)
    partial: str | None = None  # set while a sweep is writing the folder (ResultStore)
    _best_runs: pd.DataFrame | None = field(default=None, init=False, repr=False)
    _convergence: pd.DataFrame | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.best = (best_configs(self.runs, *self.plans) if len(self.runs)
                     else pd.DataFrame(columns=["task", "optimizer", "config"]))

    @property
    def config(self) -> dict:
        return self.meta["config"]

    @functools.cached_property
    def plans(self) -> tuple[dict[str, list[float]], dict[str, int]]:
        """Each task's targets and step budget (:func:`optbench.analysis.plans`), from the
        finished blocks' own records too: a sweep still writing (or killed) has listed none
        in meta.json yet."""
        return plans({**self.meta, "blocks": {**self.timings, **self.meta["blocks"]}})

    @property
    def targets(self) -> list[float]:
        """Every target of the sweep, largest first (the tasks' own, where they set them)."""
        return all_targets(self.plans[0]) or list(self.config["targets"])

    @property
    def steps(self) -> int:
        """The largest step budget of the finished blocks (the sweep's, if none)."""
        return max(self.plans[1].values(), default=int(self.config["steps"]))

    @property
    def optimizers(self) -> list[str]:
        """Optimizer labels in the config's order."""
        return list(self.config["optimizers"])

    @property
    def tasks(self) -> list[str]:
        """Task names (with results) in the config's order."""
        present = set(self.runs["task"])
        return [t["name"] for t in self.config["tasks"] if t.get("name") in present]

    @functools.cached_property
    def hyperparameters(self) -> dict:
        """Each optimizer's hyperparameters and defaults, from the store (reading imports
        no optimizer code; :func:`optbench.analysis.recorded_hyperparameters`)."""
        return recorded_hyperparameters(self.meta, self.runs)

    def task_config(self, task: str) -> dict:
        return next(t for t in self.config["tasks"] if t.get("name") == task)

    @property
    def convergence(self) -> pd.DataFrame:
        """The convergence table (:func:`optbench.analysis.convergence_table`), computed once."""
        if self._convergence is None:
            self._convergence = convergence_table(self.runs, *self.plans,
                                                  self.hyperparameters, machine(self.meta),
                                                  self.meta.get("stage1"))
        return self._convergence

    def best_runs(self) -> pd.DataFrame:
        """The runs at each (task, optimizer)'s best setting (computed once; don't modify)."""
        if self._best_runs is None:
            self._best_runs = self.runs.merge(self.best, on=["task", "optimizer", "config"])
        return self._best_runs

    def surface(self, task: str) -> landscapes.Landscape | None:
        """The landscape of a surface task, rebuilt from its config; None for other tasks."""
        spec = self.task_config(task)
        if spec.get("kind") != "surface":
            return None
        from optbench import landscapes  # JAX: only where a surface is drawn

        return landscapes.get(spec["landscape"], spec["dim"], **spec.get("params", {}))


def read_meta(directory: str | Path) -> tuple[ResultStore, dict, list[str]]:
    """A results folder's store, meta.json and planned blocks; :class:`NotResults` if it
    holds no sweep."""
    directory = Path(directory)
    store = ResultStore(directory)
    if not store.meta_path.is_file():
        raise NotResults(f"{directory} is not an optbench results folder (no meta.json); "
                         "give the folder a sweep wrote, e.g. results/default")
    try:
        meta = store.meta()
        if not isinstance(meta["config"], dict):
            raise TypeError("its config is not a table")
        keys = store.planned_blocks()
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise NotResults(f"{directory}/meta.json is not an optbench sweep's meta "
                         f"({error!r})") from None
    return store, meta, keys


def load(directory: str | Path) -> ReportData:
    """Read a results folder; :class:`NotResults` if it holds no sweep."""
    directory = Path(directory)
    store, meta, keys = read_meta(directory)
    done = [k for k in keys if store.is_done(k)]
    tables = {name: _concat([store.read_block(k, name) for k in done])
              for name in ("runs", "curves", "trajectories")}
    runs = tables["runs"] if tables["runs"] is not None else pd.DataFrame(
        columns=["run_id", "task", "optimizer", "config", "final", "best", "diverged"])
    curves = tables["curves"] if tables["curves"] is not None else pd.DataFrame(
        columns=["run_id", "step"])
    timings = {k: _timing(store.block_dir(k)) for k in done}
    data = ReportData(directory, meta, runs, curves, tables["trajectories"],
                      [k for k in keys if k not in done], timings)
    data.partial = store.partial_warning()
    reference = ResultStore(directory / REFERENCE)
    if (reference.directory / "curves.parquet").is_file():
        data.reference_curves = reference.table("curves")
    return data


def _concat(parts: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    parts = [p for p in parts if p is not None]
    return pd.concat(parts, ignore_index=True) if parts else None


def _timing(folder: Path) -> dict:
    path = folder / "timing.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def quartiles(frame: pd.DataFrame, by: list[str], column: str) -> pd.DataFrame:
    """Median and inter-quartile range of ``column`` per group (columns q25, median, q75).
    Infinite values (diverged runs) count, so a group that mostly diverged has an infinite
    median rather than a flattering one."""
    grouped = frame.groupby(by, sort=False)[column]
    return pd.DataFrame({
        "q25": grouped.quantile(0.25, interpolation="nearest"),  # as the convergence table's
        "median": grouped.median(),
        "q75": grouped.quantile(0.75, interpolation="nearest"),
    }).reset_index()

