"""A whole sweep: config -> one compiled block per (optimizer, task) -> the result store.

Under ``jax.distributed`` (several processes, see :mod:`optbench.engine.distributed`) every
process runs the same blocks, each on its shard of the run axis, and only process 0 writes.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from optbench import landscapes
from optbench.analysis import best_configs
from optbench.config import DEFAULT_TARGETS, OptimizerConfig, SweepConfig, parse
from optbench.engine import params as kept
from optbench.engine.bundle import Rules
from optbench.engine.run import (
    PROGRAMS,
    BlockResult,
    RunAxis,
    RunSettings,
    cast_floats,
    check_data_fits,
    compiler_options,
    parameter_count,
    run_block,
    use_compilation_cache,
)
from optbench.errors import Interrupted, OptbenchError
from optbench.optimizers import PureOptimizer, hyperparameters
from optbench.optimizers.schedule import LR_DECAY, decayed
from optbench.store import (
    REFERENCE,
    REPORT,
    SECONDS_PER_STEP,
    ResultStore,
    block_key,
    target_column,
    with_seconds,
)
from optbench.tasks import registry
from optbench.tasks.base import Task
from optbench.validate import ConfigError

LONG_SWEEP_SECONDS = 600  # a sweep estimated longer than this needs an explicit yes
# optimizer steps per second assumed before a block of the sweep has been timed: a 2-D surface
# on a CPU core runs about this many (1e12 steps took about 23 hours)
ASSUMED_STEPS_PER_SECOND = 1.2e7


class SweepTooLarge(OptbenchError, ValueError):
    """The sweep is estimated to take longer than :data:`LONG_SWEEP_SECONDS`; it runs only
    when confirmed (``yes``). ``seconds`` is the estimate."""

    def __init__(self, message: str, seconds: float):
        super().__init__(message)
        self.seconds = seconds


class NotEnoughMemory(OptbenchError, ValueError):
    """The config's memory budget is more than the machine has."""


def estimate_seconds(config: SweepConfig, directory: Path) -> tuple[int, float, float]:
    """The optimizer steps still to run, the seconds they should take, and the steps per
    second assumed: measured by the blocks already finished in ``directory`` if any, else
    :data:`ASSUMED_STEPS_PER_SECOND`. Finished blocks of this same config don't count."""
    steps, rate = config.optimizer_steps(), ASSUMED_STEPS_PER_SECOND
    try:
        meta = ResultStore(directory).meta()
        blocks = meta["blocks"].values()
        done = sum(b["optimizer_steps"] for b in blocks)
        seconds = sum(b["run_seconds"] for b in blocks)
        if done and seconds > 0:
            rate = done / seconds
        if meta["config_hash"] == config.digest():
            steps = max(0, steps - done)
    except (OptbenchError, KeyError, TypeError, AttributeError):
        pass
    return steps, steps / rate, rate


def check_duration(config: SweepConfig, directory: Path) -> None:
    """Refuse a sweep whose remaining steps are estimated to take longer than
    :data:`LONG_SWEEP_SECONDS` (a resumed sweep counts only what is left)."""
    steps, seconds, rate = estimate_seconds(config, directory)
    if seconds > LONG_SWEEP_SECONDS:
        raise SweepTooLarge(
            f"the sweep runs {steps:.3g} optimizer steps, about {_duration(seconds)} at "
            f"{rate:.2g} steps/s (more than {LONG_SWEEP_SECONDS // 60} minutes); pass --yes "
            "(yes=True) to run it", seconds)


def machine_memory_mb() -> tuple[float, str]:
    """The memory a chunk may use on this machine: the smaller of the host's RAM and the
    first local device's limit (where the backend reports one), and a description."""
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    limits, described = [host], [f"host {host / 1024:.1f} GB"]
    device = jax.local_devices()[0]
    try:
        stats = device.memory_stats()
    except jax.errors.JaxRuntimeError:  # not reported by this backend
        stats = None
    if stats and stats.get("bytes_limit"):
        limits.append(stats["bytes_limit"] / 2**20)
        described.append(f"{device.device_kind} {limits[-1] / 1024:.1f} GB")
    return min(limits), ", ".join(described)


