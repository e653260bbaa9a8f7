"""Results derived from a sweep, kept in the user cache folder and keyed by the content of
their inputs and by the code that computes them, so that a result one command computed (the
convergence table, at the end of a sweep) is read back by the next (``optbench table``,
``optbench report``) instead of being computed again.

A key covers the function's name, every argument's content (a frame's index, column names,
dtypes and values), optbench's source files as this process imported them and the versions of
the libraries the result depends on, so a changed input, an edited source or an upgraded
library computes afresh; a result computed while the sources changed on disk is not kept. The
cache is only ever a shortcut: an argument it cannot key, an unreadable entry or an unwritable
folder computes as if it were absent. The newest :data:`KEEP` entries of each function are
kept, in :func:`folder` (``$OPTBENCH_MEMO=off`` keeps none).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pickle
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from optbench.paths import user_cache

FOLDER = "memo"  # in the user cache folder
KEEP = 64  # entries kept per function
LIBRARIES = ("numpy", "pandas", "scipy")  # whose versions enter every key
F = TypeVar("F", bound=Callable[..., Any])


class Unkeyable(TypeError):
    """An argument whose content the key cannot cover."""


def on_disk(function: F) -> F:
    """``function``, memoized in ``<folder()>/<its module and name>/``."""
    name = f"{function.__module__}.{function.__qualname__}"

    @functools.wraps(function)
    def memoized(*args: Any, **kwargs: Any) -> Any:
        where = folder()
        try:
            path = where / name / f"{key(name, args, kwargs)}.pkl" if where else None
        except Unkeyable:
            path = None
        result = _ABSENT if path is None else _load(path)
        if result is _ABSENT:
            result = function(*args, **kwargs)
            if path is not None and sources_unchanged():
                _keep(path, result)
        return result

    return memoized  # type: ignore[return-value]


def folder() -> Path | None:
    """``$OPTBENCH_MEMO`` (a folder, or ``off``), else ``<user cache>/optbench/memo``;
    None when off."""
    setting = os.environ.get("OPTBENCH_MEMO")
    if setting is None:
        return user_cache(FOLDER)
    return None if setting.lower() in ("", "0", "off", "false", "no") else Path(setting)


_ABSENT = object()


def _load(path: Path) -> Any:
    """The entry at ``path``, marked as used now; ``_ABSENT`` where it cannot be read."""
    try:
        result = pickle.loads(path.read_bytes())
    except Exception:  # absent, damaged, or just removed by another process
        return _ABSENT
    with contextlib.suppress(OSError):
        os.utime(path)  # among the newest, which are kept
    return result


def key(name: str, args: tuple, kwargs: dict) -> str:
    """A digest of the function's name, the arguments' content (each tagged with its type),
    optbench's sources and :data:`LIBRARIES`."""
    content = [name, [_canonical(a) for a in args],
               [[k, _canonical(v)] for k, v in sorted(kwargs.items())]]
    digest = hashlib.sha256(code_digest() + versions(LIBRARIES))
    digest.update(json.dumps(content).encode())
    return digest.hexdigest()[:32]


def _canonical(value: Any) -> Any:
    """``value`` as JSON that tells apart what Python tells apart (1 and 1.0 and True, a
    tuple and a list, the keys 1 and "1", -0.0 and 0.0); frames by :func:`_frame_digest`."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return ["frame", _frame_digest(value)]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int):
        return [type(value).__name__, value]
    if isinstance(value, float | np.floating | np.integer | np.bool_):
        return [type(value).__name__, repr(value.item() if isinstance(value, np.generic)
                                           else value)]
    if isinstance(value, list | tuple):
        return [type(value).__name__, [_canonical(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", [[_canonical(k), _canonical(v)] for k, v in value.items()]]
    raise Unkeyable(f"cannot key a {type(value).__name__}")


def _frame_digest(frame: Any) -> str:
    """A digest of a frame's index and columns: names, dtypes and values (bit for bit where
    numpy holds them; a categorical's categories and codes; others cell by cell, tagged by
    type)."""
    import numpy as np
    import pandas as pd

    digest = hashlib.sha256(json.dumps(_canonical(list(frame.index.names))).encode())
    for name, column in [("index", frame.index.to_series()), *frame.items()]:
        digest.update(json.dumps([_canonical(name), str(column.dtype), len(column)]).encode())
        if isinstance(column.dtype, pd.CategoricalDtype):
            digest.update(json.dumps([column.cat.ordered, _canonical(
                column.cat.categories.tolist())]).encode())
            column = column.cat.codes
        if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufcmM":
            digest.update(column.to_numpy().tobytes())
        else:  # None, NaN and NA alike: pandas reads them all as missing
            digest.update(json.dumps([v if type(v) is str else None if _missing(v)
                                      else _canonical(v)
                                      for v in column.to_numpy(dtype=object)]).encode())
    return digest.hexdigest()


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


@functools.cache
def code_digest() -> bytes:
    """optbench's source files (its landscapes too, kept apart in a checkout) as one digest:
    what a result computed from the same inputs may still differ by. Taken when optbench is
    imported; :func:`sources_unchanged` tells whether they changed since. An unreadable
    source is :class:`Unkeyable`."""
    digest = hashlib.sha256()
    landscapes = importlib.util.find_spec("optbench.landscapes").submodule_search_locations
    try:
        for root in dict.fromkeys([Path(__file__).parent, *map(Path, landscapes)]):
            for source in sorted(root.rglob("*.py")):
                if not source.name.startswith("."):  # an editor's lock or backup
                    digest.update(str(source.relative_to(root)).encode() + b"\0"
                                  + source.read_bytes() + b"\0")
    except OSError as error:
        raise Unkeyable(f"cannot read optbench's sources ({error})") from None
    return digest.digest()


def versions(libraries: tuple[str, ...]) -> bytes:
    """The installed versions of ``libraries`` (``absent`` for one not installed)."""
    return "".join(f"{name}={_version(name)}\0" for name in libraries).encode()


def _version(library: str) -> str:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def sources_unchanged() -> bool:
    """Whether optbench's sources are still those this process imported (an edit since would
    file the old code's result under the new code's key)."""
    try:
        return code_digest.__wrapped__() == code_digest()
    except Unkeyable:
        return False


def _keep(path: Path, result: Any) -> None:
    """Write ``path`` whole (a temporary file renamed) and drop all but the newest
    :data:`KEEP` entries beside it, and temporary files left an hour ago; a folder that cannot
    be written, or a result that cannot be pickled, is left as it is."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            pickle.dump(result, tmp, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp.name, path)
        tmp = None
        entries = sorted(path.parent.glob("*.pkl"), key=_modified, reverse=True)
        stale = [p for p in path.parent.glob("*.tmp") if _modified(p) < time.time() - 3600]
        for old in entries[KEEP:] + stale:
            old.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001  (a cache never fails the command it serves)
        return
    finally:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed by another process meanwhile
        return 0.0


with contextlib.suppress(Unkeyable):
    code_digest()  # the sources as this process imports them (see optbench/__init__.py)
