"""One block of a sweep: one optimizer on one task for many runs, as one compiled program.

A *run* is one (hyperparameters, seed, start) configuration. :func:`make_run` builds a pure
function that performs one run for all steps: a ``lax.scan`` over the record intervals, each a
``lax.fori_loop`` over its steps, so the step body is traced once whatever the schedule.
:func:`run_block` ``vmap``s it over the run axis, ``jit``s it, and feeds it the runs in chunks
of equal shape; with several devices (or processes) the run axis is sharded over a 1-D mesh.
A run starts from its :class:`Start` (initial parameters and random keys, from its seed and
start index), drawn by the task's own small program (:func:`start_program`), which every
optimizer on the task shares.

Everything that is data is an argument of the program, not a constant in it: the task's
:meth:`~optbench.tasks.base.Task.args` (datasets, ``f_min``, the noise scale, which surface),
the record steps, the targets and the divergence threshold. Compiled programs are cached in
the process by structure alone (:func:`program_key`: the task's
:class:`~optbench.tasks.base.Program`, the only task code traced), so blocks that differ
only in data share one compilation, and JAX's persistent cache
(:func:`use_compilation_cache`) shares them between processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from optbench.errors import OptbenchError
from optbench.optimizers.base import PureOptimizer
from optbench.paths import user_cache
from optbench.tasks.base import Program, Task

TRAJECTORY_MAX_DIM = 3  # parameter paths are recorded for flat parameters of this size or less
NEVER = -1  # hit_step / divergence_step of something that did not happen
TEST_PREFIX = "test_"  # metrics of a held-out test split: recorded, never scored
# XLA's options for the engine's programs, per platform. On CPU, LLVM's optimization level 1
# rather than the default 2: a block's program compiles 10-30 % faster and runs as fast (its
# loops are calls and small fusions), and the default sweep compiles a third faster
# (`optbench bench compile` measures both), with results that agree to rounding.
COMPILER_OPTIONS: dict[str, dict[str, Any]] = {"cpu": {"xla_backend_optimization_level": 1}}


def compiler_options(platform: str) -> dict[str, Any]:
    """The options the engine compiles with on ``platform`` (read when asked, so that a
    benchmark that changes :data:`COMPILER_OPTIONS` is recorded as it ran)."""
    return dict(COMPILER_OPTIONS.get(platform, {}))


class DataTooLarge(OptbenchError):
    """A task's data (or one run's curvature measurement) does not fit the sweep's memory
    budget."""


def record_schedule(steps: int, record_every: int | None = None, max_records: int = 200
                    ) -> np.ndarray:
    """The steps at which runs are recorded, from 0 to ``steps``.

    With ``record_every``: 0, r, 2r, ... and ``steps``. Otherwise at most ``max_records``
    points, half spaced evenly and half geometrically, so that both the first steps and the
    late behaviour are visible, and the record does not grow with the step count.
    """
    if record_every:
        return np.append(np.arange(0, steps, record_every), steps)
    if steps < max_records:
        return np.arange(steps + 1)
    half = max_records // 2
    points = np.concatenate([np.linspace(0, steps, max_records - half),
                             np.geomspace(1, steps, half)])
    return np.unique(np.round(points).astype(np.int64))


@dataclass(frozen=True)
class RunSettings:
    """How every run of a block is performed and scored."""

    steps: int
    record_every: int | None
    targets: tuple[float, ...]
    divergence_threshold: float
    float64: bool = False
    max_records: int = 200
    matmul_precision: str = "highest"  # of float32 products (a GPU's TF32 is opt-in)
    scoring: str = "step"  # "record": score at the record points only, even a surface
    branching: str = "step"  # "run": choose a bundle's rule and a family's surface once per
    # run, around the step loop, rather than in every step (see make_run)

    def __post_init__(self):
        if self.branching not in ("step", "run"):
            raise ValueError(f"branching: found {self.branching!r}; allowed step or run "
                             "(a config's 'auto' is resolved by the sweep)")

    @property
    def recorded_steps(self) -> np.ndarray:
        return record_schedule(self.steps, self.record_every, self.max_records)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64 if self.float64 else np.float32)


@dataclass(frozen=True)
class RunAxis:
    """How a block lays out its run axis, so that blocks of different sizes share one
    compiled program (the sweep chooses it for all the blocks that could share one): chunks of
    at least ``runs`` runs (a smaller block is padded, and the padding's results dropped), and
    the hyperparameters ``per_run`` vmapped even where a block holds them equal."""

    runs: int = 1
    per_run: frozenset[str] = frozenset()


class Outcome(NamedTuple):
    """What one run produces (batched along a leading run axis by :func:`run_block`)."""

    curve: jax.Array  # the primary metric at each recorded step
    metrics: dict[str, jax.Array]  # every evaluated metric at each recorded step
    trajectory: jax.Array  # params at each recorded step; width 0 unless small and flat
    final: jax.Array  # the primary metric after the last step (frozen point if diverged)
    best: jax.Array  # the best primary metric seen before any divergence
    hit_step: jax.Array  # first step at which each target was reached; -1 if never
    diverged: jax.Array  # a metric became non-finite, or the primary one passed the threshold
    divergence_step: jax.Array  # the step at which it did; -1 if never
    params: Any  # the final parameters (when kept), else None
    path: Any  # the parameters at each recorded step, record axis first (when kept), else None


class _Score(NamedTuple):
    best: jax.Array
    hit_step: jax.Array
    diverged: jax.Array
    divergence_step: jax.Array


class _Carry(NamedTuple):
    params: Any
    state: Any
    anchor: Any  # the last recorded params whose metrics were valid: where a run freezes
    anchor_metrics: dict[str, jax.Array]
    score: _Score
    eigenvector: Any  # where the next record point's Lanczos runs start (see tasks.curvature)


def _score(score: _Score, value: jax.Array, bad: jax.Array, step: jax.Array,
           targets: jax.Array, maximize: bool) -> _Score:
    """Score the primary metric's ``value`` at ``step``; ``bad`` marks divergence there."""
    diverged = score.diverged | bad
    valid = ~diverged
    reached = valid & ((value >= targets) if maximize else (value <= targets))
    better = jnp.maximum if maximize else jnp.minimum
    return _Score(
        best=jnp.where(valid, better(score.best, value), score.best),
        hit_step=jnp.where((score.hit_step == NEVER) & reached, step, score.hit_step),
        diverged=diverged,
        divergence_step=jnp.where(bad & ~score.diverged, step, score.divergence_step),
    )


def _is_bad(value: jax.Array, threshold: jax.Array, maximize: bool) -> jax.Array:
    bad = ~jnp.isfinite(value)
    return bad if maximize else bad | (value > threshold)


def _records_path(params: Any) -> bool:
    leaves = jax.tree.leaves(params)
    return len(leaves) == 1 and leaves[0].ndim == 1 and leaves[0].size <= TRAJECTORY_MAX_DIM


class Start(NamedTuple):
    """Where a run starts: its initial parameters (in the run's dtype) and the keys of its
    random draws (mini-batches or gradient noise; curvature estimates, or None)."""

    params: Any
    step_key: jax.Array
    curvature_key: jax.Array | None


def start_of(program: Program, dtype: Any, seed: jax.Array, start_index: jax.Array,
             task_args: Any) -> Start:
    """A run's :class:`Start`, from its seed and start index alone: the same for every
    optimizer on the task, so that same-seed runs start alike and draw the same batches."""
    init_key, step_key = jax.random.split(jax.random.key(seed))
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype),
                          program.init(task_args, init_key, start_index))
    curvature_key = None if _curvature(program) is None else jax.random.fold_in(init_key, 1)
    return Start(params, jax.random.fold_in(step_key, start_index), curvature_key)