def check_memory(config: SweepConfig) -> None:
    """Refuse a memory budget the machine does not have, before anything runs."""
    available, described = machine_memory_mb()
    if config.max_memory_mb > available:
        raise NotEnoughMemory(
            f"max_memory_mb = {config.max_memory_mb:g} is more than this machine has "
            f"({described}); lower max_memory_mb to at most {available:.0f}")


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 3:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.3g} days"


def settings_of(config: SweepConfig, task_name: str) -> RunSettings:
    """How the runs of ``task_name``'s blocks are performed and scored (its plan)."""
    plan = config.plan(task_name)
    return RunSettings(steps=plan.steps, record_every=plan.record_every, targets=plan.targets,
                       divergence_threshold=config.divergence_threshold,
                       float64=config.float64, max_records=config.max_records,
                       matmul_precision=config.matmul_precision, scoring=config.scoring,
                       branching=branching_on(config.branching, jax.default_backend()))


def branching_on(branching: str, backend: str) -> str:
    """``"auto"`` resolved for a backend: once per run on accelerators, where a conditional in
    the step loop costs a synchronization each step; per step on a CPU, where compiling a
    loop per rule costs more than the switch."""
    if branching != "auto":
        return branching
    return "step" if backend == "cpu" else "run"


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
    """The block's runs: each hyperparameter setting (a grid's product or a search's
    trials) x seed x start, flattened into the data of one program."""
    names = list(optimizer.grid)
    combos = optimizer.settings()
    rows = list(itertools.product(range(len(combos)), seeds, range(n_starts)))
    index, seed, start = (np.asarray(col) for col in zip(*rows, strict=True))
    hparams = {n: np.asarray([combos[i][k] for i in index]) for k, n in enumerate(names)}
    return Grid(hparams, index, seed, start)


PAD_FREELY_PARAMETERS = 1_000  # a block of a task this small is padded to share a program
PAD_MAX_RATIO = 2  # a larger task's block is padded to at most this many times its runs


@dataclass(frozen=True)
class BlockPlan:
    """What a block runs: its update rule (bundled, and decayed where asked), the
    hyperparameters of its runs, its settings and its grid."""

    rule: PureOptimizer
    hparams: dict[str, np.ndarray]
    settings: RunSettings
    grid: Grid


def plan_block(config: SweepConfig, rules: Rules, optimizer: OptimizerConfig, task: Task
               ) -> BlockPlan:
    grid = make_grid(optimizer, config.seeds, task.n_starts)
    rule, hparams = rules.select(optimizer.label, grid.hparams, task,
                                 config.plan(task.name).optimizers)
    if LR_DECAY in hparams:
        rule = decayed(rule)
    return BlockPlan(rule, hparams, settings_of(config, task.name), grid)


def run_axes(blocks: Sequence[tuple[OptimizerConfig, Task]], keys: Sequence[str],
             config: SweepConfig, rules: Rules) -> dict[str, RunAxis]:
    """Each block's :class:`RunAxis`: blocks that would compile the same program but for
    their number of runs (the same rule on the same task program, data shapes and record
    schedule) are padded to the largest one's runs and vmap every hyperparameter that any of
    them varies, so that they share one compilation. A task whose data exceeds the memory
    budget is refused here, before any block runs. Planned over every block of the sweep,
    so that a resumed sweep compiles the same programs. Padding costs the padded runs' time:
    a block of 1 setting beside one of 5 runs 5 settings' worth. That is cheap on a task of
    at most :data:`PAD_FREELY_PARAMETERS` parameters (a surface), where compiling is most of
    the wait; a larger task's block is padded at most :data:`PAD_MAX_RATIO` times its own
    runs, and compiles its own program beyond that."""
    groups: dict[Any, list[tuple[str, int, set[str], bool]]] = {}
    for (optimizer, task), key in zip(blocks, keys, strict=True):
        plan = plan_block(config, rules, optimizer, task)
        source = optimizer.spec.gradient
        args = task.args(source)
        check_data_fits(task, cast_floats(args, plan.settings.dtype), config.max_memory_mb)
        shapes = tuple(np.shape(a) for a in jax.tree.leaves(args))
        program = (plan.rule, task.program(source), shapes,
                   len(plan.settings.recorded_steps), len(plan.settings.targets))
        varied = {k for k, v in plan.hparams.items() if np.any(v != v[0])}
        small = parameter_count(task) <= PAD_FREELY_PARAMETERS
        groups.setdefault(program, []).append((key, len(plan.grid), varied, small))
    axes = {}
    for members in groups.values():
        largest = max(n for _, n, _, _ in members)
        per_run = frozenset().union(*(varied for _, _, varied, _ in members))
        axes.update({key: RunAxis(largest if small or largest <= PAD_MAX_RATIO * n else n,
                                  per_run) for key, n, _, small in members})
    return axes


