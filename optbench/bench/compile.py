"""``optbench bench compile``: what compilation costs a user of ``optbench run``.

The default sweep runs twice, each time in a fresh process into a fresh temporary folder:
first with an empty persistent compile cache (``OPTBENCH_COMPILE_CACHE`` set to a new, empty
folder), then with that cache filled by the first run; and all that once with each
``branching`` (a bundle's rule chosen inside every step, or once per run around the step
loop, see :func:`optbench.engine.run.make_run`). For each, the table shows the wall
seconds of the whole process (start, imports, sweep, tables), the compile and run seconds
summed over the blocks (from the results' ``meta.json``), the programs the engine compiled
(``engine.run.PROGRAMS.compiled``, a compile call each, the blocks' programs only: each
task's small start program is not counted; with a filled cache XLA loads them instead of
compiling) and the persistent-cache hits JAX reported. One more run, with an empty
cache, compiles with XLA's default options instead of the engine's
(:data:`optbench.engine.run.COMPILER_OPTIONS`), so that their effect is measured in the
same run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from optbench.bench.common import Report, against
from optbench.errors import OptbenchError

CACHE_HITS_EVENT = "/jax/compilation_cache/cache_hits"
MEASURED_BRANCHINGS = ("step", "run")
ENGINE_OPTIONS, XLA_DEFAULTS = "engine's", "XLA's defaults"  # the compiler options measured


# the check of programs shared across grid sizes: four optimizers whose grids have
# 1, 2, 3 and 5 settings, on two 2-D surfaces, compile at most SHARED_PROGRAMS_TARGET programs
GRID_SIZES = {"gd": 1, "momentum": 2, "adam": 3, "rmsprop": 5}
GRID_SIZE_SURFACES = ("rosenbrock", "himmelblau")
SHARED_PROGRAMS_TARGET = 2


def grid_sizes_config() -> str:
    """The TOML of that check's sweep: each optimizer's learning rates a log grid of its
    size, 100 steps, one seed."""
    tasks = "".join(f'[[tasks]]\nlandscape = "{name}"\ndim = 2\n' for name in GRID_SIZE_SURFACES)
    grids = "".join(f"[optimizers.{name}]\nlearning_rate = "
                    f"{[float(f'{r:.3g}') for r in np.geomspace(1e-4, 1e-2, size)]}\n"
                    for name, size in GRID_SIZES.items())
    return f'name = "grid-sizes"\nsteps = 100\nseeds = 1\n{tasks}{grids}'


class ChildFailed(OptbenchError):
    """A benchmark's subprocess exited with an error."""


def summarize(meta: dict) -> dict[str, float]:
    """Compile and run seconds summed over a stored sweep's blocks, and its block and
    program counts (``meta.json`` as :func:`optbench.engine.run_sweep` writes it)."""
    blocks = meta["blocks"].values()
    return {"blocks": len(blocks),
            "compile s (blocks)": sum(b["compile_seconds"] for b in blocks),
            "run s (blocks)": sum(b["run_seconds"] for b in blocks),
            "programs compiled": meta.get("programs_compiled", float("nan"))}


def run_child(config: str | None, out: Path, cache: Path, branching: str = "auto",
              options: str = ENGINE_OPTIONS) -> dict[str, float]:
    """The default sweep (or ``optbench sweep CONFIG``) in a new process with its compile
    cache in ``cache`` and the compiler ``options`` (:data:`ENGINE_OPTIONS` or
    :data:`XLA_DEFAULTS`): its wall seconds and the summary of what it stored."""
    env = {**os.environ, "OPTBENCH_COMPILE_CACHE": str(cache)}
    config = str(Path(config).resolve()) if config else ""
    command = [sys.executable, "-m", "optbench.bench.compile", str(out), branching, options,
               config]
    started = time.perf_counter()
    # from the cache's folder, not the caller's: a checkout's optbench/ folder must not
    # shadow the installed package
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=cache.parent)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ChildFailed(f"bench compile: the sweep process failed: {last}")
    hits = json.loads((out / "cache_hits.json").read_text())["cache_hits"]
    meta = json.loads((out / "results" / "meta.json").read_text())
    return {"wall s": wall, **summarize(meta), "persistent-cache hits": hits}