def start_program(program: Program, dtype: Any):
    """The jitted ``(seeds, start_indices, task_args) -> Start`` of a block's runs: its own
    program, shared by every optimizer on the task, so that the random draws of a start
    (about half of a noise-free surface program's compile time) are compiled once per task,
    not per block."""
    return jax.jit(jax.vmap(lambda seed, index, args: start_of(program, dtype, seed, index,
                                                               args), in_axes=(0, 0, None)))


def make_run(optimizer: PureOptimizer, program: Program, dtype: Any,
             keep_params: bool = False, keep_path: bool = False,
             scoring: str = "step", branching: str = "step") -> Callable[..., Outcome]:
    """``run(hparams, start, task_args, schedule) -> Outcome``: one run from its
    :class:`Start`, pure.

    ``program`` is the task's compiled part (:meth:`~optbench.tasks.base.Task.program`), the
    only task code traced. ``schedule`` holds the record steps (int32, from 0 to the last
    step), the targets and the divergence threshold. At each record point the task is
    evaluated and scored; a task with
    ``per_step_metric`` is also scored at every step (unless ``scoring = "record"``), so its
    steps-to-target and divergence step are exact; otherwise they are the first record point
    at which the recorded value shows the event. A run that diverged is put back to its last
    valid recorded point and stays there (frozen), flagged with the step it diverged at; the
    other runs are not affected.

    A bundle of rules (``optimizer.members``) and a family of surfaces (``program.members()``)
    choose what runs inside every step (a ``lax.switch`` per step, and every rule's state
    carried) unless ``branching = "run"``: then one unbatched switch around the whole run picks
    a step loop compiled for that rule and surface alone, carrying only its state. That
    compiles one loop per pair (slower to compile) and keeps conditionals out of the loop
    (for a GPU, where each costs a synchronization and blocks fusion); the results agree to
    rounding.
    """
    if branching == "run":
        rules = optimizer.members or (optimizer,)
        programs = program.members() if hasattr(program, "members") else (program,)
        if len(rules) * len(programs) > 1:
            return _chosen_per_run(optimizer, program, rules, programs,
                                   [make_run(rule, member, dtype, keep_params, keep_path,
                                             scoring) for rule in rules for member in programs])
    maximize, metric = program.maximize, program.metric
    per_step = program.per_step_metric and scoring == "step"
    curvature = _curvature(program)
    preconditioned = bool(curvature and curvature.sharpness and optimizer.preconditioner)

    def cast(tree):
        return jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)

    def run(hparams, start: Start, task_args, schedule) -> Outcome:
        record_steps, targets = schedule["record_steps"], schedule["targets"]
        threshold = schedule["threshold"]
        hparams = cast(hparams)
        params, step_key, curvature_key = start
        path = _records_path(params)

        def measure(params, state, vectors, step) -> tuple[dict, dict, Any]:
            """The task's metrics, its curvature metrics (if it measures any; they never
            steer a run) and the eigenvectors to start the next record point from."""
            metrics = cast(program.evaluate(task_args, params))
            if curvature is None:
                return metrics, {}, vectors
            found, vectors = curvature.measure(
                lambda p: program.train_loss(task_args, p), params, vectors,
                jax.random.fold_in(curvature_key, step),
                last_preconditioner(state, step) if preconditioned else None)
            return metrics, cast(found), vectors

        def last_preconditioner(state, step):
            """The P of the last step taken: NaN at step 0, before any."""
            return jax.tree.map(lambda p: jnp.where(step > 0, p, jnp.nan),
                                optimizer.preconditioner(state, hparams))

        def record(carry: _Carry, step: jax.Array) -> tuple[_Carry, tuple]:
            """Evaluate at a record point, score it, and freeze the run if it diverged."""
            metrics, measured, vectors = measure(carry.params, carry.state, carry.eigenvector,
                                                 step)
            bad = _is_bad(metrics[metric], threshold, maximize)
            for name, value in metrics.items():  # the test split never steers a run
                if not name.startswith(TEST_PREFIX):
                    bad = bad | ~jnp.isfinite(value)
            metrics = {**metrics, **measured}
            score = _score(carry.score, metrics[metric], bad, step, targets, maximize)
            frozen = score.diverged
            keep = jax.tree.map(lambda a, b: jnp.where(frozen, a, b), carry.anchor, carry.params)
            metrics = jax.tree.map(lambda a, b: jnp.where(frozen, a, b), carry.anchor_metrics,
                                   metrics)
            carry = carry._replace(params=keep, anchor=keep, anchor_metrics=metrics, score=score,
                                   eigenvector=vectors)
            return carry, (metrics, keep if path else jnp.zeros((0,), dtype),
                           keep if keep_path else None)

        def step(t, inner: tuple) -> tuple:
            """One optimizer step; the loop carries only what a step changes."""
            params, state, score = inner
            value, grads = program.loss_and_grad(task_args, params, step_key, t)
            updates, state = optimizer.update(grads, state, params, hparams)
            params = program.project(task_args, optax.apply_updates(params, updates))
            if per_step:
                score = _score(score, value, _is_bad(value, threshold, maximize), t, targets,
                               maximize)
            return params, state, score

        def interval(carry: _Carry, bounds: tuple) -> tuple[_Carry, tuple]:
            """The steps from the last record point to the next one, then that record."""
            first, stop = bounds
            if per_step:
                params, state, score = jax.lax.fori_loop(
                    first, stop, step, (carry.params, carry.state, carry.score))
            else:
                params, state, _ = jax.lax.fori_loop(
                    first, stop, step, (carry.params, carry.state, ()))
                score = carry.score
            carry = carry._replace(params=params, state=state, score=score)
            return record(carry, stop)

        vectors = None if curvature is None else curvature.start(params, curvature_key,
                                                                 preconditioned)
        state = optimizer.init(params, hparams)

        def every_metric(params, state, vectors) -> dict:
            metrics, measured, _ = measure(params, state, vectors, 0)
            return {**metrics, **measured}

        # what a run frozen at its first record point keeps: it has no valid point, so no
        # values (NaN; zeros would read as the optimum)
        no_metrics = jax.tree.map(lambda a: jnp.full(a.shape, jnp.nan, dtype),
                                  jax.eval_shape(every_metric, params, state, vectors))
        carry = _Carry(
            params=params,
            state=state,
            anchor=params,
            anchor_metrics=no_metrics,
            score=_Score(
                best=jnp.asarray(-jnp.inf if maximize else jnp.inf, dtype),
                hit_step=jnp.full(targets.shape, NEVER, jnp.int32),
                diverged=jnp.asarray(False),
                divergence_step=jnp.asarray(NEVER, jnp.int32),
            ),
            eigenvector=vectors,
        )
        # the first interval, [0, 0), has no steps: it records the start
        previous = jnp.concatenate([record_steps[:1], record_steps[:-1]])
        carry, (metrics, trajectory, kept_path) = jax.lax.scan(interval, carry,
                                                               (previous, record_steps))
        return Outcome(
            curve=metrics[metric],
            metrics=metrics,
            trajectory=trajectory,
            final=metrics[metric][-1],
            best=carry.score.best,
            hit_step=carry.score.hit_step,
            diverged=carry.score.diverged,
            divergence_step=carry.score.divergence_step,
            params=carry.params if keep_params else None,
            path=kept_path,
        )

    return run