def seconds_per_step(result: BlockResult, settings: RunSettings) -> float:
    """The block's seconds per optimizer step of one run: its compiled program's run time
    (every chunk's, compilation excluded) times the devices it ran on, over the steps of all
    the runs it ran, padding included (see :class:`RunAxis`). Its runs share the program, so
    a run's seconds are its steps times this; counted in device-seconds, blocks spread over
    different numbers of devices compare."""
    n_runs = len(result.outcome.final)
    ran = -(-n_runs // result.chunk_size) * result.chunk_size
    return result.run_seconds * result.n_devices / (ran * settings.steps)


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
        SECONDS_PER_STEP: seconds_per_step(result, settings),
    })
    runs = with_seconds(runs)
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
    rerun: bool = False,
    reference: str | None = None,
    compile_cache: bool | str | None = None,
    meta: Mapping | None = None,
) -> Path:
    """Run ``config`` into ``directory`` (default ``results/<name>``), resuming finished blocks.

    ``reference="optax"`` runs optax's implementations instead of optbench's (the store then
    holds the reference results; see :func:`optbench.analysis.reference_deviation`).
    ``compile_cache`` overrides the config's (see
    :func:`optbench.engine.run.use_compilation_cache`). ``meta``: more entries for
    ``meta.json`` that say where the config came from (stage 2's record of its stage 1) but
    not what runs, so the config hash leaves them out; a resumed sweep updates them when it
    finishes. A sweep estimated to take longer
    than :data:`LONG_SWEEP_SECONDS` needs ``yes``; ``rerun`` recomputes finished blocks.
    Ctrl-C raises :class:`Interrupted` once the running chunk is done; the finished blocks
    are kept, and the same call resumes. The convergence tables are the analysis' to write
    (:func:`optbench.analysis.write_finished_tables`; :func:`optbench.sweep` does both).
    """
    if not isinstance(config, SweepConfig):
        config = parse(config)
    directory = Path(directory) if directory else Path(results_root) / config.name
    if not yes:
        check_duration(config, directory)
    use_compilation_cache(config.compile_cache if compile_cache is None else compile_cache)
    devices = jax.devices()
    check_memory(config)
    writer = jax.process_index() == 0
    tasks = {t.name: t for t in registry.build(config.tasks)}
    _check_targets_fit(config, tasks.values())
    _warn_unresolvable_targets(config, tasks.values())
    _warn_zero_learning_rates(config)
    blocks = [(o, tasks[t.name]) for o, t in config.blocks()]
    keys = [block_key(o.label, t.name) for o, t in blocks]
    rules = Rules.of(config.optimizers, reference)
    store = None
    if writer:
        store = ResultStore.open(directory, config, force=force, meta={
            **_versions(), "device_kind": devices[0].device_kind, "device_count": len(devices),
            "compiler_options": compiler_options(devices[0].platform),
            "process_count": jax.process_count(), "git_commit": _git_commit(),
            "reference": reference, "started": _now(), "planned_blocks": keys,
            "hyperparameters": {o.label: {**hyperparameters(o.optimizer), LR_DECAY: 0.0}
                                for o in config.optimizers}, **(meta or {})})
    if store is not None and store.cleared:
        _say_cleared(store)
    compiled_before = PROGRAMS.compiled
    try:
        done = _agree(_finished_blocks(store, keys, rerun, config.keep_params) if writer
                      else [False] * len(keys))
        if writer:
            _say_resuming(sum(done), len(keys))
        todo = [(b, k) for b, k, finished in zip(blocks, keys, done, strict=True)
                if not finished]
        with ctrl_c_between_chunks() as stop:
            _run_blocks(todo, config, rules, run_axes(blocks, keys, config, rules), devices,
                        store, quiet or not writer, stop)
        if store is not None:
            # a sweep that ran no block keeps the finish time and program count of the one
            # that did, so the folder (and a report of it) is left as it was
            ran = ({"finished": _now(),  # programs compiled (or loaded from the cache)
                    "programs_compiled": PROGRAMS.compiled - compiled_before}
                   if todo or "finished" not in store.meta() else {})
            store.finalize(keys, {**ran, **(meta or {})}, csv=config.csv)
    except KeyboardInterrupt:
        saved = sum(map(store.is_done, keys)) if store is not None else 0
        raise Interrupted(f"interrupted; {saved} of {len(keys)} blocks are saved in "
                          f"{directory}; run the same command again to resume") from None
    finally:
        if store is not None:
            store.close()
    return directory


