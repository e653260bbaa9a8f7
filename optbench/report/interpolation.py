"""Linear interpolation between kept parameters (Goodfellow, Vinyals & Saxe 2015, "Qualitatively
characterizing neural network optimization problems"; Lucas et al. 2021, "Analyzing monotonic
linear interpolation in neural network loss landscapes").

The training and test loss along θ(α) = (1 − α)·θ_a + α·θ_b at the :data:`POINTS` evenly
spaced α of [0, 1], both ends included:

* from a run's initial parameters θ₀ to its final ones θ_T, for every run of each
  optimizer's best setting;
* between two optimizers' final parameters from the same seed and start, which trained from
  the same θ₀ (a run's initial parameters depend on its task, seed and start only).

The **barrier** of a segment is the largest loss on the grid minus the larger of its two ends.
The ends are points of the grid, so it is never negative, and 0 exactly (not a rounding
residue) where the loss stays at or below its ends: on a monotonic interpolation (Lucas et
al.), but also on one that dips below its end and rises back to it.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from optbench.engine import params as kept
from optbench.engine.run import start_of
from optbench.report import slices
from optbench.store import block_key

POINTS = 21  # α = 0, 0.05, ..., 1
ALPHAS = np.linspace(0.0, 1.0, POINTS)
SPLITS = ("train", "test")
PAIR = " ↔ "  # between two optimizers' solutions, e.g. "gd ↔ adam"


def barrier(losses: np.ndarray) -> np.ndarray:
    """The largest value along the last axis minus the larger of its two ends: how far the
    loss rises on the segment above both of its ends (NaN where a value is NaN)."""
    losses = np.asarray(losses)
    return losses.max(axis=-1) - np.maximum(losses[..., 0], losses[..., -1])


@functools.partial(jax.jit, static_argnums=0)  # compiled once per program, for every run
def segment_losses(program: Any, args: Any, start: Any, end: Any, alphas: jax.Array
                   ) -> jax.Array:
    """(splits, alphas): each of :data:`SPLITS`' mean loss (``program.split_loss``) at
    ``(1 − α)·start + α·end``, vmapped over ``alphas``; exactly ``start`` at α = 0 and
    ``end`` at α = 1."""
    def at(alpha):
        point = jax.tree.map(lambda a, b: (1 - alpha) * a + alpha * b, start, end)
        return jnp.stack([program.split_loss(args, point, split) for split in SPLITS])

    return jax.vmap(at, out_axes=1)(alphas)


@functools.partial(jax.jit, static_argnums=(0, 4))
def initial_params(program: Any, args: Any, seed: int, start: int, dtype: Any) -> Any:
    """A run's initial parameters θ₀ as the engine draws them, cast to the sweep's dtype:
    the same for every optimizer on the task."""
    return start_of(program, dtype, seed, start, args).params


@dataclass
class Segment:
    """One kind of segment on a task over its runs: from initialization to an optimizer's
    solutions (``optimizers`` of one), or between two optimizers' solutions."""

    optimizers: tuple[str, ...]
    seeds: np.ndarray  # (runs,): each run's (each pair's) seed
    starts: np.ndarray  # (runs,)
    losses: np.ndarray  # (runs, splits, alphas)

    @property
    def label(self) -> str:
        return (f"θ₀ → {self.optimizers[0]}" if len(self.optimizers) == 1
                else PAIR.join(self.optimizers))

    @property
    def barriers(self) -> np.ndarray:
        """(runs, splits)."""
        return barrier(self.losses)


def _row(tree: Any, index: int) -> Any:
    return jax.tree.map(lambda a: a[index], tree)


def task_segments(directory: Path, config: dict, task: str, best_runs: pd.DataFrame,
                  optimizers: list[str]) -> list[Segment]:
    """Every optimizer's θ₀ → θ_T segments (all runs of its best setting with kept
    parameters), then every pair's θ_T ↔ θ_T segments on the (seed, start)s both ran."""
    runs = {o: slices.kept_runs(best_runs, task, o, directory) for o in optimizers}
    runs = {o: r for o, r in runs.items() if not r.empty}
    if not runs:
        return []
    e = slices.evaluator(config, task)
    with e.numerics():
        alphas = jnp.asarray(ALPHAS, e.dtype)
        finals = {o: kept.load(directory / kept.name(block_key(o, task)), e.like)
                  for o in runs}

        def final(optimizer: str, row: int) -> Any:
            return jax.tree.map(lambda a: jnp.asarray(a, e.dtype), _row(finals[optimizer], row))

        def losses(pairs) -> np.ndarray:
            return np.stack([np.asarray(segment_losses(e.program, e.args, a, b, alphas))
                             for a, b in pairs]).reshape(-1, len(SPLITS), POINTS)

        out = []
        for o, r in runs.items():
            ends = [(initial_params(e.program, e.args, s, k, e.dtype), final(o, row))
                    for s, k, row in zip(r["seed"], r["start"], r["row"], strict=True)]
            out.append(Segment((o,), r["seed"].to_numpy(), r["start"].to_numpy(),
                               losses(ends)))
        for a, b in itertools.combinations(runs, 2):
            both = runs[a].merge(runs[b], on=["seed", "start"], suffixes=("_a", "_b"))
            if both.empty:
                continue
            ends = [(final(a, ra), final(b, rb)) for ra, rb in zip(both["row_a"],
                                                                    both["row_b"], strict=True)]
            out.append(Segment((a, b), both["seed"].to_numpy(), both["start"].to_numpy(),
                               losses(ends)))
    return out


def barrier_table(task: str, segments: list[Segment]) -> pd.DataFrame:
    """One row per segment and split: the barrier's median, min and max over the runs (the
    pairs), how many, and the median loss at each end."""
    rows = []
    for s in segments:
        for k, split in enumerate(SPLITS):
            b = s.barriers[:, k]
            rows.append({
                "task": task, "segment": s.label, "split": split, "runs": len(b),
                "seeds": ", ".join(str(v) for v in sorted(set(s.seeds.tolist()))),
                "barrier_median": float(np.median(b)), "barrier_min": float(b.min()),
                "barrier_max": float(b.max()),
                "loss_at_0": float(np.median(s.losses[:, k, 0])),
                "loss_at_1": float(np.median(s.losses[:, k, -1])),
            })
    table = pd.DataFrame(rows)
    table.attrs["legend"] = LEGEND
    return table


LEGEND = (f"barrier: the largest loss along θ(α) = (1 − α)·θ_a + α·θ_b at {POINTS} evenly "
          "spaced α in [0, 1] minus the larger of its two ends (0: it never rises above "
          "them); its median, min and max over the runs (the pairs of one seed and start), "
          "and the median loss at each end. θ₀ → o: from each run's initialization to its "
          "final parameters, every run of o's best setting; a ↔ b: between a's and b's final "
          "parameters of one seed and start. split: the mean loss over that split, no "
          "dropout.")


def barriers(directory: str | Path) -> pd.DataFrame:
    """The barrier table (:func:`barrier_table`) of every network task with kept parameters
    in the results folder ``directory``, as the report writes it."""
    from optbench.report.data import load

    data = load(directory)
    tables = [barrier_table(task, task_segments(data.directory, data.config, task,
                                                data.best_runs(), data.optimizers))
              for task in slices.network_tasks(data.config, data.tasks)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
