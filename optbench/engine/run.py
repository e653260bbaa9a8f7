"""One block of a sweep: one optimizer on one task for many runs, as one compiled program.

A *run* is one (hyperparameters, seed, start) configuration. :func:`make_run` builds a pure
function that performs one run for all steps with ``jax.lax.scan``; :func:`run_block`
``vmap``s it over the run axis, ``jit``s it once, and feeds it the runs in chunks of equal
shape (so a sweep too large for memory is split, and the program compiles once). With
several devices the run axis is sharded over a 1-D mesh.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from optbench.optimizers.base import PureOptimizer
from optbench.tasks.base import Task

TRAJECTORY_MAX_DIM = 3  # parameter paths are recorded for tasks of this dimension or less


@dataclass(frozen=True)
class RunSettings:
    """How every run of a block is performed and scored."""

    steps: int
    record_every: int
    targets: tuple[float, ...]
    divergence_threshold: float
    float64: bool = False

    @property
    def recorded_steps(self) -> np.ndarray:
        """The steps at which f is recorded: 0, r, 2r, ... below ``steps``, then ``steps``."""
        return np.append(np.arange(0, self.steps, self.record_every), self.steps)


class Outcome(NamedTuple):
    """What one run produces (batched along a leading run axis by :func:`run_block`)."""

    curve: jax.Array  # f - f_min at each recorded step
    trajectory: jax.Array  # params at each recorded step; width 0 above TRAJECTORY_MAX_DIM
    final: jax.Array  # f - f_min after the last step (at the frozen point if diverged)
    best: jax.Array  # the lowest f - f_min seen before any divergence
    hit_step: jax.Array  # first step at which f - f_min <= each target; -1 if never
    diverged: jax.Array  # f became non-finite or exceeded the divergence threshold
    divergence_step: jax.Array  # the step at which it did; -1 if never


class _Carry(NamedTuple):
    params: jax.Array
    state: object
    anchor: jax.Array  # the last recorded point whose f - f_min was valid: where a run freezes
    best: jax.Array
    hit_step: jax.Array
    diverged: jax.Array
    divergence_step: jax.Array


def observe(carry: _Carry, gaps: jax.Array, steps: jax.Array, targets: np.ndarray,
            threshold: float) -> _Carry:
    """Score a stretch of consecutive ``f - f_min`` values taken at ``steps``.

    Scoring a stretch at once keeps the bookkeeping out of the step loop (scoring inside
    every step costs several times more). Values from the first non-finite or
    above-``threshold`` one on count as diverged and are ignored for ``best`` and targets.
    """
    never = jnp.iinfo(jnp.int32).max
    bad = ~jnp.isfinite(gaps) | (gaps > threshold)
    first_bad = jnp.min(jnp.where(bad, steps, never))  # min-reductions: argmax is slow on CPU
    valid = ~carry.diverged & (steps < first_bad)
    reached = valid[:, None] & (gaps[:, None] <= targets[None, :])
    first_hit = jnp.min(jnp.where(reached, steps[:, None], never), axis=0)
    newly_diverged = (first_bad < never) & ~carry.diverged
    return carry._replace(
        best=jnp.minimum(carry.best, jnp.min(jnp.where(valid, gaps, jnp.inf))),
        hit_step=jnp.where((carry.hit_step < 0) & (first_hit < never), first_hit,
                           carry.hit_step),
        diverged=carry.diverged | (first_bad < never),
        divergence_step=jnp.where(newly_diverged, first_bad, carry.divergence_step),
    )


def make_run(optimizer: PureOptimizer, gradient_source: str, task: Task,
             settings: RunSettings):
    """``run(hparams, seed, start_index) -> Outcome``: one run, all steps, pure.

    Steps run in chunks of ``record_every``: f - f_min is recorded at each chunk's start and
    the chunk is scored as a whole; a run that diverged is put back to its last valid
    recorded point and stays there (frozen), flagged with the exact step it diverged at.
    """
    dtype = jnp.float64 if settings.float64 else jnp.float32
    targets = np.asarray(settings.targets)
    record_trajectory = task.dim <= TRAJECTORY_MAX_DIM
    full_chunks = settings.steps // settings.record_every
    remainder = settings.steps - full_chunks * settings.record_every

    def run(hparams, seed, start_index) -> Outcome:
        hparams = {k: jnp.asarray(v, dtype) for k, v in hparams.items()}
        start_key, noise_key = jax.random.split(jax.random.key(seed))
        noise_key = jax.random.fold_in(noise_key, start_index)
        params = task.start(start_key, start_index).astype(dtype)

        def step(carry, t):
            params, state = carry
            value, grads = task.gradient(params, jax.random.fold_in(noise_key, t),
                                         gradient_source)
            updates, state = optimizer.update(grads, state, params, hparams)
            return ((params + updates).astype(dtype), state), value - task.f_min

        def advance(carry: _Carry, steps: jax.Array) -> tuple[_Carry, jax.Array]:
            """Run ``steps``, score them, and freeze the run if it diverged in them."""
            (params, state), gaps = jax.lax.scan(step, (carry.params, carry.state), steps)
            scored = observe(carry, gaps, steps, targets, settings.divergence_threshold)
            start_valid = ~scored.diverged | (steps[0] < scored.divergence_step)
            anchor = jnp.where(start_valid & ~carry.diverged, carry.params, carry.anchor)
            # A diverged run goes back to its last valid recorded point and stays there. Its
            # state is left as it is: it only matters while the params move, and selecting it
            # too costs more.
            params = jnp.where(scored.diverged, anchor, params)
            return scored._replace(params=params, state=state, anchor=anchor), gaps

        def chunk(carry: _Carry, first_step: jax.Array, length: int = settings.record_every):
            steps = first_step + jnp.arange(length, dtype=jnp.int32)
            new, gaps = advance(carry, steps)
            return new, (gaps[0], carry.params)

        carry = _Carry(
            params=params,
            state=optimizer.init(params, hparams),
            anchor=params,
            best=jnp.asarray(jnp.inf, dtype),
            hit_step=jnp.full(targets.shape, -1, jnp.int32),
            diverged=jnp.asarray(False),
            divergence_step=jnp.asarray(-1, jnp.int32),
        )
        steps_done = full_chunks * settings.record_every
        chunk_starts = jnp.arange(full_chunks, dtype=jnp.int32) * settings.record_every
        carry, (gaps, path) = jax.lax.scan(chunk, carry, chunk_starts)
        if remainder:  # a last, shorter chunk, recorded like the others
            carry, (tail_gap, tail_start) = chunk(carry, jnp.int32(steps_done), remainder)
            gaps, path = jnp.append(gaps, tail_gap), jnp.concatenate([path, tail_start[None]])
        carry = observe(carry, (task.loss(carry.params) - task.f_min)[None],
                        jnp.full(1, settings.steps, jnp.int32), targets,
                        settings.divergence_threshold)
        carry = carry._replace(params=jnp.where(carry.diverged, carry.anchor, carry.params))
        final = task.loss(carry.params) - task.f_min
        trajectory = (jnp.concatenate([path, carry.params[None]]) if record_trajectory
                      else jnp.zeros((len(settings.recorded_steps), 0), dtype))
        return Outcome(
            curve=jnp.append(gaps, final),
            trajectory=trajectory,
            final=final,
            best=carry.best,
            hit_step=carry.hit_step,
            diverged=carry.diverged,
            divergence_step=carry.divergence_step,
        )

    return run


@dataclass(frozen=True)
class BlockResult:
    """The outcomes of every run of a block (numpy, run axis first) and the block's timings."""

    outcome: Outcome
    compile_seconds: float
    run_seconds: float
    chunk_size: int
    n_devices: int