def kept_files(key: str, keep_params: bool | str) -> list[str]:
    """The files a block keeps beside its tables (see :mod:`optbench.engine.params`)."""
    if not keep_params:
        return []
    return [kept.name(key), *([kept.path_name(key)] if keep_params == "best" else [])]


def _finished_blocks(store: ResultStore, keys: list[str], rerun: bool,
                     keep_params: bool | str = False) -> list[bool]:
    """Which blocks are finished and intact (with their kept parameters, if asked for); a
    damaged one is discarded, with a warning."""
    done = []
    damaged = store.damaged_blocks() if not rerun else {}
    params_damage = store.damage(kept.FOLDER + "/") if keep_params and not rerun else {}
    for key in keys:
        files = kept_files(key, keep_params)
        finished = store.is_done(key) and not rerun
        if finished and not all((store.directory / f).is_file() for f in files):
            finished = False  # kept parameters asked for now, not when it ran: run it again
        damage = [*damaged.get(key, []), *(f"{f} ({params_damage[f]})" for f in files
                                            if f in params_damage)] if finished else []
        if damage:
            warnings.warn(f"block {key} is damaged ({'; '.join(damage)}); computing it again",
                          stacklevel=4)
            store.discard_block(key)
        done.append(finished and not damage)
    return done


def _say_cleared(store: ResultStore) -> None:
    """What --force deleted: the previous config's files (and its report), nothing else."""
    report = sum(name.startswith(f"{REPORT}/") for name in store.cleared)
    print(f"optbench: --force deleted {len(store.cleared) - report} files of the previous "
          f"config's results in {store.directory}" + (f" and its report ({report} files)"
                                                     if report else ""), file=sys.stderr)


def _say_resuming(done: int, total: int) -> None:
    if done == total:
        print(f"optbench: all {total} blocks already done; nothing to run (--rerun recomputes "
              "them)", file=sys.stderr)
    elif done:
        print(f"optbench: {done} of {total} blocks already done, resuming", file=sys.stderr)


