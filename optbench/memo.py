"""Results derived from a sweep, kept in the user cache folder and keyed by the content of
their inputs and by the code that computes them, so that a result one command computed (the
convergence table, at the end of a sweep) is read back by the next (``optbench table``,
``optbench report``) instead of being computed again.

A key covers every argument's content (a frame's values, dtypes and column names), optbench's
source files and the versions of the libraries the result depends on, so a changed input, an
edited source or an upgraded library computes afresh. The cache is only ever a shortcut: an
argument it cannot key, an unreadable entry or an unwritable folder computes as if it were
absent. The newest :data:`KEEP` entries of each function are kept.
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
    """``function``, memoized in ``<user cache>/optbench/memo/<its name>/``."""

    @functools.wraps(function)
    def memoized(*args: Any, **kwargs: Any) -> Any:
        try:
            path = user_cache(FOLDER, function.__qualname__, key(args, kwargs) + ".pkl")
        except Unkeyable:
            return function(*args, **kwargs)
        result = _load(path)
        if result is _ABSENT:
            result = function(*args, **kwargs)
            _keep(path, result)
        return result

    return memoized  # type: ignore[return-value]


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


def key(args: tuple, kwargs: dict) -> str:
    """A digest of the arguments' content, optbench's sources and :data:`LIBRARIES`."""
    digest = hashlib.sha256(code_digest(LIBRARIES))
    for value in (*args, *sorted(kwargs.items())):
        _feed(digest, value)
    return digest.hexdigest()[:32]


def _feed(digest: Any, value: Any) -> None:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        digest.update(json.dumps([list(map(str, value.columns)),
                                  list(map(str, value.dtypes))]).encode())
        try:
            digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
        except TypeError as error:  # unhashable cells (lists, dicts)
            raise Unkeyable(str(error)) from None
        return
    try:
        digest.update(json.dumps(value, default=_unkeyable).encode())  # order kept: it may show
    except (TypeError, ValueError) as error:
        raise Unkeyable(str(error)) from None


def _unkeyable(value: Any) -> Any:
    raise Unkeyable(f"cannot key a {type(value).__name__}")


@functools.cache
def code_digest(libraries: tuple[str, ...]) -> bytes:
    """optbench's source files (its landscapes too, kept apart in a checkout) and the
    installed versions of ``libraries``, as one digest: what a result computed from the same
    inputs may still differ by."""
    digest = hashlib.sha256()
    landscapes = importlib.util.find_spec("optbench.landscapes").submodule_search_locations
    for root in dict.fromkeys([Path(__file__).parent, *map(Path, landscapes)]):
        for source in sorted(root.rglob("*.py")):
            digest.update(str(source.relative_to(root)).encode() + source.read_bytes())
    for library in libraries:
        digest.update(f"{library}={importlib.metadata.version(library)}".encode())
    return digest.digest()


def _keep(path: Path, result: Any) -> None:
    """Write ``path`` whole (a temporary file renamed) and drop all but the newest
    :data:`KEEP` entries beside it; a folder that cannot be written is left as it is."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            pickle.dump(result, tmp, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp.name, path)
        entries = sorted(path.parent.glob("*.pkl"), key=_modified, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed by another process meanwhile
        return 0.0
