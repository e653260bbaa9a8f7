"""``optbench report DIR``: a results folder -> ``DIR/report/`` with PNG figures (SVG copies
too with ``--svg``), the convergence tables (Markdown, CSV, LaTeX) and an offline ``index.html``.

The report is drawn into a hidden folder beside its destination and renamed into place, so a
failure leaves the previous report (or none), never half of one. It reads the store and
writes nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.memo import code_digest
from optbench.report.data import ReportData, load
from optbench.store import REPORT, ResultStore
from optbench.store import REPORT_MARKER as MARKER

INPUTS = "inputs "  # the marker's line naming the digest of what the report was drawn from
DRAWN_BY = ("numpy", "pandas", "scipy", "matplotlib", "seaborn", "jax")


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
    each PNG; ``progress`` is told how
    many figures are drawn as they are.
    """
    if workers is not None and workers < 1:
        raise ReportError(f"--workers: {workers} is not an integer >= 1")
    out = Path(out) if out is not None else Path(directory) / REPORT
    inputs = (_inputs(Path(directory), out, (animate, target, vector))
              if ResultStore(directory).meta_path.is_file() else "")  # else load says why
    if _up_to_date(out, inputs):
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
        (staging / MARKER).write_text("\n".join(
            ["written by optbench report", f"{INPUTS}{inputs}", *files]) + "\n")
        _readable(staging)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / "index.html"


def _inputs(directory: Path, out: Path, options: tuple) -> str:
    """A digest of what the report is drawn from: the options, optbench's sources, the
    versions of the libraries that draw, and every file of the results folder but the
    report's own and hidden ones (locks, temporary files)."""
    digest = hashlib.sha256(code_digest(DRAWN_BY) + repr(options).encode())
    skip = out.resolve()
    for folder, subfolders, names in os.walk(directory):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")
                               and (Path(folder) / d).resolve() != skip)
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(folder, name)
            digest.update(str(path.relative_to(directory)).encode())
            with contextlib.suppress(OSError):  # removed meanwhile: the digest differs
                digest.update(path.read_bytes())
    return digest.hexdigest()


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
    return workers if workers is not None else min(4, os.cpu_count() or 1)


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
