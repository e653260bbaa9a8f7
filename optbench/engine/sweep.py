"""A whole sweep: config -> one compiled block per (optimizer, task) -> the result store.

Under ``jax.distributed`` (several processes, see :mod:`optbench.engine.distributed`) every
process runs the same blocks, each on its shard of the run axis, and only process 0 writes.
"""

from __future__ import annotations

import itertools
import platform
import subprocess
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from optbench import optimizers
from optbench.config import OptimizerConfig, SweepConfig, parse
from optbench.engine.bundle import RULE, Rule, bundle
from optbench.engine.run import (
    PROGRAMS,
    BlockResult,
    RunSettings,
    parameter_count,
    run_block,
    use_compilation_cache,
)
from optbench.errors import OptbenchError
from optbench.optimizers import OptimizerSpec, PureOptimizer
from optbench.optimizers.reference import optax_pure
from optbench.store import ResultStore, block_key, target_column
from optbench.tasks import registry
from optbench.tasks.base import Task

MAX_OPTIMIZER_STEPS = 10**12  # above this a sweep needs an explicit yes
BUNDLE_MAX_PARAMETERS = 100_000  # larger tasks run each rule alone (its state only)


class SweepTooLarge(OptbenchError, ValueError):
    """The sweep would run more optimizer steps than is sensible without confirmation."""


def settings_of(config: SweepConfig) -> RunSettings:
    return RunSettings(steps=config.steps, record_every=config.record_every,
                       targets=config.targets, divergence_threshold=config.divergence_threshold,
                       float64=config.float64, max_records=config.max_records)


@dataclass(frozen=True)
class Grid:
    """The flattened runs of a block: hyperparameter combination x seed x start."""

    hparams: dict[str, np.ndarray]
    config_index: np.ndarray  # which hyperparameter combination
    seeds: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return len(self.seeds)


def make_grid(optimizer: OptimizerConfig, seeds: tuple[int, ...], n_starts: int) -> Grid:
    names = list(optimizer.grid)
    combos = list(itertools.product(*(optimizer.grid[n] for n in names)))
    rows = list(itertools.product(range(len(combos)), seeds, range(n_starts)))
    index, seed, start = (np.asarray(col) for col in zip(*rows, strict=True))
    hparams = {n: np.asarray([combos[i][k] for i in index]) for k, n in enumerate(names)}
    return Grid(hparams, index, seed, start)


def block_frames(result: BlockResult, grid: Grid, optimizer: OptimizerConfig, task: Task,
                 settings: RunSettings) -> dict[str, pd.DataFrame | None]:
    """The tidy tables of one block: runs, curves and (small flat parameters) trajectories."""
    out = result.outcome
    n = len(grid)
    run_id = [f"{optimizer.label}/{task.name}/{i}" for i in range(n)]
    others = {f"final_{name}": values[:, -1].astype(float)
              for name, values in out.metrics.items() if name != task.metric}
    runs = pd.DataFrame({
        "run_id": run_id,
        "optimizer": optimizer.label,
        "method": optimizer.optimizer,
        **task.describe(),
        "config": grid.config_index,
        "seed": grid.seeds,
        "start": grid.starts,
        **grid.hparams,
        "metric": task.metric,
        "maximize": task.maximize,
        # a diverged run has no meaningful final value: +-inf ranks it last
        "final": np.where(out.diverged, -np.inf if task.maximize else np.inf,
                          out.final).astype(float),
        "best": out.best.astype(float),
        **{target_column(t): np.where(out.hit_step[:, k] >= 0, out.hit_step[:, k], np.nan)
           for k, t in enumerate(settings.targets)},
        "diverged": out.diverged,
        "divergence_step": np.where(out.diverged, out.divergence_step, np.nan),
        **others,
        "wall_time": result.run_seconds / n,
    })
    steps = settings.recorded_steps
    curves = pd.DataFrame({
        "run_id": np.repeat(run_id, len(steps)),
        "step": np.tile(steps, n),
        **{name: values.reshape(-1).astype(float) for name, values in out.metrics.items()},
    })
    trajectories = None
    if out.trajectory.shape[-1]:
        flat = out.trajectory.reshape(-1, out.trajectory.shape[-1]).astype(float)
        trajectories = pd.DataFrame({
            "run_id": np.repeat(run_id, len(steps)),
            "step": np.tile(steps, n),
            **{f"x{d}": flat[:, d] for d in range(flat.shape[1])},
        })
    return {"runs": runs, "curves": curves, "trajectories": trajectories}


