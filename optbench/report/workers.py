"""Where the report's figure workers come from: forked from this process while that is safe,
otherwise from a fork server that has already imported what figures are drawn with.

A process that ran a sweep has JAX's threads running, and forking it would copy them
mid-flight; spawned workers would each import matplotlib, seaborn, scipy and JAX again (about
4 s on 2 cores) before drawing anything. The fork server is a fresh interpreter that imports
them once; :func:`start_early` starts it while the sweep runs, so that its imports overlap
the sweep. This module imports nothing heavy, so that starting early costs the caller nothing.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import multiprocessing
import os
import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any

# what every figure job draws with: forked workers inherit it (imported once, before forking)
FIGURE_MODULES = ("optbench.report.figures", "optbench.report.comparisons")
# what the fork server's workers draw with; '__main__' as spawn would (a script's landscapes)
PRELOAD = ["__main__", "optbench.report.build", *FIGURE_MODULES, "optbench.report.surfaces"]


def can_fork() -> bool:
    """Fork is safe while JAX has started no backend (and so no threads) in this process."""
    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:
        return False
    return hasattr(os, "fork") and not backends_are_initialized()


@contextlib.contextmanager
def pool(workers: int, data: Any) -> Iterator[ProcessPoolExecutor]:
    """``workers`` processes, each holding ``data`` (:func:`held_data`). Forked ones inherit
    it, and the figure modules, imported here once rather than by each of them; the others
    get it pickled once, and this process's environment variables, not the ones the fork
    server had when it started."""
    where = context()
    forked = where.get_start_method() == "fork"
    if forked:
        for module in FIGURE_MODULES:
            importlib.import_module(module)
        _HELD["data"] = data  # the workers inherit it as they are forked
    try:
        with ProcessPoolExecutor(workers, mp_context=where,
                                 initializer=None if forked else _hold,
                                 initargs=() if forked else (pickle.dumps(data),
                                                             dict(os.environ))) as executor:
            yield executor
    finally:
        _HELD.clear()


def held_data() -> Any:
    """In a worker, the ``data`` of the :func:`pool` it belongs to; unpickled here, in a job,
    so that an error doing so reaches the caller with its cause."""
    if "data" not in _HELD:
        _HELD["data"] = pickle.loads(_HELD.pop("pickled"))
    return _HELD["data"]


_HELD: dict[str, Any] = {}


def _hold(pickled: bytes, environ: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(environ)
    _HELD["pickled"] = pickled


def context() -> BaseContext:
    """fork where it is safe; else the preloaded fork server (started here if need be);
    spawn where there is no fork server (Windows)."""
    if can_fork():
        return multiprocessing.get_context("fork")
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    start_early()
    return multiprocessing.get_context("forkserver")


def start_early() -> None:
    """Start the fork server now, so that the report a sweep draws at its end finds its
    workers' imports done (at once where it runs already; nothing where there is none).

    The server's standard streams are the null device: it ends a moment after this process
    (when it has finished importing, and then its own exit), and whatever reads this
    process's output through a pipe must not wait for it. Workers send their results and
    errors back through the pool; warnings they print are not shown. Meanwhile, for a few
    system calls, what other threads write to this process's streams is lost."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    import fcntl
    from multiprocessing import forkserver

    with _STREAMS:
        multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
        copies = {}  # the open standard streams, kept meanwhile above them
        for fd in (0, 1, 2):
            try:
                copies[fd] = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
            except OSError as error:  # a closed one is closed again afterwards
                if error.errno != errno.EBADF:
                    raise
        null = os.open(os.devnull, os.O_RDWR)  # may take a closed stream's number
        os.set_inheritable(null, True)  # the server's, where it is one of its streams
        try:
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            forkserver.ensure_running()  # returns at once where the server runs
        finally:
            for fd in (0, 1, 2):
                if fd in copies:
                    os.dup2(copies[fd], fd)
                    os.close(copies[fd])
                else:
                    os.close(fd)
            if null > 2:
                os.close(null)


_STREAMS = threading.Lock()  # one thread at a time moves this process's standard streams
