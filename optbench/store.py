"""The result store: one folder per sweep, written atomically, resumable block by block.

Layout of ``results/<sweep-name>/``::

    meta.json              normalized config, its hash, versions, device, timings
    manifest.jsonl         every file the sweep wrote, with its size and SHA-256 (one JSON
                           record a line, appended before the file is renamed into place),
                           and those it removed since (a rerun's stale kept parameters)
    blocks/<block>/        one finished (optimizer, task) block: runs, curves,
                           trajectories (parquet) and timing.json (compile and run
                           seconds, seconds per step); ``runs.parquet`` is written last,
                           so its presence marks the block complete
    runs.parquet  runs.csv                 one tidy row per run (all blocks)
    curves.parquet  curves.csv             run_id, step, f_gap (f - f_min), strided
    convergence.md  .csv  .tex             the convergence tables (optbench.analysis)
    trajectories.parquet  trajectories.csv run_id, step, x0..x{d-1} (tasks with dim <= 3)
    .optbench.lock         held (``flock``) by the sweep writing here; holds its PID

Every file is written to a temporary ``.optbench-*.tmp`` beside it, flushed to disk and
renamed into place (then the folder is flushed), so a killed sweep leaves either a whole file
or none, and files follow the user's umask. Re-opening a folder with the same config skips the
finished blocks whose files match the manifest (a damaged block is recomputed, with a
warning); a different config is refused unless ``force``, which deletes exactly the files the
manifest lists and the store's temporary files, and no folder holding anything else.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow

from optbench.errors import OptbenchError

if TYPE_CHECKING:  # readers of a store load no config or optimizer code (nor JAX)
    from optbench.config import SweepConfig

TABLES = ("runs", "curves", "trajectories")
BLOCK_FILES = (*(f"{t}.parquet" for t in TABLES), "timing.json")
MANIFEST = "manifest.jsonl"
LOCK = ".optbench.lock"
TMP_PREFIX = ".optbench-"
REFERENCE = "reference-optax"  # a nested store (``optbench table --reference optax``)
REPORT = "report"  # ``optbench report``'s folder, derived from the store
REPORT_MARKER = ".optbench-report"  # marks a folder the report wrote, which it may replace
# what sweeps wrote before the manifest existed (exact names: a user's runs.xlsx is not ours)
LEGACY_FILES = ("meta.json", *(f"{t}.{ext}" for t in TABLES for ext in ("parquet", "csv")),
                *(f"convergence.{ext}" for ext in ("md", "csv", "tex")))


class StoreConflict(OptbenchError, ValueError):
    """The folder holds results of a different config, or files that are not results."""


class StoreDamaged(OptbenchError, ValueError):
    """A result file is truncated or unreadable; the message names it and how to recover."""


class StoreLocked(OptbenchError):
    """Another process is writing into the folder."""


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[Path], Any],
                 before_rename: Callable[[Path], None] | None = None) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path`` (created with the umask's mode),
    flush it to disk, call ``before_rename(tmp)``, rename it into place and flush the folder:
    a crash leaves the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TMP_PREFIX}{path.name}.{secrets.token_hex(4)}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        _fsync(tmp)
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dumps(data: Any) -> str:
    """JSON of plain data only (dict, list, str, int, float, bool, None; finite numbers):
    anything else is a bug to fix where it was made, not a value to stringify."""
    return json.dumps(data, indent=2, allow_nan=False)


def write_json(path: Path, data: Any) -> None:
    text = dumps(data)
    write_atomic(path, lambda tmp: tmp.write_text(text))


def frame_writer(frame: pd.DataFrame, suffix: str) -> Callable[[Path], Any]:
    """A writer of ``frame`` as parquet or CSV (by ``suffix``), for :func:`write_atomic`."""
    if suffix == ".csv":
        return lambda tmp: frame.to_csv(tmp, index=False)
    return lambda tmp: frame.to_parquet(tmp, index=False)


def _ends_mid_line(path: Path) -> bool:
    """Whether the file exists and its last line has no newline (a write was cut short)."""
    try:
        with path.open("rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except FileNotFoundError:
        return False


STEPS_TO, SECONDS_TO = "steps_to_", "seconds_to_"
SECONDS_PER_STEP = "seconds_per_step"  # a block's run device-seconds / the steps its runs ran
# (its runs and any padding, engine.run.RunAxis)


def target_column(target: float) -> str:
    """The runs-table column holding the steps to reach ``target``, e.g. ``steps_to_0.001``."""
    return f"{STEPS_TO}{target:g}"


def seconds_column(target: float) -> str:
    """The runs-table column holding the seconds to reach ``target``, e.g.
    ``seconds_to_0.001``."""
    return f"{SECONDS_TO}{target:g}"


def with_seconds(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``seconds_per_step`` (its block's; NaN in a store written before blocks
    recorded it) and, right after each ``steps_to_<target>``, ``seconds_to_<target>``: the
    steps times the block's seconds per step. A block's runs are one compiled program, so
    they share one time per step (a run's seconds are its steps times it)."""
    per_step = (runs[SECONDS_PER_STEP] if SECONDS_PER_STEP in runs
                else pd.Series(np.nan, runs.index, dtype=float))
    columns = {}
    for name in runs:
        columns[name] = runs[name]
        if name.startswith(STEPS_TO):
            columns[SECONDS_TO + name.removeprefix(STEPS_TO)] = runs[name] * per_step
    columns.setdefault(SECONDS_PER_STEP, per_step)
    return pd.DataFrame(columns, index=runs.index)