def bytes_per_run(task: Task, settings: RunSettings, state_copies: int = 4) -> int:
    """A generous estimate of the device memory one run needs while the block runs."""
    itemsize = 8 if settings.float64 else 4
    recorded = len(settings.recorded_steps)
    width = 1 + (task.dim if task.dim <= TRAJECTORY_MAX_DIM else 0)
    return itemsize * (recorded * width + (state_copies + 2) * task.dim * settings.record_every
                       ) + 64 * len(settings.targets) + 256


def chunk_size_for(n_runs: int, task: Task, settings: RunSettings, max_memory_mb: float,
                   n_devices: int = 1) -> int:
    """The most runs per chunk that fit ``max_memory_mb``, a multiple of ``n_devices``."""
    fit = max(1, int(max_memory_mb * 2**20) // bytes_per_run(task, settings))
    size = min(n_runs, fit)
    return max(n_devices, size // n_devices * n_devices)


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
) -> BlockResult:
    """Run every configuration of a block: ``hparams[k][i]``, ``seeds[i]``, ``start_indices[i]``.

    Compile time (lowering + XLA compilation, once per block) and run time (every chunk,
    up to its outputs on the host) are measured separately.
    """
    with jax.enable_x64(settings.float64):
        devices = devices or jax.devices()
        n_runs = len(seeds)
        size = chunk_size_for(n_runs, task, settings, max_memory_mb, len(devices))
        n_chunks = math.ceil(n_runs / size)
        dtype = np.float64 if settings.float64 else np.float32
        # Hyperparameters equal across the block stay scalars: vmapping them would make the
        # program recompute per run what is the same for all (e.g. Adam's b1**t).
        hparams = {k: np.asarray(v, dtype) for k, v in hparams.items()}
        varying = {k: v for k, v in hparams.items() if np.any(v != v[0])}
        fixed = {k: v[0] for k, v in hparams.items() if k not in varying}
        inputs = (varying, np.asarray(seeds, np.uint32), np.asarray(start_indices, np.int32))
        padded = jax.tree.map(lambda a: _pad(a, n_chunks * size), inputs)
        place = _placement(devices)
        run = make_run(optimizer, gradient_source, task, settings)
        batched = jax.jit(jax.vmap(lambda v, s, i, f: run({**f, **v}, s, i),
                                   in_axes=(0, 0, 0, None)))

        def chunk(i):
            runs = place(jax.tree.map(lambda a: a[i * size:(i + 1) * size], padded))
            return (*runs, fixed)

        started = time.perf_counter()
        compiled = batched.lower(*chunk(0)).compile()
        compile_seconds = time.perf_counter() - started

        started = time.perf_counter()
        # each chunk's outputs leave the device before the next chunk runs
        outputs = [jax.device_get(compiled(*chunk(i))) for i in range(n_chunks)]
        run_seconds = time.perf_counter() - started

        outcome = jax.tree.map(lambda *parts: np.concatenate(parts)[:n_runs], *outputs)
        return BlockResult(outcome, compile_seconds, run_seconds, size, len(devices))


def _pad(array: np.ndarray, length: int) -> np.ndarray:
    """Pad the run axis to ``length`` by repeating the last run (its results are dropped)."""
    missing = length - len(array)
    return np.concatenate([array, np.repeat(array[-1:], missing, axis=0)]) if missing else array


def _placement(devices: list):
    """Put inputs on one device, or shard their run axis over a 1-D mesh of all devices."""
    if len(devices) == 1:
        return lambda tree: jax.device_put(tree, devices[0])
    sharding = NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs"))
    return lambda tree: jax.device_put(tree, sharding)


def use_compilation_cache(directory: str | None = None) -> str:
    """Keep compiled programs on disk (JAX's persistent cache), so that a block whose program
    was compiled before — in an earlier sweep, or for another optimizer with the same update
    rule (GD, SGD and mini-batch SGD on a noise-free task) — loads instead of compiling."""
    import os

    directory = directory or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "optbench", "xla")
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory
