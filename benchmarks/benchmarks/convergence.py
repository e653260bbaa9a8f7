"""Convergence of fixed, seeded configurations, tracked like a timing: an algorithmic change
that slows an optimizer down shows up as more steps to the target or a worse final value.

Each optimizer runs once on 2-D Rosenbrock from the classic start (-1.2, 1), 3000 steps,
float32, with a learning rate at which it reaches f - f_min <= 0.1."""

import tempfile

import pandas as pd

from optbench.engine import run_sweep

LEARNING_RATES = {"gd": 3e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 1.0,
                  "adadelta": 0.3, "rmsprop": 1e-2, "rmsprop_centered": 1e-3, "adam": 3e-2}
TARGET = 0.1
CONFIG = {
    "name": "asv-convergence", "steps": 3000, "seeds": [0], "targets": [TARGET],
    "compile_cache": False,
    "tasks": [{"landscape": "rosenbrock", "dim": 2, "start": [-1.2, 1.0]}],
    "optimizers": {name: {"learning_rate": lr} for name, lr in LEARNING_RATES.items()},
}


class TrackConvergence:
    params = (list(LEARNING_RATES),)
    param_names = ["optimizer"]
    timeout = 300

    def setup_cache(self):
        with tempfile.TemporaryDirectory() as folder:
            runs = pd.read_parquet(run_sweep(CONFIG, f"{folder}/runs", quiet=True, yes=True)
                                   / "runs.parquet")
        return runs.set_index("optimizer")

    def track_steps_to_target(self, runs, name):
        """Steps until f - f_min <= 0.1 (NaN: never)."""
        return float(runs.loc[name, f"steps_to_{TARGET:g}"])

    track_steps_to_target.unit = "steps"

    def track_final_gap(self, runs, name):
        """f - f_min after 3000 steps."""
        return float(runs.loc[name, "final"])

    track_final_gap.unit = "f - f_min"
