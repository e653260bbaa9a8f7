"""Kept parameters (``keep_params = true``): each block's final parameters as one ``.npz``
in the results folder, ``params/<block key>.npz``, one named array per pytree leaf with the
run axis first (row i is run i of the block, ``run_id`` ``<optimizer>/<task>/<i>``).

Leaves are named by their pytree path (``0/w`` for ``params[0]["w"]``), so that a reader
rebuilds the tree from the task's own initial parameters (:func:`load`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import jax
import numpy as np

FOLDER = "params"


def name(key: str) -> str:
    """The store path of a block's kept parameters."""
    return f"{FOLDER}/{key}.npz"


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


def writer(tree: Any):
    """A writer of ``tree`` as ``.npz`` for :meth:`optbench.store.ResultStore.write`."""
    arrays = flatten(tree)

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
