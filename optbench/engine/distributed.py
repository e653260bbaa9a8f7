"""Where a sweep's runs go: over a CPU's cores in one process, or across several processes
on JAX's own multi-controller runtime.

In one process, :func:`use_every_core` gives JAX one CPU device per core, so that each
block's run axis is sharded over the cores (JAX's default is one CPU device, which runs a
block's runs on about one core).

Across processes, the same ``optbench sweep`` command is started once per process (by
SLURM's ``srun``, by ``mpirun``, or by hand with ``--coordinator HOST:PORT --num-processes N
--process-id I``). Every process builds the same blocks; each block's run axis is sharded
over the global mesh of all processes' devices, the results are gathered, and only process 0
writes the store; each process keeps JAX's default devices.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Mapping

import jax

from optbench.errors import OptbenchError
from optbench.machine import available_cores

DEFAULT_TIMEOUT_SECONDS = 60
# At most this many CPU devices: a block of the default sweep has 16 runs, and every device
# holds its own copy of the task's data.
MAX_CPU_DEVICES = 8
# Where a user chooses the CPU device count themselves, in JAX's own ways.
CPU_DEVICES_VARIABLE = "JAX_NUM_CPU_DEVICES"
CPU_DEVICES_FLAG = "--xla_force_host_platform_device_count"


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


def cpu_device_count(environ: Mapping[str, str], cores: int) -> int | None:
    """The CPU devices a one-process sweep asks JAX for: one per core, at most
    :data:`MAX_CPU_DEVICES`; None where ``environ`` chooses the count already (JAX's
    ``JAX_NUM_CPU_DEVICES``, or ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``)."""
    if CPU_DEVICES_VARIABLE in environ or CPU_DEVICES_FLAG in environ.get("XLA_FLAGS", ""):
        return None
    return max(1, min(cores, MAX_CPU_DEVICES))


def use_every_core() -> None:
    """Give JAX's CPU backend :func:`cpu_device_count` devices, for the cores this process may
    use (:func:`optbench.machine.available_cores`). A block then runs on as many as its
    runs and memory allow, with one device's results up to float rounding (the runs are
    independent); its ``timing.json`` records the devices it used. Call it before anything
    touches a device: a backend already started keeps the devices it has, with a warning."""
    count = cpu_device_count(os.environ, available_cores())
    if count is None:
        return
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX refuses the change once its backend has started
        started = _started_cpu_devices()
        if started not in (None, count):
            warnings.warn(f"JAX has started already, with {started} CPU device(s): call "
                          f"use_every_core() before JAX's first use for {count}", stacklevel=2)


def _started_cpu_devices() -> int | None:
    """The CPU devices of a started JAX (None where it has no CPU backend)."""
    try:
        return jax.device_count("cpu")
    except RuntimeError:
        return None
