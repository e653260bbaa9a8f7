"""One sweep across several processes, on JAX's own multi-controller runtime.

The same ``optbench sweep`` command is started once per process (by SLURM's ``srun``, by
``mpirun``, or by hand with ``--coordinator HOST:PORT --num-processes N --process-id I``).
Every process builds the same blocks; each block's run axis is sharded over the global mesh
of all processes' devices, the results are gathered, and only process 0 writes the store.
"""

from __future__ import annotations

import socket
import time

import jax

from optbench.errors import OptbenchError

DEFAULT_TIMEOUT_SECONDS = 60


class DistributedError(OptbenchError):
    """The processes of a distributed sweep could not be brought together."""


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, auto: bool = False,
               timeout: int = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Join the distributed runtime before anything touches a device.

    By hand, all of ``coordinator`` (``HOST:PORT``; process 0 listens there), ``num_processes``
    and ``process_id`` are needed; with ``auto`` JAX reads them from SLURM or Open MPI.
    """
    manual = (coordinator, num_processes, process_id)
    if not auto and all(v is None for v in manual):
        return
    if not auto and any(v is None for v in manual):
        raise DistributedError("--coordinator HOST:PORT, --num-processes N and --process-id I "
                               "go together (or --distributed under srun/mpirun); got "
                               f"coordinator={coordinator}, num-processes={num_processes}, "
                               f"process-id={process_id}")
    if not auto and not 0 <= process_id < num_processes:
        raise DistributedError(f"--process-id: found {process_id}; allowed an integer in "
                               f"[0, {num_processes - 1}] (--num-processes {num_processes})")
    if not auto and (":" not in coordinator or not coordinator.rsplit(":", 1)[1].isdigit()):
        raise DistributedError(f"--coordinator: found {coordinator!r}; allowed HOST:PORT")
    if not auto and process_id != 0:
        _wait_for(coordinator, timeout)
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=timeout)
    except (RuntimeError, ValueError) as error:  # JAX's runtime errors and failed detection
        where = f"the coordinator at {coordinator}" if coordinator else "the cluster"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DistributedError(f"could not join {where} within {timeout} s: {first_line}") \
            from None


def _wait_for(coordinator: str, timeout: float) -> None:
    """Wait until the coordinator accepts connections: JAX itself aborts the process, with a
    C++ stack trace, when it cannot reach it in time."""
    host, port = coordinator.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise DistributedError(f"could not reach the coordinator at {coordinator} within "
                                       f"{timeout:g} s ({error.strerror or error}); is process 0 "
                                       "running there?") from None
            time.sleep(0.2)
