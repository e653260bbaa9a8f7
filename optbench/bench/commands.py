"""``optbench bench commands``: the commands a user waits on, each timed as a new process
(Python's start and the imports included), against the target set for it.

In one run, in new temporary folders and a new user cache folder (compiled programs,
generated datasets, derived tables; matplotlib's font cache is the user's own):

- ``optbench --help``, best of 3;
- ``optbench run`` with those caches empty, then again into a new folder with them filled,
  and once more into that folder (whose blocks, table and report are all done); on a CPU
  with several cores, also into a new folder on one CPU device, as before optbench gave
  JAX one per core (:func:`optbench.engine.distributed.use_every_core`), once its programs
  for one device are compiled (untimed) too;
- ``optbench table DIR`` on the second run's folder: computing the table (its kept copy
  removed first), then reading back the copy that computing kept;
- ``optbench report DIR --out NEW``: drawing it, then asking again with nothing changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import pandas as pd

from optbench.bench.common import Report
from optbench.engine.distributed import CPU_DEVICES_VARIABLE, cpu_device_count
from optbench.errors import OptbenchError
from optbench.machine import available_cores

TARGETS = {"help": 0.3, "run cold": 15.0, "run warm": 8.0, "table": 1.0, "report": 3.0}
CACHES = {"OPTBENCH_COMPILE_CACHE": "xla", "OPTBENCH_DATASET_CACHE": "datasets",
          "OPTBENCH_MEMO": "memo"}  # every cache optbench keeps, as a folder of its own


ONE_DEVICE_STATE = "caches filled, a new folder, one CPU device (as before)"


class CommandFailed(OptbenchError):
    """A timed command exited with an error."""


def timed(arguments: list[str], cwd: Path, env: dict[str, str]) -> float:
    """The wall seconds of ``optbench ARGUMENTS`` in a new process."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "optbench.cli", *arguments], cwd=cwd,
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise CommandFailed(f"bench commands: optbench {' '.join(arguments)} failed: {last}")
    return seconds


def fresh_environment(cache: Path) -> dict[str, str]:
    """This process's environment with every optbench cache in a new folder of ``cache``
    (matplotlib's font cache stays the user's own)."""
    import matplotlib

    folders = {variable: str(cache / name) for variable, name in CACHES.items()}
    return {**os.environ, **folders, "XDG_CACHE_HOME": str(cache),
            "MPLCONFIGDIR": matplotlib.get_cachedir()}


def bench_commands(device: jax.Device, quick: bool = False) -> Report:
    """Time the commands of the module's docstring (``quick`` changes nothing: they are the
    commands as a user runs them, or nothing)."""
    if device.platform != jax.devices()[0].platform:
        raise OptbenchError(f"bench commands runs on JAX's default device "
                            f"({jax.devices()[0].platform}), not {device.platform}")
    rows = []

    def row(command: str, state: str, seconds: float, target: str) -> None:
        rows.append({"command": command, "state": state, "wall s": seconds,
                     "target s": TARGETS[target], "met": seconds <= TARGETS[target]})

    with tempfile.TemporaryDirectory(prefix="optbench-bench-commands-") as tmp:
        env = fresh_environment(Path(tmp) / "cache")
        row("optbench --help", "", min(timed(["--help"], Path(tmp), env) for _ in range(3)),
            "help")
        for state, target in (("caches empty", "run cold"),
                              ("caches filled, a new folder", "run warm")):
            folder = Path(tmp) / target.replace(" ", "-")
            folder.mkdir()
            row("optbench run", state, timed(["run"], folder, env), target)
        row("optbench run", "again, into the same folder", timed(["run"], folder, env),
            "run warm")
        if device.platform == "cpu" and (cpu_device_count(env, available_cores()) or 1) > 1:
            one_device = {**env, CPU_DEVICES_VARIABLE: "1"}
            for name in ("one-device-programs", "run-warm-one-device"):  # its own, then warm
                (Path(tmp) / name).mkdir()
                seconds = timed(["run"], Path(tmp) / name, one_device)
            row("optbench run", ONE_DEVICE_STATE, seconds, "run warm")
        results = str(folder / "results" / "default")
        shutil.rmtree(env["OPTBENCH_MEMO"], ignore_errors=True)
        for state in ("computed", "read back"):
            row("optbench table DIR", state, timed(["table", results], folder, env), "table")
        report = ["report", results, "--out", str(folder / "another-report")]
        for state in ("drawn", "nothing changed"):
            row("optbench report DIR", state, timed(report, folder, env), "report")
    notes = ["Each command a new process (Python's start and imports included), in a new "
             "folder with new cache folders (compiled programs, datasets, derived tables: "
             f"{', '.join(CACHES)}), so 'caches empty' is a first run; 'caches "
             "filled' reruns it into a new folder. The table and report rows read the "
             "second run's folder; 'computed' removes the table's kept copy first. 'One CPU "
             f"device' ({CPU_DEVICES_VARIABLE}=1) is the warm run as it ran before optbench "
             "gave JAX a CPU device per core: that change's before, in the same run."]
    return Report("commands", "the commands a user waits on, against their targets",
                  pd.DataFrame(rows), notes)