@contextlib.contextmanager
def ctrl_c_between_chunks() -> Iterator[threading.Event]:
    """Ctrl-C (SIGINT) as a request that the sweep honours between chunks, as a
    KeyboardInterrupt raised there: raised wherever Python happened to be, it can land in
    one of JAX's garbage-collection callbacks, which swallow it, and the sweep would run on.
    A second Ctrl-C interrupts at once. Outside the main thread, Ctrl-C is left as it is."""
    asked = threading.Event()

    def request(signum, frame):
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()

    try:
        previous = signal.signal(signal.SIGINT, request)
    except ValueError:  # not the main thread: signals are delivered to that one only
        yield asked
        return
    try:
        yield asked
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_blocks(todo: list, config: SweepConfig, rules: Rules, axes: Mapping[str, RunAxis],
                devices: list, store: ResultStore | None, quiet: bool,
                stop: threading.Event) -> None:
    """Run the blocks not yet finished, storing each as it finishes. On a terminal a bar
    counts blocks (moving within one as its chunks finish) and says whether it compiles or
    runs; elsewhere (a log) one line per finished block. Once ``stop`` is set, the next
    chunk's end raises KeyboardInterrupt."""
    terminal = sys.stderr.isatty()
    with tqdm(total=len(todo), desc=config.name, unit="block", bar_format=BAR,
              disable=quiet or not todo or not terminal) as bar, StepProgress(bar) as progress:

        for number, ((optimizer, task), key) in enumerate(todo, 1):
            if stop.is_set():
                raise KeyboardInterrupt
            name = f"{optimizer.label} on {task.name}"

            def chunk_done(steps: int, name=name) -> None:
                if not steps:
                    bar.set_postfix_str(f"running {name}")
                progress(steps)
                if stop.is_set():
                    raise KeyboardInterrupt

            bar.set_postfix_str(f"compiling {name}")
            plan = plan_block(config, rules, optimizer, task)
            settings, grid = plan.settings, plan.grid
            progress.block(len(grid) * settings.steps)
            result = run_block(plan.rule, optimizer.spec.gradient, task, settings, plan.hparams,
                               grid.seeds, grid.starts, config.max_memory_mb, devices,
                               progress=chunk_done, keep_params=bool(config.keep_params),
                               keep_path=config.keep_params == "best", axis=axes[key])
            frames = block_frames(result, grid, optimizer, task, settings)
            if store is not None:
                # computed again (--rerun): the old files go first, so that an interruption
                # leaves the block unfinished (missing, until a run recomputes it), never old
                # runs beside new curves; parameters kept by an earlier run are removed for
                # good, as a run that keeps none will not write them again
                store.discard_block(key)
                for kept_file in (kept.name(key), kept.path_name(key)):
                    store.remove(kept_file)
                if config.keep_params:  # before runs.parquet, which marks the block done
                    store.write(kept.name(key), kept.writer(result.outcome.params))
                if config.keep_params == "best":
                    store.write(kept.path_name(key), _best_path_writer(
                        result, frames["runs"], grid, settings))
                store.write_block(key, frames, {
                    "optimizer": optimizer.label, "task": task.name, "runs": len(grid),
                    "compile_seconds": result.compile_seconds,
                    "program_reused": result.program_reused,
                    "run_seconds": result.run_seconds, "chunk_size": result.chunk_size,
                    "devices": result.n_devices,
                    SECONDS_PER_STEP: seconds_per_step(result, settings),
                    "optimizer_steps": len(grid) * settings.steps,
                    "steps": settings.steps, "targets": list(settings.targets),
                    "branching": settings.branching})
            if not (quiet or terminal):
                compiled = ("program shared" if result.program_reused
                            else f"compiled in {result.compile_seconds:.2f} s")
                print(f"optbench: block {number}/{len(todo)} {name}: ran in "
                      f"{result.run_seconds:.2f} s, {compiled}", file=sys.stderr, flush=True)


BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} blocks [{elapsed}<{remaining}{postfix}]"


def _best_path_writer(result: BlockResult, runs: pd.DataFrame, grid: Grid,
                      settings: RunSettings):
    """The writer of the parameter paths of the block's runs at its best setting."""
    best = best_configs(runs, settings.targets, settings.steps)["config"].iloc[0]
    rows = np.flatnonzero(grid.config_index == best)
    path = jax.tree.map(lambda a: a[rows], result.outcome.path)
    return kept.writer(path, **{kept.RUN: rows, kept.STEP: settings.recorded_steps})


