"""The sweep engine: a block's run time, its compile time, its memory over long runs, and
the programs the default sweep compiles."""

import json
import tempfile

import numpy as np

from optbench import landscapes, optimizers
from optbench.config import example
from optbench.engine import PROGRAMS, run_sweep
from optbench.engine.run import RunSettings, run_block
from optbench.optimizers.optax_adapter import optax_pure
from optbench.tasks import SurfaceTask


def _block(name, reference=False, n_lr=32, n_start=64, steps=1000, record_every=10):
    """One optimizer x ``n_lr`` learning rates x ``n_start`` starts on 2-D Rosenbrock."""
    spec = optimizers.get(name)
    starts = np.random.default_rng(0).uniform([-2.0, -1.0], [2.0, 3.0], size=(n_start, 2))
    task = SurfaceTask(landscapes.get("rosenbrock", dim=2), starts=starts)
    settings = RunSettings(steps=steps, record_every=record_every, targets=(1e-1, 1e-4, 1e-8),
                           divergence_threshold=1e10)
    lr = np.repeat(np.geomspace(1e-5, 1e-2, n_lr), n_start)
    hparams = {k: np.full(len(lr), v) for k, v in spec.defaults.items()} | {"learning_rate": lr}
    pure = optax_pure(spec) if reference else spec.pure
    return run_block(pure, spec.gradient, task, settings, hparams, np.zeros(len(lr), int),
                     np.tile(np.arange(n_start), n_lr))


class TimeSweepBlock:
    """1 optimizer x 32 learning rates x 64 starts x 1000 steps (2.05e6 optimizer steps);
    ``setup`` compiles the program, the timed body reuses it."""

    params = (["gd", "momentum", "adam"],)
    param_names = ["optimizer"]
    timeout = 300

    def setup(self, name):
        _block(name)

    def time_block(self, name):
        _block(name)


class TrackSweepBlock:
    """A block's compile seconds, and its throughput relative to optax's under the same
    vmap/scan, measured in the same process."""

    params = (["gd", "momentum", "adam"],)
    param_names = ["optimizer"]
    timeout = 300

    def setup_cache(self):
        results = {}
        for name in self.params[0]:
            PROGRAMS.clear()  # compile afresh: the compile time is what is tracked
            ours = _block(name)
            _block(name, reference=True)  # compiles optax's program
            # both programs reused: run time only, each on its second execution
            theirs, ours_again = _block(name, reference=True), _block(name)
            results[name] = {"compile": ours.compile_seconds,
                             "ratio": theirs.run_seconds / ours_again.run_seconds}
        return results

    def track_compile_seconds(self, results, name):
        return results[name]["compile"]

    track_compile_seconds.unit = "seconds"

    def track_speed_ratio_vs_optax(self, results, name):
        return results[name]["ratio"]

    track_speed_ratio_vs_optax.unit = "ratio"


class TrackDefaultSweep:
    """What ``optbench run`` compiles: programs, and compile seconds summed over its blocks
    (no persistent cache, into a temporary folder)."""

    timeout = 600

    def setup_cache(self):
        PROGRAMS.clear()
        with tempfile.TemporaryDirectory() as folder:
            directory = run_sweep(example("default"), f"{folder}/default", quiet=True,
                                  compile_cache=False, yes=True)
            meta = json.loads((directory / "meta.json").read_text())
        return {"programs": PROGRAMS.compiled,
                "compile": sum(b["compile_seconds"] for b in meta["blocks"].values())}

    def track_programs_compiled(self, results):
        return results["programs"]

    track_programs_compiled.unit = "programs"

    def track_compile_seconds(self, results):
        return results["compile"]

    track_compile_seconds.unit = "seconds"


class PeakMemLongSweep:
    """Peak memory of a block of 64 runs over 1e3 and 1e5 steps, recorded at most 200 times
    each: it must not grow with the step count."""

    params = ([1_000, 100_000],)
    param_names = ["steps"]
    timeout = 300

    def setup(self, steps):
        _block("adam", n_lr=8, n_start=8, steps=steps, record_every=None)

    def peakmem_block(self, steps):
        _block("adam", n_lr=8, n_start=8, steps=steps, record_every=None)


def _network_block(kind, seeds=8, steps=200):
    """Adam on a network task: ``seeds`` runs x ``steps`` steps, recorded at the ends only,
    so that the time is training (the step loop), not evaluation."""
    from optbench.tasks import registry

    (task,) = registry.build([registry.parse({"kind": kind}, "benchmark")])
    spec = optimizers.get("adam")
    settings = RunSettings(steps=steps, record_every=steps, targets=(0.5,),
                           divergence_threshold=1e10)
    hparams = {k: np.full(seeds, v) for k, v in spec.defaults.items()}
    return run_block(spec.pure, spec.gradient, task, settings, hparams, np.arange(seeds),
                     np.zeros(seeds, int))


class TimeNetworkBlock:
    """8 seeds of the MNIST-1D MLP and CNN x 200 Adam steps under the engine's step loop
    (where XLA's CPU convolution gradients once ran 5-15x slower than outside a loop)."""

    params = (["mnist1d-mlp", "mnist1d-cnn"],)
    param_names = ["kind"]
    timeout = 300

    def setup(self, kind):
        _network_block(kind)

    def time_block(self, kind):
        _network_block(kind)