def run_sweep(
    config: SweepConfig | Mapping,
    directory: str | Path | None = None,
    *,
    results_root: str | Path = "results",
    force: bool = False,
    yes: bool = False,
    quiet: bool = False,
    reference: str | None = None,
    compile_cache: bool | str | None = None,
) -> Path:
    """Run ``config`` into ``directory`` (default ``results/<name>``), resuming finished blocks.

    ``reference="optax"`` runs optax's implementations instead of optbench's (the store then
    holds the reference results; see :func:`optbench.analysis.reference_deviation`).
    ``compile_cache`` overrides the config's (see
    :func:`optbench.engine.run.use_compilation_cache`).
    """
    if not isinstance(config, SweepConfig):
        config = parse(config)
    total = config.optimizer_steps()
    if total > MAX_OPTIMIZER_STEPS and not yes:
        raise SweepTooLarge(f"the sweep would run {total:.3g} optimizer steps (more than "
                            f"{MAX_OPTIMIZER_STEPS:.0e}); pass --yes (yes=True) to run it")
    use_compilation_cache(config.compile_cache if compile_cache is None else compile_cache)
    directory = Path(directory) if directory else Path(results_root) / config.name
    devices = jax.devices()
    writer = jax.process_index() == 0
    settings = settings_of(config)
    tasks = registry.build(config.tasks)
    _warn_unresolvable_targets(config, tasks)
    blocks = [(o, t) for t in tasks for o in config.optimizers]
    keys = [block_key(o.label, t.name) for o, t in blocks]
    rules = Rules.of([optimizers.get(o.optimizer) for o in config.optimizers], reference)
    store = None
    if writer:
        store = ResultStore.open(directory, config, force=force, meta={
            **_versions(), "device_kind": devices[0].device_kind, "device_count": len(devices),
            "process_count": jax.process_count(), "git_commit": _git_commit(),
            "reference": reference, "started": _now()})
    compiled_before = PROGRAMS.compiled
    done = _agree([store.is_done(key) for key in keys] if writer else [False] * len(keys))
    todo = [b for b, finished in zip(blocks, done, strict=True) if not finished]
    steps = sum(len(make_grid(o, config.seeds, t.n_starts)) for o, t in todo) * config.steps
    with tqdm(total=steps, desc=config.name, unit="step", unit_scale=True,
              disable=quiet or not writer) as bar:
        for (optimizer, task), key, finished in zip(blocks, keys, done, strict=True):
            if finished:
                continue
            bar.set_postfix_str(f"{optimizer.label} on {task.name}")
            spec = optimizers.get(optimizer.optimizer)
            grid = make_grid(optimizer, config.seeds, task.n_starts)
            rule, hparams = rules.select(spec, grid.hparams, task)
            result = run_block(rule, spec.gradient, task, settings, hparams, grid.seeds,
                               grid.starts, config.max_memory_mb, devices, progress=bar.update)
            if store is not None:
                store.write_block(key, block_frames(result, grid, optimizer, task, settings), {
                    "optimizer": optimizer.label, "task": task.name, "runs": len(grid),
                    "compile_seconds": result.compile_seconds,
                    "program_reused": result.program_reused,
                    "run_seconds": result.run_seconds, "chunk_size": result.chunk_size,
                    "optimizer_steps": len(grid) * config.steps})
    if store is not None:
        # programs this process compiled (or loaded from the persistent cache) for the sweep
        store.finalize(keys, {"finished": _now(),
                              "programs_compiled": PROGRAMS.compiled - compiled_before},
                       csv=config.csv)
    return directory


@dataclass(frozen=True)
class Rules:
    """The update rules of a sweep's optimizers, bundled into one (see
    :mod:`optbench.engine.bundle`) where the task's parameters are small enough that carrying
    every rule's state costs little, so that its blocks share one compiled program."""

    rule_of: dict[str, Rule]  # registry name -> its rule (optbench's or optax's) and names
    defaults: dict[str, float]  # every rule's hyperparameters, for the rules not running

    @classmethod
    def of(cls, specs: list[OptimizerSpec], reference: str | None = None) -> Rules:
        defaults = {}
        for spec in reversed(specs):
            defaults.update(spec.defaults)
        return cls({s.name: (optax_pure(s) if reference == "optax" else s.pure,
                             tuple(s.defaults)) for s in specs}, defaults)

    def select(self, spec: OptimizerSpec, hparams: dict[str, np.ndarray], task: Task
               ) -> tuple[PureOptimizer, dict[str, np.ndarray]]:
        """The rule to run ``spec``'s block with, and its hyperparameters."""
        rules = tuple(dict.fromkeys(self.rule_of.values()))
        rule = self.rule_of[spec.name]
        if len(rules) == 1 or parameter_count(task) > BUNDLE_MAX_PARAMETERS:
            return rule[0], hparams
        n = len(next(iter(hparams.values())))
        return bundle(rules), {**{k: np.full(n, v) for k, v in self.defaults.items()},
                               **hparams, RULE: np.full(n, rules.index(rule))}


def _agree(done: list[bool]) -> list[bool]:
    """Process 0's view of which blocks are finished, shared with every process."""
    if jax.process_count() == 1:
        return done
    return [bool(v) for v in multihost_utils.broadcast_one_to_all(np.asarray(done, bool))]


def _warn_unresolvable_targets(config: SweepConfig, tasks: list[Task]) -> None:
    """In float32, f - f_min below about eps * |f_min| is rounding, not progress."""
    if config.float64:
        return
    for task in tasks:
        if getattr(task, "f_min", None) is None:
            continue
        resolution = float(np.finfo(np.float32).eps) * abs(task.f_min)
        lost = [t for t in config.targets if t < resolution]
        if lost:
            warnings.warn(f"{task.name}: in float32, f - f_min is resolved only to about "
                          f"{resolution:.1e}; targets {', '.join(f'{t:g}' for t in lost)} "
                          "measure rounding (set float64 = true)", stacklevel=3)


def _versions() -> dict[str, str]:
    return {name: version(name) for name in ("optbench", "jax", "optax")} | {
        "python": platform.python_version()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def run_reference(directory: str | Path, quiet: bool = False) -> Path:
    """Re-run a stored sweep with optax's implementations into ``<directory>/reference-optax``."""
    config = parse(ResultStore(directory).meta()["config"])
    return run_sweep(config, Path(directory) / "reference-optax", quiet=quiet, yes=True,
                     reference="optax")
