"""``branching = "run"``: a bundle's rule and a family's surface (and whether gradients get
noise) are chosen once per run, around the step loop, not inside every step; the numbers are
those of choosing them every step."""

import json

import jax
import numpy as np
import pandas as pd
import pytest

from optbench.config import parse
from optbench.engine.bundle import Rules
from optbench.engine.run import batched_run, start_program
from optbench.engine.sweep import branching_on, run_sweep
from optbench.optimizers.schedule import LR_DECAY, decayed
from optbench.tasks import registry
from tests.engine.helpers import without_timing

# convex surfaces of one dimension (one family), so that ulp-level differences between the
# two programs stay ulp-level
TASKS = [{"landscape": "sphere", "dim": 2, "noise": 1.0, "start": "random"},
         {"landscape": "ill_conditioned_quadratic", "dim": 2, "start": "random"}]
LRS = {"learning_rate": [1e-3, 1e-2]}
# two rules (gd and sgd share one, sgd with noise on the noisy surface), bundled
OPTIMIZERS = {"gd": LRS, "sgd": LRS, "adam": LRS}


def _sweep(tmp_path, branching):
    config = {"name": "branching", "steps": 40, "seeds": 2, "float64": True, "tasks": TASKS,
              "optimizers": OPTIMIZERS, "compile_cache": False, "branching": branching}
    out = run_sweep(config, tmp_path / branching, quiet=True)
    blocks = json.loads((out / "meta.json").read_text())["blocks"].values()
    assert {b["branching"] for b in blocks} == {branching}  # each block records its mode
    return (without_timing(pd.read_parquet(out / "runs.parquet")),
            pd.read_parquet(out / "curves.parquet"))


def test_choosing_once_per_run_gives_the_numbers_of_choosing_every_step(tmp_path):
    per_step, per_run = _sweep(tmp_path, "step"), _sweep(tmp_path, "run")
    assert len(per_step[0]) == 2 * 3 * 2 * 2  # tasks x optimizers x settings x seeds
    for a, b in zip(per_step, per_run, strict=True):
        pd.testing.assert_frame_equal(a, b, rtol=1e-12)


def _in_loops(jaxpr, primitive="cond", in_loop=False) -> tuple[int, int]:
    """How many ``primitive`` equations (``cond``: also a switch) ``jaxpr`` holds outside
    and inside loops."""
    outside = inside = 0
    for eqn in jaxpr.eqns:
        loop = in_loop or eqn.primitive.name in ("while", "scan")
        if eqn.primitive.name == primitive:
            outside, inside = outside + (not in_loop), inside + in_loop
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    o, i = _in_loops(inner, primitive, loop)
                    outside, inside = outside + o, inside + i
    return outside, inside


def _step_loop_jaxpr(branching, decay=False, tasks=TASKS):
    """The jaxpr of the first task's bundled program (its family's)."""
    built = registry.build([registry.parse(t, f"tasks[{i}]") for i, t in enumerate(tasks)])
    program = built[0].program("any")
    assert len(program.family) == 2
    config = parse({"name": "b", "tasks": tasks, "optimizers": OPTIMIZERS})
    rule, hparams = Rules.of(config.optimizers).select(
        "adam", {"learning_rate": np.full(2, 1e-3)}, built[0], list(OPTIMIZERS))
    fixed = {k: np.float32(v[0]) for k, v in hparams.items() if k != "learning_rate"}
    if decay:
        rule, fixed = decayed(rule), {**fixed, LR_DECAY: np.float32(0.5)}
    schedule = {"record_steps": np.arange(0, 11, 5, dtype=np.int32),
                "targets": np.ones(2, np.float32), "threshold": np.float32(1e6)}
    args = jax.tree.map(lambda a: np.asarray(a, np.float32)
                        if np.issubdtype(np.asarray(a).dtype, np.floating) else a,
                        built[0].args("any"))
    start = start_program(program, np.float32)(np.zeros(2, np.uint32), np.zeros(2, np.int32),
                                               args)
    return jax.make_jaxpr(batched_run(rule, program, np.float32, branching=branching))(
        {"learning_rate": np.ones(2, np.float32)}, start, fixed, args, schedule).jaxpr


@pytest.mark.parametrize(("branching", "decay"), [("step", False), ("run", False),
                                                  ("run", True)])
def test_the_step_loop_holds_no_switch_when_chosen_once_per_run(branching, decay):
    """Also for a bundle under a step-size decay (which wraps each of its rules)."""
    outside, inside = _in_loops(_step_loop_jaxpr(branching, decay))
    if branching == "run":
        assert (outside, inside) == (1, 0)  # one switch, around the loops
    else:
        assert inside >= 3  # the rule, the surface and the noise, in every step


def test_a_family_without_noise_compiles_no_noise_branch():
    quiet = [{**task, "noise": 0.0} for task in TASKS]
    _, noisy_conds = _in_loops(_step_loop_jaxpr("step"))
    assert _in_loops(_step_loop_jaxpr("step", tasks=quiet)) == (0, noisy_conds - 1)
    # chosen per run: one loop per rule and surface, none of them drawing noise
    assert _in_loops(_step_loop_jaxpr("run", tasks=quiet), "random_bits")[1] == 0
    assert _in_loops(_step_loop_jaxpr("run"), "random_bits")[1] > 0


def test_auto_chooses_per_run_on_accelerators_only():
    assert [branching_on("auto", b) for b in ("cpu", "gpu", "tpu")] == ["step", "run", "run"]
    assert branching_on("step", "gpu") == "step" and branching_on("run", "cpu") == "run"
