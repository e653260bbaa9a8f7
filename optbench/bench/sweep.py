"""``optbench bench sweep``: the engine against optax, a Python loop and torch, in one run.

The grid: 8 optimizers x 32 learning rates x 64 starts x 1000 steps on 2-D Rosenbrock.
Every variant runs the same configurations from the same starts; throughput is counted in
optimizer steps per second, compile time (first call, or ``lower().compile()``) is kept out
of the run time and reported on its own, and every comparison is a ratio taken in this
process. Loops that run one configuration at a time are timed on a subset and
extrapolated.

(a) optbench's engine: one jitted vmap+scan block per optimizer, hyperparameters as data,
    with its recording, targets and divergence checks (scored exactly, at every step).
(a') the same with ``scoring = "record"``: scored at the record points only.
(a'') the 8 rules bundled into one program, as a sweep bundles them, the rule chosen in every
    step or once per run (``branching``, see :func:`optbench.engine.run.make_run`).
(b) optax's optimizers under the same vmap/scan (the engine with optax's update rules).
(b') a bare hand-written vmap/scan over optax that records nothing: the lower bound of
    what any loop over these configurations can cost.
(c) a Python loop calling a jitted optax step, one configuration at a time.
(d) torch.optim, one configuration at a time (when torch is installed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from optbench import landscapes, optimizers
from optbench.bench.common import Report, against
from optbench.config import parse
from optbench.engine.bundle import Rules
from optbench.engine.run import PROGRAMS, RunSettings, run_block
from optbench.optimizers.optax_adapter import optax_pure
from optbench.tasks import SurfaceTask

# the targets for scoring = "record", (a') against the bare loop (b'): its speed at
# least this share of the bare loop's, its compile time at most this multiple
RECORD_MODE_SPEED, RECORD_MODE_COMPILE = 0.8, 2.0
BENCH_OPTIMIZERS = ("gd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop",
                    "rmsprop_centered", "adam")


@dataclass(frozen=True)
class BenchGrid:
    learning_rates: np.ndarray
    starts: np.ndarray  # (n_starts, 2)
    steps: int

    @property
    def configs(self) -> int:
        return len(self.learning_rates) * len(self.starts)


def make_grid(quick: bool = False) -> BenchGrid:
    n_lr, n_start, steps = (8, 8, 200) if quick else (32, 64, 1000)
    rng = np.random.default_rng(0)
    starts = rng.uniform([-2.0, -1.0], [2.0, 3.0], size=(n_start, 2))
    return BenchGrid(np.geomspace(1e-5, 1e-2, n_lr), starts, steps)


@dataclass
class Timing:
    variant: str
    run_seconds: float  # for the whole grid (extrapolated where marked)
    compile_seconds: float
    steps: int  # optimizer steps the run time stands for
    extrapolated: bool = False


def _engine(grid: BenchGrid, reference: bool, device: jax.Device, scoring: str = "step",
            branching: str | None = None) -> Timing:
    """The engine's blocks, one per optimizer; ``branching``: bundled, choosing the rule
    that way (None: each optimizer its own program)."""
    surface = landscapes.get("rosenbrock", dim=2)
    task = SurfaceTask(surface, starts=grid.starts)
    settings = RunSettings(steps=grid.steps, record_every=10, targets=(1e-1, 1e-4, 1e-8),
                           divergence_threshold=1e10, scoring=scoring,
                           branching=branching or "step")
    rules = None if branching is None else Rules.of(parse({
        "name": "bench", "tasks": [{"landscape": "rosenbrock"}],
        "optimizers": {name: {} for name in BENCH_OPTIMIZERS}}).optimizers)
    lr = np.repeat(grid.learning_rates, len(grid.starts))
    start = np.tile(np.arange(len(grid.starts)), len(grid.learning_rates))
    run = compile_ = 0.0
    PROGRAMS.clear()  # compile every round: compile time is part of what is measured
    for name in BENCH_OPTIMIZERS:
        spec = optimizers.get(name)
        hparams = {k: np.full(len(lr), v) for k, v in spec.defaults.items()}
        hparams["learning_rate"] = lr
        pure = optax_pure(spec) if reference else spec.pure
        if rules is not None:
            pure, hparams = rules.select(name, hparams, task, BENCH_OPTIMIZERS)
        result = run_block(pure, spec.gradient, task, settings, hparams, np.zeros(len(lr), int),
                           start, devices=[device])  # not every device: as the others
        run, compile_ = run + result.run_seconds, compile_ + result.compile_seconds
    label = ("(b) optax, same vmap/scan" if reference
             else f"(a'') engine, {len(BENCH_OPTIMIZERS)} rules bundled, chosen per "
             f"{branching}" if branching
             else "(a) optbench engine" if scoring == "step"
             else "(a') optbench engine, scoring = record")
    return Timing(label, run, compile_, grid.configs * grid.steps * len(BENCH_OPTIMIZERS))


def _bare_optax(grid: BenchGrid) -> Timing:
    loss = landscapes.get("rosenbrock", dim=2).fn
    run = compile_ = 0.0
    for name in BENCH_OPTIMIZERS:
        spec = optimizers.get(name)

        def final_params(lr, x0, spec=spec):
            tx = spec.optax_factory(**{**spec.defaults, "learning_rate": lr})

            def step(carry, _):
                x, state = carry
                updates, state = tx.update(jax.grad(loss)(x), state, x)
                return (optax.apply_updates(x, updates), state), None

            return jax.lax.scan(step, (x0, tx.init(x0)), length=grid.steps)[0][0]

        program = jax.jit(jax.vmap(jax.vmap(final_params, (None, 0)), (0, None)))
        args = (jnp.asarray(grid.learning_rates, jnp.float32),
                jnp.asarray(grid.starts, jnp.float32))
        started = time.perf_counter()
        compiled = program.lower(*args).compile()
        compile_ += time.perf_counter() - started
        started = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        run += time.perf_counter() - started
    return Timing("(b') bare optax vmap/scan, no recording", run, compile_,
                  grid.configs * grid.steps * len(BENCH_OPTIMIZERS))


def _python_loop(grid: BenchGrid, sample: int = 2) -> Timing:
    """A jitted optax step called from Python, one configuration at a time: a sample of
    ``sample`` configurations per optimizer, extrapolated to the grid. The learning rate is
    an argument of the step, so each optimizer compiles once (the loop's best case)."""
    loss = landscapes.get("rosenbrock", dim=2).fn
    run = compile_ = 0.0
    for name in BENCH_OPTIMIZERS:
        spec = optimizers.get(name)

        def make(lr, spec=spec):
            return spec.optax_factory(**{**spec.defaults, "learning_rate": lr})

        @jax.jit
        def step(x, state, lr, make=make):
            updates, state = make(lr).update(jax.grad(loss)(x), state, x)
            return optax.apply_updates(x, updates), state

        times = []
        for k in range(sample):
            lr = jnp.float32(grid.learning_rates[k * len(grid.learning_rates) // sample])
            x = jnp.asarray(grid.starts[k], jnp.float32)
            state = make(lr).init(x)
            started = time.perf_counter()
            jax.block_until_ready(step(x, state, lr))  # compiles on the first configuration
            if k == 0:
                compile_ += time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(grid.steps):
                x, state = step(x, state, lr)
            jax.block_until_ready(x)
            times.append(time.perf_counter() - started)
        run += float(np.mean(times)) * grid.configs
    return Timing("(c) Python loop over a jitted optax step", run, compile_,
                  grid.configs * grid.steps * len(BENCH_OPTIMIZERS), extrapolated=True)


def _torch_loop(grid: BenchGrid, sample: int = 2) -> Timing | None:
    try:
        import torch
    except ImportError:
        return None
    factories = {
        "gd": lambda p, lr: torch.optim.SGD(p, lr=lr),
        "momentum": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
        "nesterov": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True),
        "adagrad": lambda p, lr: torch.optim.Adagrad(p, lr=lr, initial_accumulator_value=0.1),
        "adadelta": lambda p, lr: torch.optim.Adadelta(p, lr=lr),
        "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=0.9),
        "rmsprop_centered": lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=0.9,
                                                              centered=True),
        "adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one configuration is too small to share
    try:
        run = 0.0
        for name in BENCH_OPTIMIZERS:
            times = []
            for k in range(sample):
                x = torch.tensor(grid.starts[k], dtype=torch.float32, requires_grad=True)
                opt = factories[name]([x], float(grid.learning_rates[k]))
                started = time.perf_counter()
                for _ in range(grid.steps):
                    opt.zero_grad()
                    loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
                    loss.backward()
                    opt.step()
                times.append(time.perf_counter() - started)
            run += float(np.mean(times)) * grid.configs
    finally:
        torch.set_num_threads(threads)
    return Timing("(d) torch.optim, one configuration at a time", run, 0.0,
                  grid.configs * grid.steps * len(BENCH_OPTIMIZERS), extrapolated=True)


def _best(timings: list[Timing]) -> Timing:
    """The fastest of repeated measurements (run and compile time each at its minimum):
    these machines are shared, and noise only ever adds time."""
    best = min(timings, key=lambda t: t.run_seconds)
    best.compile_seconds = min(t.compile_seconds for t in timings)
    return best


def record_mode_note(record: Timing, bare: Timing) -> str:
    """Record mode (``record``, (a')) against the bare loop (``bare``, (b')), each ratio
    against its target."""
    speed = bare.run_seconds / record.run_seconds
    compile_ = record.compile_seconds / bare.compile_seconds
    return (f"scoring = \"record\": (a') runs at {speed:.2f}x the speed of (b') "
            f"({against(speed, RECORD_MODE_SPEED, at_most=False)}) and compiles in "
            f"{compile_:.2f}x its time ({against(compile_, RECORD_MODE_COMPILE, at_most=True)}).")


def bench_sweep(device: jax.Device, quick: bool = False, repeats: int = 3) -> Report:
    """Run every variant on the same grid: throughput, compile time and ratios."""
    grid = make_grid(quick)
    with jax.default_device(device):
        _engine(make_grid(quick=True), False, device)  # warm up JAX and XLA before timing
        # (a), (b) and (b') take turns, so that drifts in the machine's speed hit them alike
        rounds = [(_engine(grid, False, device), _engine(grid, False, device, "record"),
                   _engine(grid, False, device, branching="step"),
                   _engine(grid, False, device, branching="run"),
                   _engine(grid, True, device), _bare_optax(grid)) for _ in range(repeats)]
        best = [_best(list(variant)) for variant in zip(*rounds, strict=True)]
        timings = [*best, _python_loop(grid)]
    ours, record, *_, bare = best
    torch_timing = _torch_loop(grid)
    if torch_timing is not None:
        timings.append(torch_timing)
    table = pd.DataFrame([{
        "variant": t.variant + (" *" if t.extrapolated else ""),
        "optimizer-steps/s": t.steps / t.run_seconds,
        "run s": t.run_seconds,
        "compile s": t.compile_seconds,
        "(a) speed-up, run": t.run_seconds / ours.run_seconds,
        "(a) speed-up, run+compile": (t.run_seconds + t.compile_seconds)
        / (ours.run_seconds + ours.compile_seconds),
    } for t in timings])
    notes = [f"(a), (a'), (a''), (b), (b'): best of {repeats}. (a') scores at the record "
             "points only (every 10 steps here), (a) at every step. (a'') runs the rules as "
             "one bundled program (a sweep's), choosing the rule in every step or once per "
             "run, around the step loop. * timed on 2 configurations per "
             "optimizer and extrapolated to the grid; (c) takes the learning rate as an "
             "argument, so it compiles once per optimizer. Compile time is not in 'run s'."]
    notes.append(record_mode_note(record, bare))
    if torch_timing is None:
        notes.append("(d) skipped: torch is not installed (pip install 'optbench[bench]').")
    title = (f"{len(BENCH_OPTIMIZERS)} optimizers x {len(grid.learning_rates)} learning rates x "
             f"{len(grid.starts)} starts x {grid.steps} steps on 2-D Rosenbrock "
             f"({ours.steps:.3g} optimizer steps), float32")
    return Report("sweep", title, table, notes, {"optimizer_steps": ours.steps})
