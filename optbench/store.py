"""The result store: one folder per sweep, written atomically, resumable block by block.

Layout of ``results/<sweep-name>/``::

    meta.json              normalized config, its hash, versions, device, timings
    blocks/<block>/        one finished (optimizer, task) block: runs, curves,
                           trajectories (parquet) and timing.json; ``runs.parquet`` is
                           written last, so its presence marks the block complete
    runs.parquet  runs.csv                 one tidy row per run (all blocks)
    curves.parquet  curves.csv             run_id, step, f_gap (f - f_min), strided
    convergence.md  .csv  .tex             the convergence tables (optbench.analysis)
    trajectories.parquet  trajectories.csv run_id, step, x0..x{d-1} (tasks with dim <= 3)

Every file is written to a temporary name in the same folder and renamed into place, so a
killed sweep leaves either a whole file or none. Re-opening a folder with the same config
skips the finished blocks; a different config is refused unless ``force``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from optbench.config import SweepConfig
from optbench.errors import OptbenchError

TABLES = ("runs", "curves", "trajectories")
OWNED_FOLDERS = ("blocks", "reference-optax")
OWNED_FILES = ("meta.json",)
OWNED_STEMS = (*TABLES, "convergence")


class StoreConflict(OptbenchError, ValueError):
    """The folder holds results of a different config."""


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str)))


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as parquet or CSV (by the path's suffix), atomically."""
    if path.suffix == ".csv":
        write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    else:
        write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def target_column(target: float) -> str:
    """The runs-table column holding the steps to reach ``target``, e.g. ``steps_to_0.001``."""
    return f"steps_to_{target:g}"


def block_key(optimizer: str, task: str) -> str:
    """A folder name for the (optimizer, task) block; one-to-one, because the config admits
    only folder-safe labels without ``__``, distinct ignoring case."""
    return f"{optimizer}__{task}"


class ResultStore:
    """A sweep's results folder."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    @property
    def meta_path(self) -> Path:
        return self.directory / "meta.json"

    def meta(self) -> dict:
        return json.loads(self.meta_path.read_text())

    @classmethod
    def open(cls, directory: str | Path, config: SweepConfig, force: bool = False,
             meta: dict | None = None) -> ResultStore:
        """Open (or create) the folder for ``config``; refuse one holding another config."""
        store = cls(directory)
        digest = config.digest()
        if store.meta_path.exists():
            found = store.meta().get("config_hash")
            if found != digest and not force:
                raise StoreConflict(
                    f"{store.directory} holds results of another config (hash {found}, this "
                    f"one {digest}); use another folder or --force to replace them")
            if found != digest:
                store.clear()
        elif store.directory.exists() and any(store.directory.iterdir()):
            raise StoreConflict(f"{store.directory} is not empty and holds no optbench results "
                                "(no meta.json); choose an empty or new folder")
        if not store.meta_path.exists():
            write_json(store.meta_path, {"config_hash": digest, "config": config.to_dict(),
                                         **(meta or {}), "blocks": {}})
        return store

    def clear(self) -> None:
        """Delete what a sweep wrote here, and nothing else."""
        for name in OWNED_FOLDERS:
            shutil.rmtree(self.directory / name, ignore_errors=True)
        for path in self.directory.iterdir():
            if path.is_file() and (path.name in OWNED_FILES or path.stem in OWNED_STEMS):
                path.unlink()

    def block_dir(self, key: str) -> Path:
        return self.directory / "blocks" / key

    def is_done(self, key: str) -> bool:
        return (self.block_dir(key) / "runs.parquet").exists()

    def write_block(self, key: str, frames: dict[str, pd.DataFrame | None],
                    timing: dict) -> None:
        """Store one finished block; ``runs`` goes last and marks it complete."""
        folder = self.block_dir(key)
        write_json(folder / "timing.json", timing)
        for name in ("curves", "trajectories"):
            if frames.get(name) is not None:
                write_frame(folder / f"{name}.parquet", frames[name])
        write_frame(folder / "runs.parquet", frames["runs"])

    def read_block(self, key: str, table: str) -> pd.DataFrame | None:
        path = self.block_dir(key) / f"{table}.parquet"
        return pd.read_parquet(path) if path.exists() else None

    def block_timing(self, key: str) -> dict:
        return json.loads((self.block_dir(key) / "timing.json").read_text())

    def finalize(self, keys: list[str], meta_updates: dict, csv: bool = False) -> None:
        """Combine the blocks (in ``keys`` order) into the sweep's tables and update meta.
        ``runs`` gets a CSV copy always; curves and trajectories only with ``csv``."""
        for table in TABLES:
            parts = [self.read_block(key, table) for key in keys]
            parts = [p for p in parts if p is not None]
            if not parts:
                continue
            frame = pd.concat(parts, ignore_index=True)
            write_frame(self.directory / f"{table}.parquet", frame)
            if csv or table == "runs":
                write_frame(self.directory / f"{table}.csv", frame)
        meta = self.meta()
        meta.update(meta_updates)
        meta["blocks"] = {key: self.block_timing(key) for key in keys}
        write_json(self.meta_path, meta)

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.directory / f"{name}.parquet")