def _chosen_per_run(optimizer: PureOptimizer, program: Program, rules: tuple,
                    programs: tuple, runs: list[Callable[..., Outcome]]) -> Callable[..., Outcome]:
    """The run of ``runs[rule * len(programs) + surface]``, chosen once (``runs`` are rules x
    programs, row-major)."""

    def run(hparams, start, task_args, schedule) -> Outcome:
        rule = optimizer.member_index(hparams) if len(rules) > 1 else 0
        member = program.member_index(task_args) if len(programs) > 1 else 0
        return jax.lax.switch(rule * len(programs) + member, runs, hparams, start, task_args,
                              schedule)

    return run


# --------------------------------------------------------------------------------------
# Running a block: programs, chunks, placement
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockResult:
    """The outcomes of every run of a block (numpy, run axis first) and the block's timings.

    ``compile_seconds`` is 0 when the block reused a program compiled earlier in this process
    (``program_reused``)."""

    outcome: Outcome
    compile_seconds: float
    run_seconds: float
    chunk_size: int
    n_devices: int
    program_reused: bool = False


@dataclass
class ProgramCache:
    """Compiled programs of this process, keyed by structure (see :func:`program_key`),
    each with the largest chunk size that fits the memory budget it was compiled under,
    and the start programs of the tasks (see :func:`start_program` and :func:`start_key`)."""

    programs: dict[Hashable, tuple[Any, int]] = field(default_factory=dict)
    starts: dict[Hashable, Any] = field(default_factory=dict)
    compiled: int = 0  # how many block programs this process compiled (a cache miss each)

    def clear(self) -> None:
        self.programs.clear()
        self.starts.clear()
        self.compiled = 0