def block_key(optimizer: str, task: str) -> str:
    """A folder name for the (optimizer, task) block; one-to-one, because the config admits
    only folder-safe labels without ``__``, distinct ignoring case."""
    return f"{optimizer}__{task}"


def file_digest(path: Path) -> tuple[int, str]:
    """The size and SHA-256 of a file."""
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return path.stat().st_size, sha.hexdigest()


@dataclass
class Manifest:
    """What ``manifest.jsonl`` records: the sweep's config hash and config, and each file
    (relative path -> size, SHA-256; the last record of a path wins, and a file removed
    since is not listed)."""

    config_hash: str | None = None
    config: dict | None = None
    files: dict[str, tuple[int, str]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        """The manifest at ``path``, or None if there is none. A line cut short by a kill
        (the last one) is skipped: its file was not renamed into place yet."""
        if not path.exists():
            return None
        manifest = cls()
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                if "sweep" in record:
                    manifest.config_hash, manifest.config = record["sweep"], record["config"]
                elif "file" in record:
                    if _inside(record["file"]):
                        manifest.files[record["file"]] = (record["size"], record["sha256"])
                elif "removed" in record:
                    manifest.files.pop(record["removed"], None)
            except (json.JSONDecodeError, TypeError, KeyError):
                continue  # not a record this store wrote whole
        return manifest


@dataclass(frozen=True)
class CheckReport:
    """What ``optbench store check`` found: the manifest's file count (None: a folder from
    before manifests), damaged files (path -> why) and leftover temporary files."""

    directory: Path
    files: int | None
    damaged: dict[str, str]
    leftovers: list[str]
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.leftovers

    def text(self) -> str:
        if self.files is None:
            return f"{self.directory}: written before manifests; nothing to verify"
        lines = [f"{self.directory}: {self.files} files in the manifest, "
                 + ("all intact" if not self.damaged else f"{len(self.damaged)} damaged")]
        lines += [f"  damaged: {name} ({why})" for name, why in self.damaged.items()]
        lines += [f"  leftover temporary file: {name}" for name in self.leftovers]
        only_missing = not self.leftovers and all(w == "missing" for w in self.damaged.values())
        if self.repaired and not self.ok:
            lines.append("repaired: deleted the damaged files and leftovers; run the sweep "
                         "again with the same config to recompute them")
        elif not self.ok and only_missing:  # nothing to delete: --repair would do nothing
            blocks = sorted({n.split("/")[1] for n in self.damaged if n.startswith("blocks/")})
            lines.append("to recover: run the sweep again with the same config; it "
                         + (f"recomputes the blocks {', '.join(blocks)} and " if blocks else "")
                         + "rebuilds the combined tables")
        elif not self.ok:
            lines.append("to recover: run the sweep again with the same config (it recomputes "
                         "damaged blocks and rebuilds meta.json and the combined tables), or "
                         "--repair to delete what is damaged first")
        return "\n".join(lines)


class ResultStore:
    """A sweep's results folder."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._lock_fd: int | None = None
        self.cleared: list[str] = []  # what opening with --force deleted (relative paths)
        _refuse_a_file(self.directory)

    @property
    def meta_path(self) -> Path:
        return self.directory / "meta.json"

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def manifest(self) -> Manifest | None:
        return Manifest.read(self.manifest_path)

    def meta(self) -> dict:
        """The folder's ``meta.json``; a damaged one is an error naming it and the remedy."""
        try:
            meta = json.loads(self.meta_path.read_text())
            if not isinstance(meta, dict) or "config_hash" not in meta:
                raise json.JSONDecodeError("not a sweep's meta.json", "", 0)
            return meta
        except FileNotFoundError:
            raise StoreConflict(f"{self.directory} holds no sweep results (no meta.json)"
                                ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            if not self.manifest_path.exists():  # no record of the config to rebuild from
                raise StoreDamaged(f"{self.meta_path} is damaged ({error}) in a folder "
                                   "written before manifests; rerun the sweep with --force "
                                   "to start again") from None
            raise StoreDamaged(f"{self.meta_path} is damaged ({error}); rerun the sweep with "
                               "the same config to rebuild it from the intact blocks, or "
                               "with --force to start again") from None

    # ---- opening, locking, clearing ---------------------------------------------------

    @classmethod
    def open(cls, directory: str | Path, config: SweepConfig, force: bool = False,
             meta: dict | None = None) -> ResultStore:
        """Lock and open (or create) the folder for ``config``; refuse one holding another
        config unless ``force``. A damaged or missing ``meta.json`` is rebuilt when the
        manifest shows that the folder holds this config's results. Close it when done."""
        store = cls(directory)
        new_folder = not store.directory.exists()
        new_lock = not (store.directory / LOCK).exists()
        store.lock()
        try:
            store._prepare(config, force, meta or {})
        except BaseException:
            if new_lock:  # leave a refused folder as it was
                (store.directory / LOCK).unlink(missing_ok=True)
            store.close()
            if new_folder:
                _remove_if_empty(store.directory)
            raise
        return store

    def _prepare(self, config: SweepConfig, force: bool, meta: dict) -> None:
        digest = config.digest()
        self.remove_temporary()
        manifest = self.manifest()
        found, found_config, damaged = None, None, None
        try:
            if self.meta_path.exists():
                existing = self.meta()  # not `meta`: that is this run's, written below
                found, found_config = existing.get("config_hash"), existing.get("config")
        except StoreDamaged as error:
            damaged = error
        if found is None and manifest is not None:
            found, found_config = manifest.config_hash, manifest.config
        if found is None and damaged is not None:
            if not force:
                raise damaged
            self.cleared = self.clear()  # a folder from before manifests: its usual names
        elif found is None and self._foreign_entries():
            raise StoreConflict(
                f"{self.directory} is not empty and holds no optbench results (no meta.json or "
                f"{MANIFEST}); choose an empty or new folder")
        elif found is not None and found != digest:
            if not force:
                raise StoreConflict(
                    f"{self.directory} holds results of another config (hash {found}, this "
                    f"one {digest}; {first_difference(found_config, _as_json(config.to_dict()))}); "
                    "use another folder or --force to replace them")
            self.cleared = self.clear()
        fresh = found != digest
        if fresh:
            self._append({"sweep": digest, "config": config.to_dict()})
        elif manifest is None:  # a folder from before manifests: adopt its files
            self._adopt(digest, config.to_dict())
        if not fresh and (damaged is not None or not self.meta_path.exists()):
            warnings.warn(f"{self.meta_path} was damaged or missing; rebuilt from the config "
                          "(the intact blocks are kept)", stacklevel=4)
        if fresh or damaged is not None or not self.meta_path.exists():
            self.write_json("meta.json", {"config_hash": digest, "config": config.to_dict(),
                                          **meta, "blocks": {}})

    def _foreign_entries(self) -> list[Path]:
        if not self.directory.exists():
            return []
        return [p for p in self.directory.iterdir()
                if p.name != LOCK and not _is_temporary(p)]

    def lock(self) -> None:
        """Take the folder's exclusive lock (``flock``, released by the kernel if the process
        dies, so a lock file left by a killed sweep is stale and taken over)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise StoreConflict(f"cannot write into {self.directory} ({error.strerror}); "
                                "choose a folder you can write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(f"{self.directory} is being written by another optbench sweep "
                              f"(PID {holder}); wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def close(self) -> None:
        """Release the lock (the lock file stays: removing it would race with a waiter; it
        is emptied, so that a reader sees nobody writing)."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def writer(self) -> int | None:
        """The PID of the sweep writing this folder now, or None: the lock file names a
        live process and its lock is held (a killed sweep's PID may have been reused). The
        lock is tried only then, and shared for an instant."""
        path = self.directory / LOCK
        try:
            pid = int(path.read_text().strip() or 0)
        except (OSError, ValueError):
            return None
        if pid <= 0 or pid == os.getpid():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # a killed sweep's stale lock file
        except PermissionError:
            pass  # alive, another user's
        return pid if _locked(path) else None

    def owned_files(self) -> list[str]:
        """The files this store wrote (relative paths): the manifest's, or for a folder
        written before manifests, the exact names sweeps used then."""
        manifest = self.manifest()
        if manifest is not None:
            return [*manifest.files, MANIFEST]
        return self._legacy_files()

    def _legacy_files(self) -> list[str]:
        blocks = self.directory / "blocks"
        legacy = list(LEGACY_FILES)
        if blocks.is_dir():
            legacy += [f"blocks/{b.name}/{name}" for b in blocks.iterdir() for name in BLOCK_FILES]
        return legacy

    def clear(self) -> list[str]:
        """Delete exactly what a sweep wrote here (and its temporary files), its report and
        the folders it made if they are left empty; return the deleted files' relative
        paths. Nothing a user put here is touched."""
        deleted = []
        nested = self.directory / REFERENCE
        if (nested / MANIFEST).exists() or (nested / "meta.json").exists():
            with ResultStore(nested) as reference:
                reference.lock()  # not while `table --reference` writes there
                deleted += [f"{REFERENCE}/{name}" for name in reference.clear()]
                (nested / LOCK).unlink()  # ours: the folder can go once it is empty
        report = self.directory / REPORT
        if (report / REPORT_MARKER).is_file():  # it describes the results being deleted
            deleted += [f"{REPORT}/{p.relative_to(report).as_posix()}"
                        for p in report.rglob("*") if p.is_file()]
            shutil.rmtree(report)
        self.remove_temporary()
        owned = self.owned_files()
        for name in sorted(owned, key=lambda n: n == MANIFEST):  # the manifest last
            if (self.directory / name).is_file():
                deleted.append(name)
            (self.directory / name).unlink(missing_ok=True)
        folders = {(self.directory / name).parent for name in owned} | {nested}
        for folder in sorted(folders, key=lambda p: -len(p.parts)):
            if folder != self.directory:
                _remove_if_empty(folder)
        _remove_if_empty(self.directory / "blocks")
        return deleted

    def _temporaries(self) -> list[Path]:
        blocks = self.directory / "blocks"
        folders = [self.directory, *(blocks.iterdir() if blocks.is_dir() else ())]
        return [p for folder in folders if folder.is_dir() for p in folder.iterdir()
                if _is_temporary(p)]

    def remove_temporary(self) -> list[Path]:
        """Delete the temporary files killed writes left here and in the block folders."""
        leftovers = self._temporaries()
        for path in leftovers:
            path.unlink(missing_ok=True)
        return leftovers

    # ---- writing -----------------------------------------------------------------------

    def _append(self, record: dict) -> None:
        """Append one record to the manifest and flush it to disk."""
        # a killed write may have left a cut-short last line: start on a line of our own
        start = "\n" if _ends_mid_line(self.manifest_path) else ""
        with self.manifest_path.open("a") as handle:
            handle.write(start + json.dumps(record, allow_nan=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _adopt(self, digest: str, config: dict) -> None:
        """Start the manifest of a folder written before manifests: its config and the files
        sweeps wrote then, so that a later ``--force`` deletes them too."""
        self._append({"sweep": digest, "config": config})
        for name in self._legacy_files():
            if (self.directory / name).is_file():
                size, sha = file_digest(self.directory / name)
                self._append({"file": name, "size": size, "sha256": sha})

    def write(self, name: str, write: Callable[[Path], Any]) -> None:
        """Write the file ``name`` (relative to the folder) atomically, recorded in the
        manifest with its size and hash before it is renamed into place (a folder written
        before manifests adopts its files first)."""
        if not self.manifest_path.exists() and self.meta_path.exists():
            meta = self.meta()
            self._adopt(meta["config_hash"], meta["config"])

        def record(tmp: Path) -> None:
            size, sha = file_digest(tmp)
            self._append({"file": name, "size": size, "sha256": sha})

        write_atomic(self.directory / name, write, before_rename=record)

    def remove(self, name: str) -> None:
        """Delete the file ``name`` (relative to the folder) that this store wrote, and record
        that in the manifest, so that a check does not find it missing."""
        path = self.directory / name
        if path.is_file():
            path.unlink()
            self._append({"removed": name})

    def write_json(self, name: str, data: Any) -> None:
        text = dumps(data)
        self.write(name, lambda tmp: tmp.write_text(text))

    def write_frame(self, name: str, frame: pd.DataFrame) -> None:
        self.write(name, frame_writer(frame, Path(name).suffix))

    # ---- blocks ------------------------------------------------------------------------

    def block_dir(self, key: str) -> Path:
        return self.directory / "blocks" / key

    def is_done(self, key: str) -> bool:
        return (self.block_dir(key) / "runs.parquet").exists()

    def planned_blocks(self) -> list[str]:
        """The block keys the sweep planned (recorded in meta.json; a rebuilt meta.json
        knows only the finished ones)."""
        meta = self.meta()
        return list(meta.get("planned_blocks") or meta["blocks"])

    def partial_warning(self) -> str | None:
        """What a reader should say when a sweep is writing this folder right now."""
        pid = self.writer()
        if pid is None:
            return None
        planned = self.planned_blocks()
        done = sum(self.is_done(key) for key in planned)
        return (f"{self.directory} is being written by PID {pid} ({done} of {len(planned)} "
                "blocks finished): what follows is partial")

    def damage(self, prefix: str = "") -> dict[str, str]:
        """The manifest's files under ``prefix`` that are missing or differ from what was
        written: path -> why. Empty for a folder without a manifest."""
        manifest = self.manifest()
        found = {}
        for name, (size, sha) in (manifest.files.items() if manifest else ()):
            path = self.directory / name
            if not name.startswith(prefix):
                continue
            if not path.is_file():
                found[name] = "missing"
                continue
            actual_size, actual_sha = file_digest(path)
            if actual_size != size:
                found[name] = f"{actual_size} bytes, {size} written"
            elif actual_sha != sha:
                found[name] = "contents changed"
        return found

    def damaged_blocks(self) -> dict[str, list[str]]:
        """Block key -> its damaged files, each as 'PATH (why)' (one pass over the manifest)."""
        found: dict[str, list[str]] = {}
        for name, why in self.damage("blocks/").items():
            found.setdefault(name.split("/")[1], []).append(f"{name} ({why})")
        return found

    def check(self) -> CheckReport:
        """Compare the folder with its manifest; reads only."""
        manifest = self.manifest()
        if manifest is None and not self.meta_path.exists():
            raise StoreConflict(f"{self.directory} holds no optbench results (no meta.json or "
                                f"{MANIFEST})")
        leftovers = [p.relative_to(self.directory).as_posix() for p in self._temporaries()]
        return CheckReport(self.directory, len(manifest.files) if manifest else None,
                           self.damage(), leftovers)

    def repair(self) -> CheckReport:
        """Delete the damaged files (a damaged block's files all go) and the leftovers, and
        rebuild a damaged ``meta.json`` from the manifest's config; rerunning the sweep then
        recomputes what was deleted."""
        report = self.check()
        with self:
            self.lock()
            self.remove_temporary()
            for name in report.damaged:
                parts = name.split("/")
                if parts[0] == "blocks" and len(parts) == 3:
                    self.discard_block(parts[1])
                (self.directory / name).unlink(missing_ok=True)
            manifest = self.manifest()
            if not self.meta_path.exists() and manifest and manifest.config_hash:
                self.write_json("meta.json", {"config_hash": manifest.config_hash,
                                              "config": manifest.config, "blocks": {}})
        return CheckReport(report.directory, report.files, report.damaged, report.leftovers,
                           repaired=True)

    def discard_block(self, key: str) -> None:
        """Delete a block's files (those this store wrote), so that it is computed again."""
        for name in BLOCK_FILES:
            (self.block_dir(key) / name).unlink(missing_ok=True)

    def write_block(self, key: str, frames: dict[str, pd.DataFrame | None],
                    timing: dict) -> None:
        """Store one finished block; ``runs`` goes last and marks it complete."""
        folder = f"blocks/{key}"
        self.write_json(f"{folder}/timing.json", timing)
        for name in ("curves", "trajectories"):
            if frames.get(name) is not None:
                self.write_frame(f"{folder}/{name}.parquet", frames[name])
        self.write_frame(f"{folder}/runs.parquet", frames["runs"])

    def read_block(self, key: str, table: str) -> pd.DataFrame | None:
        path = self.block_dir(key) / f"{table}.parquet"
        return self._read(path, table) if path.exists() else None

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
            self.write_frame(f"{table}.parquet", frame)
            if csv or table == "runs":
                self.write_frame(f"{table}.csv", frame)
        meta = self.meta()
        meta.update(meta_updates)
        meta["blocks"] = {key: self.block_timing(key) for key in keys}
        self.write_json("meta.json", meta)

    # ---- reading -----------------------------------------------------------------------

    def _read_parquet(self, path: Path) -> pd.DataFrame:
        try:
            return pd.read_parquet(path)
        except FileNotFoundError:
            raise StoreDamaged(f"{path} is missing; rerun the sweep with the same config to "
                               "write it") from None
        except (pyarrow.ArrowException, OSError) as error:
            raise StoreDamaged(f"{path} is damaged ({str(error).splitlines()[0]}); rerun the "
                               "sweep with the same config to rebuild it") from None

    def _read(self, path: Path, table: str) -> pd.DataFrame:
        """One of the :data:`TABLES`; runs from any version read with the seconds columns
        (:func:`with_seconds`)."""
        frame = self._read_parquet(path)
        return with_seconds(frame) if table == "runs" else frame

    def table(self, name: str) -> pd.DataFrame:
        return self._read(self.directory / f"{name}.parquet", name)


def _inside(name: Any) -> bool:
    """Whether a manifest's file name is a relative path that stays in its folder: a
    foreign or damaged manifest must not make --force or --repair delete anything else."""
    path = PurePosixPath(name) if isinstance(name, str) else None
    return path is not None and not path.is_absolute() and ".." not in path.parts


def _is_temporary(path: Path) -> bool:
    return path.name.startswith(TMP_PREFIX) and path.name.endswith(".tmp") and path.is_file()


def _locked(path: Path) -> bool:
    """Whether a process holds ``path``'s exclusive lock."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def first_difference(old: Any, new: Any, path: str = "") -> str:
    """Where two configs (plain data) first differ, e.g. ``steps: 100 there, 200 here``."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                return f"{where}: set there, unset here"
            if key not in old:
                return f"{where}: unset there, {new[key]!r} here"
            if old[key] != new[key]:
                return first_difference(old[key], new[key], where)
    elif (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                return first_difference(a, b, f"{path}[{i}]")
    return f"{path or 'the config'}: {old!r} there, {new!r} here"


def _as_json(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples as lists), to compare with stored data."""
    return json.loads(json.dumps(data))


def _refuse_a_file(directory: Path) -> None:
    """A :class:`StoreConflict` if ``directory``, or the nearest of its parents that exists,
    is not a folder (a results folder given as a file's path, or below one)."""
    for path in (directory, *directory.parents):
        if path.exists():
            if not path.is_dir():
                where = "is" if path == directory else f"lies below {path}, which is"
                raise StoreConflict(f"{directory} {where} a file, not a folder; give a "
                                    "folder for the results")
            return


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or already gone: leave it
        folder.rmdir()

