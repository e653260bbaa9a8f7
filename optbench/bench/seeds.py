"""``optbench bench seeds``: N seeds of the MNIST-1D MLP trained under ``vmap`` (one program,
one call) against the same N runs one at a time (the same compiled one-run program, N calls).

Both use the engine's :func:`~optbench.engine.run.run_block` with Adam, mini-batches of 100
and records at the start and the end only, so the timing is mostly training (the two
evaluations cost about as much as 50 of the 1000 steps).
Compilation is excluded from both (each program is compiled once, before timing). For large
N the one-at-a-time loop is timed on its first ``sequential_cap`` runs and extrapolated.
The two are timed interleaved, best of three, so that load from other processes hits both.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from optbench import optimizers
from optbench.bench.common import Report
from optbench.engine.run import RunSettings, run_block
from optbench.optimizers.base import PureOptimizer
from optbench.tasks import registry


def _runner(steps: int, device: jax.Device):
    task, = registry.build([registry.parse({"kind": "mnist1d-mlp"}, "bench")])
    spec = optimizers.get("adam")
    adam = PureOptimizer(spec.init, spec.update)
    settings = RunSettings(steps=steps, record_every=steps, targets=(0.5,),
                           divergence_threshold=1e10)

    def run(seeds: np.ndarray) -> float:
        hparams = {k: np.full(len(seeds), v) for k, v in spec.defaults.items()}
        result = run_block(adam, "mini-batch", task, settings, hparams, seeds,
                           np.zeros(len(seeds), np.int32), max_memory_mb=4096,
                           devices=[device])
        return result.run_seconds

    return run


def seeds_table(device: jax.Device, counts: tuple[int, ...] = (1, 8, 64), steps: int = 1000,
                sequential_cap: int = 8, repeats: int = 3) -> pd.DataFrame:
    """Steps per second (optimizer steps summed over runs) of each N, vmapped and one at a
    time, and their ratio; the two are timed interleaved, best of ``repeats``."""
    run = _runner(steps, device)
    rows = []
    for n in counts:
        seeds = np.arange(n)
        timed = seeds[:min(n, sequential_cap)]
        run(seeds), run(timed[:1])  # compile (and warm) the N-run and the one-run programs
        vmapped, one_at_a_time = np.inf, np.inf
        for _ in range(repeats):
            vmapped = min(vmapped, run(seeds))
            loop = sum(run(timed[i:i + 1]) for i in range(len(timed))) * n / len(timed)
            one_at_a_time = min(one_at_a_time, loop)
        rows.append({"seeds": n, "steps": steps,
                     "vmapped_steps_per_s": n * steps / vmapped,
                     "sequential_steps_per_s": n * steps / one_at_a_time,
                     "speedup": one_at_a_time / vmapped,
                     "sequential_extrapolated": len(timed) < n})
    return pd.DataFrame(rows)


def bench_seeds(device: jax.Device, quick: bool = False) -> Report:
    """The MNIST-1D MLP: N seeds under vmap against the same N runs one at a time."""
    counts, steps = ((1, 8), 200) if quick else ((1, 8, 64), 1000)
    table = seeds_table(device, counts, steps)
    return Report("seeds", f"MNIST-1D MLP, Adam, {steps} steps: N seeds vmapped vs one at a "
                  "time", table, ["speedup: one-at-a-time time / vmapped time; compilation "
                              "excluded; interleaved, best of 3"])