PROGRAMS = ProgramCache()


def program_key(optimizer: PureOptimizer, program: Program, dtype: Any,
                varying: dict, fixed: dict, task_args: Any, n_records: int, n_targets: int,
                chunk: int, devices: tuple, keep_params: bool, keep_path: bool = False,
                matmul_precision: str = "highest", scoring: str = "step",
                branching: str = "step", options: tuple = ()) -> Hashable:
    """What the compiled program depends on: the update rule, the task's program (the only
    task code traced, so equal programs trace alike), the shapes of every argument and which
    hyperparameters vary. Not: values of data."""
    return (optimizer, *start_key(program, dtype, task_args, chunk, devices, matmul_precision,
                                  options),
            tuple(sorted(varying)), tuple(sorted(fixed)), n_records, n_targets, keep_params,
            keep_path, scoring, branching)


def start_key(program: Program, dtype: Any, task_args: Any, chunk: int, devices: tuple,
              matmul_precision: str = "highest", options: tuple = ()) -> Hashable:
    """What a task's start program (and every block program) depends on: the task's program,
    the dtype, the shapes of its data, the chunk, the devices, the matmul precision and the
    compiler options (as sorted items)."""
    shapes = tuple((np.shape(a), np.result_type(a).str) for a in jax.tree.leaves(task_args))
    return (type(program), program, np.dtype(dtype).str, jax.tree.structure(task_args), shapes,
            chunk, devices, matmul_precision, options)