class StepProgress:
    """The sweep's progress bar, in blocks, moving within a long block too.

    Blocks differ in cost (a network's step costs far more than a surface's), so the bar
    counts blocks, and within one the share of its optimizer steps done. A compiled chunk
    reports its steps only when it ends, which can take minutes. In between, a background
    thread advances the bar at the steps per second the block's finished chunks ran
    (compile time excluded), never past the block's end; each chunk's end sets the exact
    count again. Before a chunk of the block has finished, the bar waits.
    """

    TICK_SECONDS = 0.5

    def __init__(self, bar: tqdm):
        self.bar, self.lock = bar, threading.Lock()
        self.done = self.block_start = self.block_end = 0  # steps: finished; running block
        self.blocks = 0  # blocks started
        self.ran_steps, self.ran_seconds = 0, 0.0  # for the rate
        self.chunk = 0  # steps of the last chunk: the running one is likely the same
        self.since: float | None = None  # when the running chunk started
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> StepProgress:
        if not self.bar.disable:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def block(self, steps: int) -> None:
        """A block of ``steps`` optimizer steps starts (compiling first)."""
        with self.lock:
            self.block_start, self.block_end, self.since = self.done, self.done + steps, None
            self.ran_steps, self.ran_seconds = 0, 0.0  # the rate of this block's chunks
            self.blocks += 1
            self._show(self.done)

    def __call__(self, steps: int, now: float | None = None) -> None:
        """``run_block``'s callback: 0 when the runs start, then each chunk's steps."""
        now = time.perf_counter() if now is None else now
        with self.lock:
            if steps and self.since is not None:
                self.ran_steps += steps
                self.ran_seconds += now - self.since
                self.chunk = steps
            self.done += steps
            self.since = now
            self._show(self.done)

    def estimate(self, now: float) -> int:
        """The steps done by ``now`` as far as the rate so far tells: the running chunk
        counts at most up to one step before its likely end (or the block's)."""
        if self.since is None or not self.ran_seconds:
            return self.done
        guess = self.done + self.ran_steps / self.ran_seconds * (now - self.since)
        end = min(self.block_end, self.done + self.chunk)
        return int(max(self.done, min(guess, end - 1)))

    def _tick(self) -> None:
        while not self.stop.wait(self.TICK_SECONDS):
            with self.lock:
                self._show(self.estimate(time.perf_counter()))

    def _show(self, steps: int) -> None:
        """The bar at ``steps``: the blocks before the running one and its share done."""
        within = (steps - self.block_start) / max(1, self.block_end - self.block_start)
        self.bar.n = max(0, self.blocks - 1) + within
        self.bar.refresh()


def _agree(done: list[bool]) -> list[bool]:
    """Process 0's view of which blocks are finished, shared with every process."""
    if jax.process_count() == 1:
        return done
    return [bool(v) for v in multihost_utils.broadcast_one_to_all(np.asarray(done, bool))]


def _check_targets_fit(config: SweepConfig, tasks: Iterable[Task]) -> None:
    """Refuse a task that maximizes its metric (an accuracy, an R²) but has only the
    default targets, levels of f - f_min: every run would reach them at its start."""
    for task in tasks:
        if task.maximize and tuple(config.plan(task.name).targets) == DEFAULT_TARGETS:
            raise ConfigError(
                f"tasks ({task.name}).targets", "none of its own, so the default 0.1 ... 1e-8",
                f"targets of its own for the {task.metric} it maximizes, e.g. [0.5, 0.8, 0.9]")


def _warn_unresolvable_targets(config: SweepConfig, tasks: Iterable[Task]) -> None:
    """In float32, f - f_min below the surface's float32 resolution is rounding, not
    progress."""
    if config.float64:
        return
    for task in tasks:
        surface = getattr(task, "surface", None)
        if surface is None:
            continue
        message = float32_warning(task.name, config.plan(task.name).targets, surface)
        if message:
            warnings.warn(message + " (set float64 = true)", stacklevel=3)


def _warn_zero_learning_rates(config: SweepConfig) -> None:
    """A learning rate of 0 in a grid: those runs never move (legal: a schedule may start
    at 0), so say so once per optimizer."""
    labels = dict.fromkeys(o.label for o, _ in config.blocks()
                           if 0.0 in o.grid.get("learning_rate", ()))
    for label in labels:
        warnings.warn(f"optimizers.{label}.learning_rate: the grid holds 0, whose runs never "
                      "move from their start", stacklevel=3)


def float32_warning(task: str, targets: Iterable[float], surface: landscapes.Landscape
                    ) -> str | None:
    """The warning for the targets of ``task`` below float32's resolution of f - f_min near
    the minimum of ``surface`` (they measure rounding, not progress); None if there are
    none."""
    resolution = surface.float32_resolution()
    lost = [t for t in targets if t < resolution]
    if not lost:
        return None
    return (f"{task}: in float32, f - f_min is resolved only to about {resolution:.1e}; "
            f"targets {', '.join(f'{t:g}' for t in lost)} measure rounding")


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
    return run_sweep(config, Path(directory) / REFERENCE, quiet=quiet, yes=True,
                     reference="optax")
