"""An engine block: the heart of a sweep, against optax under the same vmap/scan."""

import time

import numpy as np

import landscapes
from optbench import optimizers
from optbench.engine.run import RunSettings, run_block
from optbench.optimizers.optax_adapter import optax_pure
from optbench.tasks import SurfaceTask


def _block(name, reference, n_lr=32, n_start=64, steps=1000):
    spec = optimizers.get(name)
    starts = np.random.default_rng(0).uniform([-2.0, -1.0], [2.0, 3.0], size=(n_start, 2))
    task = SurfaceTask(landscapes.get("rosenbrock", dim=2), starts=starts)
    settings = RunSettings(steps=steps, record_every=10, targets=(1e-1, 1e-4, 1e-8),
                           divergence_threshold=1e10)
    lr = np.repeat(np.geomspace(1e-5, 1e-2, n_lr), n_start)
    hparams = {k: np.full(len(lr), v) for k, v in spec.defaults.items()} | {"learning_rate": lr}
    pure = optax_pure(spec) if reference else spec.pure
    return run_block(pure, spec.gradient, task, settings, hparams, np.zeros(len(lr), int),
                     np.tile(np.arange(n_start), n_lr))


class TrackSweepBlock:
    """Run and compile seconds of one block, and its throughput relative to optax's."""

    params = (["gd", "momentum", "adam"],)
    param_names = ["optimizer"]
    timeout = 300
    unit = "seconds"

    def setup_cache(self):
        results = {}
        for name in self.params[0]:
            ours, theirs = _block(name, False), _block(name, True)
            results[name] = {"run": ours.run_seconds, "compile": ours.compile_seconds,
                             "ratio": theirs.run_seconds / ours.run_seconds}
        return results

    def track_run_seconds(self, results, name):
        return results[name]["run"]

    def track_compile_seconds(self, results, name):
        return results[name]["compile"]

    def track_speed_ratio_vs_optax(self, results, name):
        return results[name]["ratio"]

    track_speed_ratio_vs_optax.unit = "ratio"


class TimeEngineSmallBlock:
    """Wall time of a small block end to end (compile included): what a user waits for."""

    timeout = 120

    def time_small_block(self):
        started = time.perf_counter()
        _block("adam", False, n_lr=4, n_start=4, steps=200)
        return time.perf_counter() - started