def cast_floats(tree: Any, dtype: Any) -> Any:
    """Floating leaves to ``dtype``; integer and boolean leaves stay as they are."""
    def cast(a):
        a = np.asarray(a)
        return a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a
    return jax.tree.map(cast, tree)


def _tree_bytes(tree: Any) -> int:
    return sum(np.prod(np.shape(a), dtype=np.int64) * np.result_type(a).itemsize
               for a in jax.tree.leaves(tree))


def bytes_per_run(optimizer: PureOptimizer, program: Program, args: Any,
                  dtype: Any, n_records: int, hparams: dict, keep_path: bool = False) -> int:
    """An estimate of the device memory one run needs: its parameters about four times
    (params, gradient, update, frozen anchor) plus the optimizer state, and its records
    (with ``keep_path``, the parameters at every record point too)."""
    key = (optimizer, type(program), program, np.dtype(dtype).str, n_records,
           tuple(sorted(hparams)), keep_path)
    if key not in _BYTES_PER_RUN:
        _BYTES_PER_RUN[key] = _bytes_per_run(optimizer, program, args, dtype, n_records,
                                             hparams, keep_path)
    return _BYTES_PER_RUN[key]


_BYTES_PER_RUN: dict[Hashable, int] = {}  # shapes are traced once per structure


def _bytes_per_run(optimizer: PureOptimizer, program: Program, args: Any, dtype: Any,
                   n_records: int, hparams: dict, keep_path: bool) -> int:
    def shapes():
        params = program.init(args, jax.random.key(0), jnp.int32(0))
        params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
        hp = {k: jnp.asarray(v, dtype) for k, v in hparams.items()}
        state = optimizer.init(params, hp)
        return params, state, program.evaluate(args, params)

    params, state, metrics = jax.eval_shape(shapes)
    width = jax.tree.leaves(params)[0].shape[0] if _records_path(params) else 0
    curvature = _curvature(program)
    n_metrics = len(metrics) + (len(curvature.metrics(bool(optimizer.preconditioner)))
                                if curvature else 0)
    records = n_records * (n_metrics + width) * np.dtype(dtype).itemsize
    if keep_path:
        records += n_records * _tree_bytes(params)
    return int(4 * _tree_bytes(params) + _tree_bytes(state) + records + 1024
               + curvature_bytes(program, params))


def _curvature(program: Program) -> Any:
    """The program's :class:`~optbench.tasks.curvature.Curvature`, or None."""
    return getattr(program, "curvature", None)


def curvature_bytes(program: Program, params: Any) -> int:
    """What measuring the program's curvature adds to one run's memory (0 if it does not):
    the Lanczos basis and the Hessian-vector products' vectors, each parameter-sized."""
    curvature = _curvature(program)
    if curvature is None:
        return 0
    n = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))
    return curvature.memory_vectors(n) * _tree_bytes(params)


