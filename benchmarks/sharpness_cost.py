"""The cost of ``sharpness = true``: the same MNIST-1D MLP block (the kind's default
40-100-100-10 relu MLP, 3600 training examples, 8 learning rates) with and without sharpness
at 10 record points, for full-batch GD and mini-batch SGD (batch 100). Run time is measured
apart from compile time, on a second call of the compiled program.

    PYTHONPATH=. python benchmarks/sharpness_cost.py [steps]
"""

from __future__ import annotations

import sys

import numpy as np

from optbench import optimizers
from optbench.engine.run import RunSettings, run_block
from optbench.tasks import registry


def block_seconds(optimizer: str, sharpness: bool, steps: int) -> tuple[float, float]:
    """(compile, run) seconds of the block; the run timed on a second call."""
    task = registry.build([registry.parse({"kind": "mnist1d-mlp", "sharpness": sharpness},
                                          "tasks[0]")])[0]
    spec = optimizers.get(optimizer)
    settings = RunSettings(steps=steps, record_every=steps // 10, targets=(0.5,),
                           divergence_threshold=1e6)
    n = 8
    hparams = {k: np.full(n, v) for k, v in spec.defaults.items()} | {
        "learning_rate": np.logspace(-2, -0.5, n)}
    def call():
        return run_block(spec.pure, spec.gradient, task, settings, hparams, np.arange(n),
                         np.zeros(n, int), max_memory_mb=2048)
    first = call()
    return first.compile_seconds, call().run_seconds


if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for optimizer in ("gd", "minibatch"):
        plain = block_seconds(optimizer, False, steps)
        sharp = block_seconds(optimizer, True, steps)
        print(f"{optimizer}, {steps} steps, 8 runs, 10 record points: run {plain[1]:.2f} s "
              f"without, {sharp[1]:.2f} s with sharpness ({sharp[1] / plain[1]:.2f}x); "
              f"compile {plain[0]:.1f} s / {sharp[0]:.1f} s", flush=True)
