"""Loss-landscape slices around kept parameters (Li et al. 2018, "Visualizing the Loss
Landscape of Neural Nets"): the training loss along filter-normalized random directions, and
on the plane of a training path's top-2 PCA directions.

A direction is drawn from a standard normal and rescaled unit by unit: the slice of each
output unit (a dense layer's neuron, a conv layer's filter: the kernel's last axis) gets the
norm of that unit in the parameters, so that the slice's scale is that of the weights and
networks of different scales compare. Biases and other 1-D parameters are not moved (Li et
al. zero them too).

Random directions in a high-dimensional space are nearly orthogonal to a training path, so
the path is drawn on its own plane instead (Li et al., section 7): the top-2 principal
directions of the path's points relative to its final point, through which it is projected.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree

from optbench.config import parse_task
from optbench.engine import params as kept
from optbench.store import block_key
from optbench.tasks import registry

POINTS_1D = 25
POINTS_2D = 21
RADIUS = 1.0  # alpha, beta in [-RADIUS, RADIUS], in units of the normalized direction
DIRECTION_SEED = 0


@jax.jit  # op by op, each leaf's shape would compile its own random draws: seconds
def filter_normalized(key: jax.Array, params: Any) -> Any:
    """A random direction shaped like ``params``, each output unit scaled to its norm in
    ``params``; zero on 1-D leaves (biases)."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = []
    for k, p in zip(keys, leaves, strict=False):
        p = jnp.asarray(p)
        if p.ndim <= 1:
            out.append(jnp.zeros_like(p))
            continue
        d = jax.random.normal(k, p.shape, p.dtype)
        axes = tuple(range(p.ndim - 1))
        scale = _unit_norms(p, axes) / (_unit_norms(d, axes) + 1e-12)
        out.append(d * scale)
    return jax.tree.unflatten(treedef, out)


def _unit_norms(a: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    return jnp.sqrt(jnp.sum(a * a, axis=axes, keepdims=True))


def _moved(params: Any, direction: Any, step: jax.Array) -> Any:
    return jax.tree.map(lambda p, d: p + step * d, params, direction)


@functools.partial(jax.jit, static_argnums=0)  # compiled once per loss, for every run
def slice_1d(loss, params: Any, direction: Any, alphas: jax.Array) -> jax.Array:
    """``loss(params + a * direction)`` for each ``a`` of ``alphas`` (vmapped)."""
    return jax.vmap(lambda a: loss(_moved(params, direction, a)))(alphas)


@functools.partial(jax.jit, static_argnums=0)
def slice_2d(loss, params: Any, d1: Any, d2: Any, alphas: jax.Array) -> jax.Array:
    """``loss(params + a * d1 + b * d2)`` on the grid ``alphas`` x ``alphas`` (rows: b), one
    vmapped row at a time, so that memory grows with one row only."""
    def row(b):
        shifted = _moved(params, d2, b)
        return jax.vmap(lambda a: loss(_moved(shifted, d1, a)))(alphas)

    return jax.lax.map(row, alphas)


@dataclass
class Slices:
    """One run's slices: which run, the 1-D values and the 2-D grid."""

    optimizer: str
    run_id: str
    alphas_1d: np.ndarray
    values_1d: np.ndarray
    alphas_2d: np.ndarray
    values_2d: np.ndarray


@dataclass
class PathPlane:
    """One run's training path on the plane of its top-2 PCA directions, and the training
    loss on that plane; coordinates are parameter-space distances from the final point."""

    optimizer: str
    run_id: str
    steps: np.ndarray  # the recorded steps
    coords: np.ndarray  # (record points, 2): the path, projected; the final point at 0
    explained: np.ndarray  # (2,): the share of the path's variance along each direction
    axes: tuple[np.ndarray, np.ndarray]  # the grid's coordinates along each direction
    values_2d: np.ndarray  # the loss on the grid (rows: the second direction)


def params_folder(directory: Path) -> Path:
    return Path(directory) / kept.FOLDER


def kept_runs(best_runs: pd.DataFrame, task: str, optimizer: str, directory: Path,
              kept_file=kept.name) -> pd.DataFrame:
    """The runs of ``optimizer``'s best setting on ``task`` (sorted by seed and start) with
    their ``row`` in the block's kept file (``kept_file(block key)``); none where that file
    does not exist."""
    runs = best_runs[(best_runs["task"] == task) & (best_runs["optimizer"] == optimizer)]
    if not (directory / kept_file(block_key(optimizer, task))).is_file():
        runs = runs.iloc[:0]
    runs = runs.sort_values(["seed", "start"])
    return runs.assign(row=[int(r.rsplit("/", 1)[1]) for r in runs["run_id"]])


def chosen_runs(best_runs, task: str, optimizers: list[str], directory: Path,
                kept_file=kept.name) -> list[tuple[str, str, int]]:
    """(optimizer, run_id, row) of each optimizer's best setting's lowest seed (first start),
    for the optimizers whose kept file (``kept_file(block key)``) exists."""
    out = []
    for optimizer in optimizers:
        runs = kept_runs(best_runs, task, optimizer, directory, kept_file)
        if not runs.empty:
            out.append((optimizer, runs["run_id"].iloc[0], int(runs["row"].iloc[0])))
    return out


def network_tasks(config: dict, tasks: list[str]) -> list[str]:
    """Those of ``tasks`` whose kind in ``config`` has the loss-landscape figures (networks:
    :attr:`~optbench.tasks.registry.TaskKind.landscape_figures`)."""
    kinds = {t["name"]: t.get("kind") for t in config["tasks"]}
    return [t for t in tasks if kinds.get(t) in registry.names()
            and registry.get(kinds[t]).landscape_figures]


def build_task(config: dict, task: str):
    """The task named ``task`` and whether the sweep ran in float64, rebuilt from the
    stored config (its task table alone: reading imports no optimizer code)."""
    (table,) = [t for t in config["tasks"] if t.get("name") == task]
    return registry.build([parse_task(table, "tasks")])[0], bool(config.get("float64"))


@dataclass(frozen=True)
class Evaluator:
    """What evaluates a task's losses at stored parameters, rebuilt from the stored config:
    its full-batch program, its data in the sweep's float dtype (as the engine casts it), the
    structure and shapes of its parameters, whether the sweep ran in float64 and its matmul
    precision."""

    program: Any
    args: Any
    like: Any
    dtype: type
    float64: bool
    matmul_precision: str = "highest"

    @contextlib.contextmanager
    def numerics(self):
        """Evaluate as the sweep ran: in its precision and its float32 matmul precision."""
        with jax.enable_x64(self.float64), jax.default_matmul_precision(self.matmul_precision):
            yield


def evaluator(config: dict, task: str) -> Evaluator:
    """The :class:`Evaluator` of ``task`` in the sweep whose config is ``config``."""
    built, float64 = build_task(config, task)
    dtype = np.float64 if float64 else np.float32
    args = jax.tree.map(lambda a: np.asarray(a).astype(dtype)
                        if np.issubdtype(np.asarray(a).dtype, np.floating) else a,
                        built.args("full batch"))
    program = built.program("full batch")
    like = jax.eval_shape(program.init, args, jax.random.key(0), jnp.int32(0))  # no draws
    return Evaluator(program, args, like, dtype, float64,
                     config.get("matmul_precision", "highest"))


def _training_loss(config: dict, task: str):
    """The task's training loss (a function of parameters), an example of its parameters
    and its float dtype, rebuilt from the stored config."""
    e = evaluator(config, task)
    return functools.partial(_train_loss, e.program, e.args), e.like, e.dtype, e.float64


def _train_loss(program, args, params):
    return program.train_loss(args, params)


def task_slices(directory: Path, config: dict, task: str, chosen: list[tuple[str, str, int]]
                ) -> list[Slices]:
    """The 1-D and 2-D slices of the training loss around each chosen run's parameters; the
    same random draw of directions for every run, normalized to each run's parameters."""
    loss, like, dtype, float64 = _training_loss(config, task)
    with jax.enable_x64(float64):
        k1, k2 = jax.random.split(jax.random.key(DIRECTION_SEED))
        a1 = np.linspace(-RADIUS, RADIUS, POINTS_1D)
        a2 = np.linspace(-RADIUS, RADIUS, POINTS_2D)
        out = []
        for optimizer, run_id, row in chosen:
            params = kept.load(directory / kept.name(block_key(optimizer, task)), like, row)
            params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
            d1, d2 = filter_normalized(k1, params), filter_normalized(k2, params)
            out.append(Slices(optimizer, run_id, a1,
                              np.asarray(slice_1d(loss, params, d1, jnp.asarray(a1, dtype))),
                              a2, np.asarray(slice_2d(loss, params, d1, d2,
                                                      jnp.asarray(a2, dtype)))))
        return out


def pca_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-2 principal directions (2, P) of ``points`` (n, P), the points relative to
    the last one projected on them (n, 2), and each direction's share of the variance."""
    relative = points - points[-1]
    _, singular, directions = np.linalg.svd(relative - relative.mean(axis=0),
                                            full_matrices=False)
    directions = np.pad(directions[:2], ((0, max(0, 2 - len(directions[:2]))), (0, 0)))
    variance = singular**2
    explained = np.pad(variance[:2], (0, max(0, 2 - len(variance[:2])))) / max(
        variance.sum(), np.finfo(float).tiny)
    return directions, relative @ directions.T, explained


def task_paths(directory: Path, config: dict, task: str, chosen: list[tuple[str, str, int]]
               ) -> list[PathPlane]:
    """Each chosen run's kept path on its own PCA plane, with the training loss on a
    ``POINTS_2D`` x ``POINTS_2D`` grid that covers the path with a margin."""
    loss, like, dtype, float64 = _training_loss(config, task)
    out = []
    with jax.enable_x64(float64):
        for optimizer, run_id, row in chosen:
            runs, steps, path = kept.load_path(directory / kept.path_name(
                block_key(optimizer, task)), like)
            if row not in runs:
                continue
            mine = _take(path, int(np.flatnonzero(runs == row)[0]))
            flat = np.stack([ravel_pytree(_take(mine, k))[0] for k in range(len(steps))])
            directions, coords, explained = pca_plane(flat.astype(np.float64))
            reach = 1.25 * np.maximum(np.abs(coords).max(axis=0), 1e-6)  # per direction
            final = jax.tree.map(lambda a: jnp.asarray(a, dtype), _take(mine, -1))
            unravel = ravel_pytree(final)[1]
            d1, d2 = (unravel(jnp.asarray(d * r, dtype))
                      for d, r in zip(directions, reach, strict=True))
            grid = np.linspace(-1.0, 1.0, POINTS_2D)
            values = np.asarray(slice_2d(loss, final, d1, d2, jnp.asarray(grid, dtype)))
            out.append(PathPlane(optimizer, run_id, steps, coords, explained,
                                 (grid * reach[0], grid * reach[1]), values))
    return out


def _take(tree: Any, index: int) -> Any:
    """Row ``index`` of every leaf."""
    return jax.tree.map(lambda a: a[index], tree)