def parameter_count(task: Task) -> int:
    """How many numbers one run's parameters hold."""
    program, args = task.program("any"), task.args("any")
    # the program and its data's shapes: equal programs may init from data of other sizes
    key = (type(program), program, tuple(np.shape(a) for a in jax.tree.leaves(args)))
    if key not in _PARAMETER_COUNT:
        args = cast_floats(args, np.float32)
        params = jax.eval_shape(lambda: program.init(args, jax.random.key(0), jnp.int32(0)))
        _PARAMETER_COUNT[key] = sum(int(np.prod(leaf.shape))
                                    for leaf in jax.tree.leaves(params))
    return _PARAMETER_COUNT[key]


_PARAMETER_COUNT: dict[Hashable, int] = {}


def measures_curvature(task: Task) -> bool:
    """Whether the task's record points measure curvature (``sharpness = true``, ...)."""
    return _curvature(task.program("any")) is not None


def check_data_fits(task: Task, task_args: Any, max_memory_mb: float) -> int:
    """The bytes of a task's data (as the block casts it); :class:`DataTooLarge` where they
    exceed the memory budget."""
    data_bytes = _tree_bytes(task_args)
    if data_bytes > max_memory_mb * 2**20:
        raise DataTooLarge(f"{task.name}: its data takes {data_bytes / 2**20:.1f} MB, more "
                           f"than max_memory_mb = {max_memory_mb:g}; raise max_memory_mb "
                           "or use a smaller dataset")
    return data_bytes


def chunk_size_for(n_runs: int, per_run: int, max_memory_mb: float, n_devices: int = 1) -> int:
    """Runs per chunk: all ``n_runs``, padded up to a multiple of ``n_devices``, or the most
    that fit ``max_memory_mb``, rounded down to a multiple of ``n_devices`` (and at least
    ``n_devices``)."""
    fit = int(max_memory_mb * 2**20) // per_run // n_devices * n_devices
    return max(n_devices, min(-(-n_runs // n_devices) * n_devices, fit))


def run_block(
    optimizer: PureOptimizer,
    gradient_source: str,
    task: Task,
    settings: RunSettings,
    hparams: dict[str, np.ndarray],
    seeds: np.ndarray,
    start_indices: np.ndarray,
    max_memory_mb: float = 512.0,
    devices: list | None = None,
    progress: Callable[[int], None] | None = None,
    keep_params: bool = False,
    keep_path: bool = False,
    axis: RunAxis = RunAxis(),
) -> BlockResult:
    """Run every configuration of a block: ``hparams[k][i]``, ``seeds[i]``, ``start_indices[i]``.

    Compile time (lowering + XLA compilation, or 0 for a program reused from this process)
    and run time (the sum over chunks of each one's run, from its inputs to its outputs on
    the host, ``progress`` excluded) are measured separately.
    ``progress`` is called with 0 once the program is compiled and the runs start, then after
    each chunk with the optimizer steps it ran. ``keep_params`` returns every run's final
    parameters, ``keep_path`` its parameters at every record point. ``axis``: see
    :class:`RunAxis`.
    """
    with jax.enable_x64(settings.float64), jax.default_matmul_precision(
            settings.matmul_precision):
        n_runs = len(seeds)
        dtype = settings.dtype
        task_args = cast_floats(task.args(gradient_source), dtype)
        data_bytes = check_data_fits(task, task_args, max_memory_mb)
        # Hyperparameters equal across the block stay scalars: vmapping them would make the
        # program recompute per run what is the same for all (e.g. Adam's b1**t).
        hparams = {k: np.asarray(v, dtype) for k, v in hparams.items()}
        varying = {k: v for k, v in hparams.items() if k in axis.per_run or np.any(v != v[0])}
        fixed = {k: v[0] for k, v in hparams.items() if k not in varying}
        record_steps = settings.recorded_steps
        schedule = {"record_steps": record_steps.astype(np.int32),
                    "targets": np.asarray(settings.targets, dtype),
                    "threshold": np.asarray(settings.divergence_threshold, dtype)}
        program = task.program(gradient_source)
        per_run = bytes_per_run(optimizer, program, task_args, dtype,
                                len(record_steps), {**fixed, **{k: v[0] for k, v in
                                                                varying.items()}}, keep_path)
        devices = _devices_for(list(devices or jax.devices()), max(n_runs, axis.runs),
                               int(max_memory_mb * 2**20) // (data_bytes + per_run))
        sharing = _sharing_memory(devices)
        budget = max_memory_mb * 2**20 - data_bytes * sharing  # each holds a copy of the data
        _check_curvature_fits(task, program, per_run, budget, max_memory_mb, data_bytes)
        size = chunk_size_for(max(n_runs, axis.runs), per_run, budget / 2**20, len(devices))
        mesh = Mesh(np.asarray(devices), ("runs",))
        runs_sharding = NamedSharding(mesh, PartitionSpec("runs"))
        replicated = NamedSharding(mesh, PartitionSpec())
        shared = _put((fixed, task_args, schedule), replicated)
        placed_args = shared[1]  # the task's data, as the start program takes it

        started = time.perf_counter()
        reused = True
        device_ids = tuple(d.id for d in devices)
        options = compiler_options(devices[0].platform)
        options_key = tuple(sorted(options.items()))
        while True:  # at most a few rounds: until the compiled program's memory fits
            example_varying, *example_starts = _put(
                _runs_slice(varying, seeds, start_indices, 0, size), runs_sharding)
            key = start_key(program, dtype, task_args, size, device_ids,
                            settings.matmul_precision, options_key)
            if key not in PROGRAMS.starts:
                reused = False
                PROGRAMS.starts[key] = start_program(program, dtype).lower(
                    *example_starts, placed_args).compile(options)
            starts = PROGRAMS.starts[key]
            key = program_key(optimizer, program, dtype, varying, fixed,
                              task_args, len(record_steps), len(settings.targets), size,
                              device_ids, keep_params, keep_path,
                              settings.matmul_precision, settings.scoring, settings.branching,
                              options_key)
            if key not in PROGRAMS.programs:
                reused = False
                batched = batched_run(optimizer, program, dtype, keep_params, keep_path,
                                      settings.scoring, settings.branching)
                compiled = batched.lower(example_varying, starts(*example_starts, placed_args),
                                         *shared).compile(options)
                PROGRAMS.compiled += 1
                smaller = _fitting_chunk(compiled, size, max_memory_mb * 2**20, len(devices),
                                         sharing)
                PROGRAMS.programs[key] = compiled, smaller
            compiled, smaller = PROGRAMS.programs[key]
            if smaller >= size:
                break
            size = smaller
        compile_seconds = time.perf_counter() - started

        outputs, run_seconds = [], 0.0
        if progress is not None:
            progress(0)
        for first in range(0, n_runs, size):
            started = time.perf_counter()  # the chunk's run alone: no compile, no callback
            chunk, *chunk_starts = _put(_runs_slice(varying, seeds, start_indices, first, size),
                                        runs_sharding)
            start = starts(*chunk_starts, placed_args)
            outputs.append(_fetch(compiled(chunk, start, *shared)))  # leaves the device at once
            run_seconds += time.perf_counter() - started
            if progress is not None:
                progress(min(size, n_runs - first) * settings.steps)

        outcome = jax.tree.map(lambda *parts: np.concatenate(parts)[:n_runs], *outputs)
        return BlockResult(outcome, 0.0 if reused else compile_seconds, run_seconds, size,
                           len(devices), reused)


def _check_curvature_fits(task: Task, program: Program, per_run: int, budget: float,
                          max_memory_mb: float, data_bytes: int) -> None:
    """Refuse, before compiling, a task whose one run does not fit the budget once its
    Hessian-vector products are counted (a run without them may still run alone)."""
    if _curvature(program) is None or per_run <= budget:
        return
    n = parameter_count(task)
    vectors = _curvature(program).memory_vectors(n)
    raise DataTooLarge(
        f"{task.name}: sharpness needs about {per_run / 2**20:.1f} MB per run ({vectors} "
        f"vectors of its {n} parameters for the Lanczos basis and the Hessian-vector products, "
        f"plus the run itself), more than the {budget / 2**20:.1f} MB that max_memory_mb = "
        f"{max_memory_mb:g} leaves beside its data ({data_bytes / 2**20:.1f} MB); raise "
        "max_memory_mb or drop sharpness")


def _devices_for(devices: list, runs: int, memory_holds: int) -> list:
    """The devices a block's run axis of ``runs`` runs is spread over, in one process: no
    more than it has runs (a device given only padding would take cores from the real runs
    on a CPU), nor, for CPU devices, which share the RAM, than the memory budget holds, each
    with its copy of the data and one run. A mesh across processes needs every process's
    devices."""
    if jax.process_count() > 1:
        return devices
    devices = devices[:max(1, runs)]
    return devices[:max(1, memory_holds)] if devices[0].platform == "cpu" else devices


def _sharing_memory(devices: list) -> int:
    """How many of ``devices`` keep their share of a chunk, and a copy of the data, in one
    memory: this process's CPU devices share its RAM; a GPU has its own (then 1)."""
    return max(1, sum(d.platform == "cpu" and d.process_index == jax.process_index()
                      for d in devices))


def _fitting_chunk(compiled: Any, size: int, budget: float, n_devices: int,
                   sharing: int = 1) -> int:
    """A chunk size whose program fits ``budget`` bytes, from the compiled program's own
    memory analysis where the backend gives one (the estimate chose ``size``). The analysis
    is of one device's share; ``sharing`` devices keep theirs in one memory."""
    try:
        stats = compiled.memory_analysis()
        used = sharing * (stats.temp_size_in_bytes + stats.argument_size_in_bytes
                          + stats.output_size_in_bytes)
    except (AttributeError, NotImplementedError, RuntimeError):  # not every backend has it
        return size
    if used <= budget or size <= n_devices:
        return size
    fit = int(size * budget / used) // n_devices * n_devices
    return max(n_devices, min(fit, size - n_devices))


def batched_run(optimizer: PureOptimizer, program: Program, dtype: Any,
                keep_params: bool = False, keep_path: bool = False, scoring: str = "step",
                branching: str = "step"):
    """The jitted program of a block: ``(varying, start, fixed, task_args, schedule) ->
    Outcome``, vmapped over the runs of ``varying`` and ``start`` (a batched
    :class:`Start`, from :func:`start_program`); ``fixed`` hyperparameters, the task's data
    and the schedule are shared by all runs."""
    run = make_run(optimizer, program, dtype, keep_params, keep_path, scoring, branching)
    return jax.jit(jax.vmap(lambda v, start, f, a, sch: run({**f, **v}, start, a, sch),
                            in_axes=(0, 0, None, None, None)))


def _runs_slice(varying: dict, seeds: np.ndarray, start_indices: np.ndarray, first: int,
                size: int) -> tuple:
    """Runs ``first .. first + size`` of the block; a short last chunk is padded by repeating
    its last run (whose results are dropped), so every chunk has the program's shape."""
    def part(a):
        a = np.asarray(a)[first:first + size]
        missing = size - len(a)
        return np.concatenate([a, np.repeat(a[-1:], missing, axis=0)]) if missing else a
    return (jax.tree.map(part, varying), part(np.asarray(seeds, np.uint32)),
            part(np.asarray(start_indices, np.int32)))


def _put(tree: Any, sharding: NamedSharding) -> Any:
    """Host arrays as global device arrays with ``sharding``: every process passes the same
    host data and contributes the shards of its own devices."""
    def put(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])
    return jax.tree.map(put, tree)


def _fetch(tree: Any) -> Any:
    """Device arrays to host numpy, gathered from every process when there are several."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def use_compilation_cache(setting: bool | str = True) -> str | None:
    """Keep compiled programs on disk (JAX's persistent cache), so that a program compiled in
    an earlier process loads instead of compiling.

    ``setting``: ``True`` for the platform's user cache folder, a folder, or ``False`` for
    none. The environment variable ``OPTBENCH_COMPILE_CACHE`` (a folder, or ``off``) takes
    precedence. Returns the folder in use, or ``None``.
    """
    env = os.environ.get("OPTBENCH_COMPILE_CACHE")
    if env is not None:
        setting = False if env.lower() in ("", "0", "off", "false", "no") else env
    if setting is False:
        return None
    directory = str(user_cache("xla")) if setting is True else str(setting)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory
