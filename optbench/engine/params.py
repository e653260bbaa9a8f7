"""Kept parameters (``keep_params = true``): each block's final parameters as one ``.npz``
in the results folder, ``params/<block key>.npz``, one named array per pytree leaf with the
run axis first (row i is run i of the block, ``run_id`` ``<optimizer>/<task>/<i>``).

With ``keep_params = "best"`` the runs of the block's best setting also keep their path:
``params/<block key>.path.npz`` holds each leaf with axes (run, record point, ...), the
block's rows of those runs (``run``) and the recorded steps (``step``).

Leaves are named by their pytree path (``0/w`` for ``params[0]["w"]``), so that a reader
rebuilds the tree from the task's own initial parameters (:func:`load`, :func:`load_path`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import jax
import numpy as np

FOLDER = "params"


RUN, STEP = "run", "step"  # the path file's arrays beside the leaves


def name(key: str) -> str:
    """The store path of a block's kept parameters."""
    return f"{FOLDER}/{key}.npz"


def path_name(key: str) -> str:
    """The store path of a block's kept parameter paths."""
    return f"{FOLDER}/{key}.path.npz"


def leaf_name(path: tuple) -> str:
    """A leaf's pytree path as a plain name, e.g. ``0/w``."""
    parts = []
    for entry in path:
        for attribute in ("key", "idx", "name"):
            if hasattr(entry, attribute):
                parts.append(str(getattr(entry, attribute)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def flatten(tree: Any) -> dict[str, np.ndarray]:
    """The pytree's leaves as named numpy arrays."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {leaf_name(path): np.asarray(leaf) for path, leaf in leaves}


def writer(tree: Any, **extra: np.ndarray):
    """A writer of ``tree`` (and the ``extra`` arrays) as ``.npz`` for
    :meth:`optbench.store.ResultStore.write`."""
    arrays = {**flatten(tree), **extra}

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # to a buffer: savez would add ".npz" to the temp name
        tmp.write_bytes(buffer.getvalue())

    return write


def load(path: str | Path, like: Any, run: int | None = None) -> Any:
    """The kept parameters at ``path`` in the structure of ``like`` (e.g. the task's initial
    parameters); all runs (run axis first), or only run ``run``."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    with np.load(path) as stored:
        arrays = [stored[leaf_name(p)] for p, _ in leaves]
    if run is not None:
        arrays = [a[run] for a in arrays]
    return jax.tree_util.tree_unflatten(treedef, arrays)


def load_path(path: str | Path, like: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """The kept path at ``path``: the block rows of its runs, the recorded steps, and the
    parameters in the structure of ``like``, each leaf with axes (run, record point, ...)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    with np.load(path) as stored:
        arrays = [stored[leaf_name(p)] for p, _ in leaves]
        runs, steps = stored[RUN], stored[STEP]
    return runs, steps, jax.tree_util.tree_unflatten(treedef, arrays)