def bench_compile(device: jax.Device, quick: bool = False, config: str | None = None,
                  branchings: tuple[str, ...] = MEASURED_BRANCHINGS,
                  grid_sizes: bool = True) -> Report:
    """The default sweep (or ``config``, a TOML path) with an empty, then a filled cache,
    for each of ``branchings``; with ``grid_sizes``, the programs that the sweep of
    :func:`grid_sizes_config` compiles."""
    if device.platform != jax.devices()[0].platform:
        raise OptbenchError(f"bench compile runs the sweep on JAX's default device "
                            f"({jax.devices()[0].platform}), not {device.platform}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="optbench-bench-compile-") as tmp:
        for branching in branchings:
            cache = Path(tmp) / f"compile-cache-{branching}"
            cache.mkdir()
            for label in ("empty cache", "filled cache"):
                out = Path(tmp) / f"{branching}-{label.replace(' ', '-')}"
                rows.append({"run": label, "branching": branching,
                             "compiler options": ENGINE_OPTIONS,
                             **run_child(config, out, cache, branching)})
        cache = Path(tmp) / "compile-cache-xla-defaults"
        cache.mkdir()
        rows.append({"run": "empty cache", "branching": branchings[0],
                     "compiler options": XLA_DEFAULTS,
                     **run_child(config, Path(tmp) / "xla-defaults", cache, branchings[0],
                                 XLA_DEFAULTS)})
        shared = programs_across_grid_sizes(Path(tmp) / "grid-sizes") if grid_sizes else None
    what = config or "the default sweep (optbench sweep --example default)"
    notes = [f"{what}, each run in a new process into a new folder (on a CPU, on one "
             "device per core, at most 8, as optbench sweep runs), OPTBENCH_COMPILE_CACHE at "
             "a folder that starts empty. 'wall s' counts the whole process (start, imports, "
             "sweep, tables); 'programs compiled' counts the engine's compile calls, which a "
             "filled cache answers by loading. branching: where a block whose optimizers "
             "share one program (a bundle) chooses its rule and surface, 'step' inside every "
             "step (a CPU's default), 'run' once per run around the step loop (an "
             "accelerator's). compiler options: the engine's (on a CPU, LLVM's optimization "
             "level 1) or XLA's defaults (level 2), which the engine used before."]
    if shared is not None:
        sizes = ", ".join(f"{name} {size}" for name, size in GRID_SIZES.items())
        notes.append(f"Programs shared across grid sizes: optimizers with grids of ({sizes}) "
                     f"settings on 2-D {' and '.join(GRID_SIZE_SURFACES)}, in a new process "
                     f"with an empty cache, compiled {shared} program(s) "
                     f"({against(shared, SHARED_PROGRAMS_TARGET, at_most=True)}).")
    return Report("compile", f"{what}: empty vs filled compile cache", pd.DataFrame(rows), notes,
                  {} if shared is None else {"grid-size programs compiled": shared})


def programs_across_grid_sizes(folder: Path) -> int:
    """The programs the sweep of :func:`grid_sizes_config` compiles, run in a new process
    (with ``folder``'s own, empty compile cache)."""
    (folder / "cache").mkdir(parents=True)
    config = folder / "grid-sizes.toml"
    config.write_text(grid_sizes_config())
    return int(run_child(str(config), folder, folder / "cache")["programs compiled"])


def _child(out: str, branching: str, options: str, config: str = "") -> int:
    """Run the sweep into ``out/results`` (as ``optbench sweep`` does, on its CPU devices,
    without printing its table) with ``branching`` and the compiler ``options``, and count
    JAX's persistent-cache hits."""
    import optbench
    from optbench.config import example, load
    from optbench.engine import run
    from optbench.engine.distributed import use_every_core

    use_every_core()

    if options == XLA_DEFAULTS:
        run.COMPILER_OPTIONS = {}

    hits = []
    jax.monitoring.register_event_listener(
        lambda event, **_: hits.append(1) if event == CACHE_HITS_EVENT else None)
    # the default sweep as `optbench run` runs it, without the report `run` draws after it
    sweep = dataclasses.replace(load(config) if config else example("default"),
                                branching=branching)
    optbench.sweep(sweep, Path(out) / "results", quiet=True, yes=True)
    (Path(out) / "cache_hits.json").write_text(json.dumps({"cache_hits": len(hits)}))
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:]))
