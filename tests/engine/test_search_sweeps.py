"""A search's trials x seeds are data: its block compiles one program, like a grid's; stage 2
of two-stage tuning fixes each task's best trial."""

import numpy as np
import pandas as pd
import pytest

from optbench.config import parse
from optbench.engine import run_sweep
from optbench.engine.run import PROGRAMS
from optbench.tuning import rerun_best

STAGE_1 = {
    "name": "search", "steps": 30, "record_every": 10, "seeds": 2, "targets": [1e-1],
    "compile_cache": False,
    "tasks": [{"landscape": "sphere", "start": [1.0, -1.0]},
              {"landscape": "rosenbrock", "start": [-1.2, 1.0]}],
    "optimizers": {"adam": {"search": "quasirandom", "trials": 16,
                            "learning_rate": {"loguniform": [1e-3, 0.3]},
                            "b1": {"one_minus_loguniform": [1e-2, 0.5]}}},
}


@pytest.fixture(scope="module")
def stage_1(tmp_path_factory):
    PROGRAMS.clear()
    out = run_sweep(STAGE_1, tmp_path_factory.mktemp("search") / "stage-1", quiet=True)
    return out, PROGRAMS.compiled


def test_a_16_trial_search_compiles_one_program(stage_1):
    out, compiled = stage_1
    assert compiled == 1  # 2 blocks of 16 trials x 2 seeds on two surfaces of one dimension
    runs = pd.read_parquet(out / "runs.parquet")
    trials = parse(STAGE_1).optimizers[0].grid
    for _, block in runs.groupby("task"):
        assert len(block) == 32 and block["config"].nunique() == 16
        first_seed = block[block["seed"] == 0].sort_values("config")
        assert np.array_equal(first_seed["learning_rate"], trials["learning_rate"])
        assert np.array_equal(first_seed["b1"], trials["b1"])


def test_stage_2_of_a_search_fixes_each_tasks_best_trial(stage_1, tmp_path):
    out, _ = stage_1
    config = rerun_best(out, seeds=3)
    runs = pd.read_parquet(out / "runs.parquet")
    for task in config["tasks"]:
        best = task["grids"]["adam"]
        assert {"learning_rate", "b1"} <= set(best)  # every value that ran, fixed
        assert ((runs["task"] == task["name"]) & (runs["learning_rate"] == best["learning_rate"])
                & (runs["b1"] == best["b1"])).any()  # one of its trials
    stage_2 = parse(config)
    assert all(len(o.settings()) == 1 for o, _ in stage_2.blocks())
    assert parse(stage_2.to_dict()) == stage_2
    rerun = pd.read_parquet(run_sweep(config, tmp_path / "stage-2", quiet=True) / "runs.parquet")
    assert len(rerun) == 2 * 3 and rerun.groupby("task")["config"].nunique().eq(1).all()


def test_stage_2_keeps_what_a_task_searched_in_its_own_range(tmp_path):
    """A task searching its own learning-rate range (outside the optimizer's) and a
    hyperparameter the optimizer's table fixes: stage 2 parses, and reruns on that task
    exactly the setting stage 1 chose there."""
    config = {"name": "own-range", "steps": 5, "record_every": 5, "seeds": 1,
              "tasks": [{"landscape": "sphere", "dim": 2, "grids": {"momentum": {
                  "learning_rate": {"loguniform": [0.2, 0.9]},
                  "momentum": {"uniform": [0.5, 0.9]}}}}],
              "optimizers": {"momentum": {"search": "random", "trials": 3,
                                          "learning_rate": {"loguniform": [1e-3, 1e-1]}}}}
    out = run_sweep(config, tmp_path / "stage-1", quiet=True)
    stage_2 = rerun_best(out, seeds=1)
    runs = pd.read_parquet(out / "runs.parquet")
    fixed = stage_2["tasks"][0]["grids"]["momentum"]
    chosen = runs[(runs["learning_rate"] == fixed["learning_rate"])
                  & (runs["momentum"] == fixed["momentum"])]
    assert len(chosen) == 1 and 0.2 <= fixed["learning_rate"] <= 0.9
    (block, _), = parse(stage_2).blocks()
    assert len(block.settings()) == 1
