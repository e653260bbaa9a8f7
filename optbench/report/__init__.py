"""``optbench report DIR``: a results folder -> ``DIR/report/`` with PNG figures (SVG copies
too with ``--svg``), the convergence tables (Markdown, CSV, LaTeX) and an offline ``index.html``.

The report is drawn into a hidden folder beside its destination and renamed into place, so a
failure leaves the previous report (or none), never half of one. It reads the store and
writes nothing else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.machine import available_cores
from optbench.memo import Unkeyable, code_digest, sources_unchanged, versions
from optbench.report.data import ReportData, load, read_meta
from optbench.store import REPORT, ResultStore, file_digest
from optbench.store import REPORT_MARKER as MARKER

INPUTS = "inputs "  # the marker's line naming the digest of what the report was drawn from
# what draws the figures and evaluates the surfaces and datasets they show
DRAWN_BY = ("numpy", "pandas", "scipy", "matplotlib", "seaborn", "jax", "jaxlib", "mnist1d",
            "scikit-learn")


class ReportError(OptbenchError, ValueError):
    """The report cannot be written where asked."""


def write_report(directory: str | Path, out: str | Path | None = None, *,
                 animate: bool = False, target: float | None = None,
                 workers: int | None = None, vector: bool = False,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Write the report of the sweep in ``directory`` to ``out`` (default
    ``directory/report``) and return the path of its ``index.html``.

    ``animate`` adds an animated GIF per 2-D surface; ``target`` picks the success heatmap's
    target (default: the middle of the ladder); ``workers`` processes draw the figures
    (default: up to the CPU count, 1 draws in this process); ``vector`` writes an SVG beside
    each PNG; ``progress`` is told how many figures are drawn as they are. A report
    already drawn from the same inputs (:func:`_inputs`) is left as it is.
    """
    if workers is not None and workers < 1:
        raise ReportError(f"--workers: {workers} is not an integer >= 1")
    out = Path(out) if out is not None else Path(directory) / REPORT
    store, meta, _ = read_meta(directory)  # a folder that holds no sweep: a clear error
    inputs = _inputs(store, meta, out, (animate, target, vector))
    if inputs and _up_to_date(out, inputs):
        return out / "index.html"
    data = load(directory)
    if target is not None and target not in data.targets:
        raise ReportError(f"--target: {target:g} is not one of the sweep's targets "
                          f"({', '.join(f'{t:g}' for t in data.targets)})")
    staging = _staging(out)
    try:
        from optbench.report.build import Options, build

        build(data, staging, Options(animate, target, vector), _workers(workers), progress)
        files = sorted(path.name for path in staging.iterdir())
        known = [f"{INPUTS}{inputs}", *files] if inputs and sources_unchanged() else []
        (staging / MARKER).write_text("\n".join(["written by optbench report", *known]) + "\n")
        _readable(staging)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / "index.html"


def _inputs(store: ResultStore, meta: dict, out: Path, options: tuple) -> str:
    """A digest of everything the report shows: the options, optbench's sources, the
    versions of the libraries that draw, where the report goes (its links are relative),
    whether a sweep is writing the folder now, whether stage 1's report exists (a stage-2
    page links it), and every regular file of the results folder but hidden ones (locks,
    temporary files), reports and the manifest. "" (draw it) where that cannot be known: a
    landscape or task kind of the user's own is in use, or a source or file cannot be read."""
    if _user_code_in_use(meta["config"]):
        return ""
    stage1 = meta.get("stage1")
    stage1_report = (isinstance(stage1, dict) and "directory" in stage1
                     and (Path(stage1["directory"]) / REPORT / "index.html").is_file())
    try:
        digest = hashlib.sha256(code_digest() + versions(DRAWN_BY))
        digest.update(repr((options, str(out.resolve()), store.partial_warning(),
                            stage1_report)).encode())
        for path in _results_files(store.directory):
            if path == store.manifest_path:  # bookkeeping the report never reads
                continue
            size, sha = file_digest(path)
            digest.update(os.fsencode(path.relative_to(store.directory))
                          + f"\0{size}\0{sha}\0".encode())
    except (OSError, Unkeyable):
        return ""
    return digest.hexdigest()


def _results_files(directory: Path) -> list[Path]:
    """The regular files under ``directory`` (symbolic links followed, each folder once),
    but hidden ones and report folders, in a fixed order."""
    found, seen = [], set()
    for folder, subfolders, names in os.walk(directory, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen or (Path(folder) / MARKER).exists():
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found += [path for name in sorted(names) if not name.startswith(".")
                  and stat.S_ISREG((path := Path(folder, name)).stat().st_mode)]
    return found


def _user_code_in_use(config: dict) -> bool:
    """Whether a task of ``config`` uses a landscape or task kind that this process
    registered from outside optbench: code of the user's own, whose edits no digest sees.
    (Where their registries are not even imported, only optbench's own can be in use.)"""
    landscapes = sys.modules.get("optbench.landscapes.base")
    kinds = sys.modules.get("optbench.tasks.registry")
    modules = []
    for task in config.get("tasks", []):
        if landscapes is not None and task.get("landscape") in landscapes.names():
            modules.append(landscapes.defined_in(task["landscape"]))
        if kinds is not None and task.get("kind") in kinds.names():
            modules.append(getattr(kinds.get(task["kind"]).build, "__module__", None) or "")
    return any(not module.startswith("optbench.") for module in modules)


def _up_to_date(out: Path, inputs: str) -> bool:
    """Whether ``out`` holds a whole report drawn from ``inputs``: its marker names them and
    every file it wrote is still there."""
    try:
        lines = (out / MARKER).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return (len(lines) > 2 and lines[1] == f"{INPUTS}{inputs}"
            and all((out / name).is_file() for name in lines[2:]))


def _workers(workers: int | None) -> int:
    return workers if workers is not None else min(4, available_cores())


def _staging(out: Path) -> Path:
    """A fresh hidden folder beside ``out``; a clear error where that cannot be written."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ReportError(f"{out} is not empty and holds no optbench report; choose an empty "
                          "or new folder for --out")
    if not out.parent.is_dir():
        raise ReportError(f"cannot write the report to {out}: {out.parent} does not exist")
    try:
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as error:
        raise ReportError(f"cannot write the report to {out} ({error.strerror}); the results "
                          "folder may be read-only: pass --out FOLDER") from None


def _readable(folder: Path) -> None:
    """The permissions of ordinary new files (temporary files are created private)."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~mask)


def _swap(staging: Path, out: Path) -> None:
    """Put ``staging`` in place of ``out``, replacing a previous report."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["ReportData", "ReportError", "load", "write_report"]
