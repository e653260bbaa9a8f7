"""A whole sweep: config -> one compiled block per (optimizer, task) -> the result store."""

from __future__ import annotations

import itertools
import platform
import subprocess
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jax
import numpy as np
import optax
import pandas as pd
from tqdm.auto import tqdm

import landscapes
import optbench
from optbench import optimizers
from optbench.config import OptimizerConfig, SweepConfig, TaskConfig, parse
from optbench.engine.run import BlockResult, RunSettings, run_block
from optbench.errors import OptbenchError
from optbench.optimizers.reference import optax_pure
from optbench.store import ResultStore, block_key, target_column
from optbench.tasks import SurfaceTask

MAX_OPTIMIZER_STEPS = 10**12  # above this a sweep needs an explicit yes


class SweepTooLarge(OptbenchError, ValueError):
    """The sweep would run more optimizer steps than is sensible without confirmation."""


def make_task(config: TaskConfig) -> SurfaceTask:
    surface = landscapes.get(config.landscape, config.dim, **config.params)
    starts = None if config.start == "random" else np.asarray(
        [surface.start] if config.start == "default" else config.start, float)
    return SurfaceTask(surface, starts=starts, n_random_starts=config.starts,
                       noise=config.noise, batch_size=config.batch_size, label=config.name)


def settings_of(config: SweepConfig) -> RunSettings:
    return RunSettings(steps=config.steps, record_every=config.record_every,
                       targets=config.targets,
                       divergence_threshold=config.divergence_threshold,
                       float64=config.float64)


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


def block_frames(result: BlockResult, grid: Grid, optimizer: OptimizerConfig,
                 task: SurfaceTask, settings: RunSettings) -> dict[str, pd.DataFrame | None]:
    """The tidy tables of one block: runs, curves and (low-dimensional tasks) trajectories."""
    out = result.outcome
    n = len(grid)
    run_id = [f"{optimizer.label}/{task.name}/{i}" for i in range(n)]
    runs = pd.DataFrame({
        "run_id": run_id,
        "optimizer": optimizer.label,
        "method": optimizer.optimizer,
        **task.describe(),
        "config": grid.config_index,
        "seed": grid.seeds,
        "start": grid.starts,
        **grid.hparams,
        # a diverged run has no meaningful final value: inf ranks it last
        "final": np.where(out.diverged, np.inf, out.final).astype(float),
        "best": out.best.astype(float),
        **{target_column(t): np.where(out.hit_step[:, k] >= 0, out.hit_step[:, k], np.nan)
           for k, t in enumerate(settings.targets)},
        "diverged": out.diverged,
        "divergence_step": np.where(out.diverged, out.divergence_step, np.nan),
        "wall_time": result.run_seconds / n,
    })
    steps = settings.recorded_steps
    curves = pd.DataFrame({
        "run_id": np.repeat(run_id, len(steps)),
        "step": np.tile(steps, n),
        "f_gap": out.curve.reshape(-1).astype(float),
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
) -> Path:
    """Run ``config`` into ``directory`` (default ``results/<name>``), resuming finished blocks.

    ``reference="optax"`` runs optax's implementations instead of optbench's (the store then
    holds the reference results; see :func:`optbench.analysis.reference_deviation`).
    """
    if not isinstance(config, SweepConfig):
        config = parse(config)
    total = config.optimizer_steps()
    if total > MAX_OPTIMIZER_STEPS and not yes:
        raise SweepTooLarge(f"the sweep would run {total:.3g} optimizer steps (more than "
                            f"{MAX_OPTIMIZER_STEPS:.0e}); pass --yes (yes=True) to run it")
    directory = Path(directory) if directory else Path(results_root) / config.name
    devices = jax.devices()
    store = ResultStore.open(directory, config, force=force, meta={
        "optbench": optbench.__version__, "jax": jax.__version__, "optax": optax.__version__,
        "python": platform.python_version(), "device_kind": devices[0].device_kind,
        "device_count": len(devices), "git_commit": _git_commit(), "reference": reference,
        "started": _now()})
    settings = settings_of(config)
    tasks = [make_task(t) for t in config.tasks]
    _warn_unresolvable_targets(config, tasks)
    blocks = [(o, t) for t in tasks for o in config.optimizers]
    keys = [block_key(o.label, t.name) for o, t in blocks]
    with tqdm(total=len(blocks), desc=config.name, unit="block", disable=quiet) as bar:
        for (optimizer, task), key in zip(blocks, keys, strict=True):
            bar.set_postfix_str(f"{optimizer.label} on {task.name}")
            if not store.is_done(key):
                spec = optimizers.get(optimizer.optimizer)
                pure = optax_pure(spec) if reference == "optax" else spec.pure
                grid = make_grid(optimizer, config.seeds, task.n_starts)
                result = run_block(pure, spec.gradient, task, settings, grid.hparams,
                                   grid.seeds, grid.starts, config.max_memory_mb, devices)
                store.write_block(key, block_frames(result, grid, optimizer, task, settings), {
                    "optimizer": optimizer.label, "task": task.name, "runs": len(grid),
                    "compile_seconds": result.compile_seconds,
                    "run_seconds": result.run_seconds, "chunk_size": result.chunk_size,
                    "optimizer_steps": len(grid) * config.steps})
            bar.update()
    store.finalize(keys, {"finished": _now()})
    return directory


def _warn_unresolvable_targets(config: SweepConfig, tasks: list[SurfaceTask]) -> None:
    """In float32, f - f_min below about eps * |f_min| is rounding, not progress."""
    if config.float64:
        return
    for task in tasks:
        resolution = float(np.finfo(np.float32).eps) * abs(task.f_min)
        lost = [t for t in config.targets if t < resolution]
        if lost:
            warnings.warn(f"{task.name}: in float32, f - f_min is resolved only to about "
                          f"{resolution:.1e}; targets {', '.join(f'{t:g}' for t in lost)} "
                          "measure rounding (set float64 = true)", stacklevel=3)


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
