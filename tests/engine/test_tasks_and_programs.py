"""Engine v2: data-driven pytree tasks, shared programs, bundled rules, bounded records."""

import json

import jax
import numpy as np
import pandas as pd
import pytest

from optbench import optimizers
from optbench.config import ConfigError, parse
from optbench.engine.run import (
    PROGRAMS,
    DataTooLarge,
    RunSettings,
    batched_run,
    record_schedule,
    run_block,
    start_program,
)
from optbench.engine.sweep import run_sweep
from optbench.tasks import deepobs, registry
from tests.engine import data_task
from tests.engine.helpers import surface_task, without_timing
from tests.nn.test_datasets import write_tiny_mnist
from tests.nn.test_deepobs import write_cifar
from tests.nn.test_language import write_text


def _regression(**fields):
    return registry.build([registry.parse({"kind": "test-regression", **fields}, "t")])[0]


def _settings(steps=60, **kwargs):
    return RunSettings(steps=steps, record_every=kwargs.pop("record_every", 10),
                       targets=(1.0, 0.1), divergence_threshold=1e6, float64=True, **kwargs)


def _regression_block(name="minibatch", lrs=(0.05,), seeds=(0,), task=None, settings=None,
                      **kwargs):
    spec = optimizers.get(name)
    task = task or _regression()
    lr = np.repeat(np.asarray(lrs, float), len(seeds))
    hparams = {k: np.full(len(lr), v) for k, v in spec.defaults.items()} | {"learning_rate": lr}
    result = run_block(spec.pure, spec.gradient, task, settings or _settings(), hparams,
                       np.tile(seeds, len(lrs)), np.zeros(len(lr), int), **kwargs)
    return task, result.outcome


def test_the_dataset_is_an_argument_not_a_constant_of_the_program():
    spec = optimizers.get("adam")
    sizes = {}
    for n in (16, 4096):
        task = _regression(n_train=n)
        args = task.args("any")
        schedule = {"record_steps": np.arange(0, 11, 5, dtype=np.int32),
                    "targets": np.ones(2, np.float32), "threshold": np.float32(1e6)}
        program, args = task.program("any"), data_task_args(args)
        start = start_program(program, np.float32)(np.zeros(2, np.uint32),
                                                   np.zeros(2, np.int32), args)
        lowered = batched_run(spec.pure, program, np.float32).lower(
            {"learning_rate": np.ones(2, np.float32)}, start,
            {k: np.float32(v) for k, v in spec.defaults.items() if k != "learning_rate"},
            args, schedule)
        sizes[n] = len(lowered.as_text())
    # 4096 x 3 float32 numbers as a constant would add ~100 kB of text; shapes add a few chars
    assert abs(sizes[4096] - sizes[16]) < 200, sizes


def data_task_args(args):
    return {k: np.asarray(v, np.float32) for k, v in args.items()}


def test_minibatches_are_drawn_per_step_and_metrics_come_from_evaluate():
    # the start is the same for every seed: seeds differ only in the batches they draw
    task, full = _regression_block(name="gd", seeds=(0, 1), keep_params=True)
    _, mini = _regression_block(name="minibatch", seeds=(0, 1), keep_params=True)
    np.testing.assert_array_equal(full.curve[0], full.curve[1])
    assert not np.array_equal(mini.curve[0], mini.curve[1])
    assert set(mini.metrics) == {"train_loss", "test_loss"}
    np.testing.assert_array_equal(mini.curve, mini.metrics["test_loss"])
    assert mini.curve.shape == (2, len(_settings().recorded_steps))
    # the last record is evaluate() at the final parameters
    args = task.args("mini-batch")
    for run in range(2):
        params = {k: v[run] for k, v in mini.params.items()}
        with jax.enable_x64(True):
            expected = task.program("mini-batch").evaluate(args, params)
        for name, curve in mini.metrics.items():
            np.testing.assert_allclose(curve[run, -1], expected[name], rtol=1e-12)
    assert mini.final[0] < mini.curve[0, 0] / 10  # it learns


def test_divergence_of_a_data_task_is_flagged_at_its_record_point():
    _, out = _regression_block(name="gd", lrs=(0.05, 3.0))
    assert out.diverged.tolist() == [False, True]
    steps = _settings().recorded_steps
    step = int(out.divergence_step[1])
    assert step in steps
    before, after = out.curve[1, steps < step], out.curve[1, steps >= step]
    assert np.all(np.isfinite(before) & (before <= 1e6))
    # frozen at the last valid record point from the divergence on
    assert np.all(after == before[-1]) and out.final[1] == before[-1]


def test_a_dataset_larger_than_the_memory_budget_is_refused_before_compiling(tmp_path):
    compiled = PROGRAMS.compiled
    with pytest.raises(DataTooLarge, match=r"regression: its data takes .* MB, more than "
                                           r"max_memory_mb = 0.01"):
        _regression_block(task=_regression(n_train=2000), max_memory_mb=0.01)
    assert PROGRAMS.compiled == compiled
    # a sweep refuses it before any block runs, not when it reaches that task
    small, large = ({"kind": "test-regression", "name": name, "n_train": n}
                    for name, n in (("small", 8), ("large", 20000)))
    config = _sweep_config("fits", {"gd": {}}, [small, large], max_memory_mb=1)
    with pytest.raises(DataTooLarge, match=r"large: its data takes .* MB, more than "
                                           r"max_memory_mb = 1;"):
        run_sweep(config, tmp_path / "out", quiet=True)
    assert not list((tmp_path / "out").glob("blocks/*/runs.parquet"))


def _sweep_config(name, optimizers_, tasks, steps=40, **extra):
    return {"name": name, "steps": steps, "seeds": 2, "float64": True, "tasks": tasks,
            "optimizers": optimizers_, "compile_cache": False, **extra}


NOISY_AND_PLAIN = [{"landscape": "sphere", "dim": 2, "noise": 1.0, "start": "random"},
                   {"landscape": "rosenbrock", "dim": 2, "start": "random"}]


def test_blocks_that_differ_only_in_data_share_one_program(tmp_path):
    PROGRAMS.clear()
    run_sweep(_sweep_config("share", {"gd": {}, "sgd": {}, "minibatch": {}},
                            NOISY_AND_PLAIN), tmp_path / "a", quiet=True)
    assert PROGRAMS.compiled == 1  # 6 blocks: one rule, two surfaces of one dimension
    # another sweep whose blocks differ only in data (learning rates, targets, noise)
    run_sweep(_sweep_config("share2", {"adam": {"learning_rate": [0.1, 0.2]}},
                            [dict(t, noise=0.5) for t in NOISY_AND_PLAIN],
                            targets=[0.5]), tmp_path / "b", quiet=True)
    run_sweep(_sweep_config("share3", {"adam": {"learning_rate": [0.3, 0.4]}},
                            NOISY_AND_PLAIN, targets=[0.25]), tmp_path / "c", quiet=True)
    assert PROGRAMS.compiled == 2
    meta = pd.read_json(tmp_path / "a" / "meta.json", typ="series")
    assert sum(not b["program_reused"] for b in meta["blocks"].values()) == 1


def test_blocks_that_differ_only_in_grid_size_share_one_program_and_keep_their_numbers(
        tmp_path):
    """Grids of 1, 2, 3 and 5 settings on two 2-D surfaces: the smaller blocks are padded to
    the largest, so one program runs all eight blocks, and each optimizer's runs are those
    of a sweep of it alone (convex surfaces, so that ulp-level differences between programs
    stay ulp-level)."""
    grids = {"gd": {"learning_rate": [1e-3]},
             "momentum": {"learning_rate": [1e-3, 2e-3]},
             "adam": {"learning_rate": [1e-3, 1e-2, 1e-1]},
             "rmsprop": {"learning_rate": [1e-4, 1e-3, 1e-2, 1e-1, 0.3], "decay": [0.9]}}
    tasks = [{"landscape": "ill_conditioned_quadratic", "dim": 2, "start": "random"},
             {"landscape": "sphere", "dim": 2, "start": "random"}]
    PROGRAMS.clear()
    together = run_sweep(_sweep_config("grids", grids, tasks), tmp_path / "all", quiet=True)
    assert PROGRAMS.compiled == 1
    runs = pd.read_parquet(together / "runs.parquet")
    for name, grid in grids.items():
        alone = run_sweep(_sweep_config(name, {name: grid}, tasks), tmp_path / name,
                          quiet=True)
        expected = without_timing(pd.read_parquet(alone / "runs.parquet"))
        got = runs[runs.optimizer == name].reset_index(drop=True)[expected.columns]
        pd.testing.assert_frame_equal(got, expected, rtol=1e-12)


def test_programs_compiled_with_other_compiler_options_are_not_reused(monkeypatch):
    from optbench.engine import run

    block = dict(name="gd", seeds=(0,))
    PROGRAMS.clear()
    _regression_block(**block)
    _regression_block(**block)
    assert PROGRAMS.compiled == 1
    monkeypatch.setattr(run, "COMPILER_OPTIONS", {})
    _regression_block(**block)
    assert PROGRAMS.compiled == 2 and len(PROGRAMS.starts) == 2


def test_start_programs_are_not_shared_across_matmul_precisions():
    PROGRAMS.clear()
    for precision in ("highest", "highest", "default"):
        _regression_block(name="gd", settings=_settings(matmul_precision=precision))
    assert len(PROGRAMS.starts) == 2 and PROGRAMS.compiled == 2


def test_a_sweep_records_the_compiler_options_it_ran_with(tmp_path, monkeypatch):
    from optbench.engine import run

    config = _sweep_config("options", {"gd": {}}, [{"landscape": "sphere", "dim": 2}], steps=5)
    meta = tmp_path / "engine" / "meta.json"
    run_sweep(config, meta.parent, quiet=True)
    assert json.loads(meta.read_text())["compiler_options"] == run.COMPILER_OPTIONS["cpu"]
    monkeypatch.setattr(run, "COMPILER_OPTIONS", {})
    meta = tmp_path / "xla" / "meta.json"
    run_sweep(config, meta.parent, quiet=True)
    assert json.loads(meta.read_text())["compiler_options"] == {}


def test_a_larger_tasks_small_block_is_padded_at_most_twice_its_runs(tmp_path):
    """Padding is free on a tiny task but costs real work on a network: there a block of 1
    setting beside one of 8 runs its own 2 runs (its own program), not 16."""
    grids = {"minibatch": {"learning_rate": [0.1]},
             "adam": {"learning_rate": [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 7e-3, 8e-3]}}
    for features, small_chunk in ((3, 16), (2000, 2)):  # 4 or 2001 parameters
        task = {"kind": "test-regression", "name": f"r{features}", "features": features}
        out = run_sweep(_sweep_config(f"pad{features}", grids, [task], steps=5),
                        tmp_path / str(features), quiet=True)
        blocks = json.loads((out / "meta.json").read_text())["blocks"]
        chunks = {b["optimizer"]: b["chunk_size"] for b in blocks.values()}
        assert chunks == {"minibatch": small_chunk, "adam": 16}


def test_bundled_rules_give_each_optimizer_its_own_numbers(tmp_path):
    # a convex surface, so that ulp-level differences between programs stay ulp-level
    tasks = [{"landscape": "ill_conditioned_quadratic", "dim": 4, "start": "random",
              "starts": 2}]
    names = ("gd", "momentum", "adagrad", "rmsprop_centered", "adam")
    lrs = {"learning_rate": [1e-3, 1e-2]}
    together = run_sweep(_sweep_config("bundle", {n: lrs for n in names}, tasks),
                         tmp_path / "all", quiet=True)
    runs = pd.read_parquet(together / "runs.parquet")
    for name in names:
        alone = run_sweep(_sweep_config(name, {name: lrs}, tasks), tmp_path / name, quiet=True)
        expected = without_timing(pd.read_parquet(alone / "runs.parquet"))
        got = runs[runs.optimizer == name].reset_index(drop=True)[expected.columns]
        pd.testing.assert_frame_equal(got, expected, rtol=1e-12)


def test_records_stay_bounded_and_show_early_and_late_steps():
    schedule = record_schedule(10**8)
    assert len(schedule) <= 200 and schedule[0] == 0 and schedule[-1] == 10**8
    assert np.all(np.diff(schedule) > 0)
    assert set(range(7)) <= set(schedule)  # the first steps, one by one
    assert np.max(np.diff(schedule)) <= 10**8 / 90  # and evenly through the end
    assert record_schedule(50).tolist() == list(range(51))
    assert record_schedule(95, record_every=10).tolist() == [*range(0, 91, 10), 95]


def test_a_long_run_records_at_most_max_records_points():
    spec = optimizers.get("gd")
    task = surface_task(landscape="sphere", dim=2)
    settings = RunSettings(steps=200_000, record_every=None, targets=(1e-3,),
                           divergence_threshold=1e6, max_records=50)
    out = run_block(spec.pure, spec.gradient, task, settings, {"learning_rate": np.full(2, 1e-4)},
                    np.arange(2), np.zeros(2, int)).outcome
    assert out.curve.shape == (2, len(settings.recorded_steps)) and out.curve.shape[1] <= 50
    assert out.hit_step[0, 0] > 0  # exact per-step scoring whatever the record spacing


@pytest.mark.parametrize(("table", "message"), [
    ({"kind": "cnn"}, r"tasks\[0\].kind: found 'cnn'; allowed one of surface"),
    ({"kind": "test-regression", "landscape": "sphere"},
     r"tasks\[0\].landscape: unknown key; allowed keys batch_size, features, n_train, name"),
    ({"landscape": "sphere", "n_train": 5},
     r"tasks\[0\].n_train: unknown key; allowed keys batch_size, dim, hessian_trace, "
     r"landscape"),
])
def test_task_kinds_and_their_fields_are_checked(table, message):
    with pytest.raises(ConfigError, match=message):
        parse(_sweep_config("bad", {"gd": {}}, [table]))


def test_data_task_runs_through_a_sweep_and_records_its_metrics(tmp_path):
    folder = run_sweep(_sweep_config("data", {"adam": {"learning_rate": [0.05]}},
                                     [{"kind": "test-regression"}], steps=30),
                       tmp_path / "d", quiet=True)
    runs = pd.read_parquet(folder / "runs.parquet")
    curves = pd.read_parquet(folder / "curves.parquet")
    assert set(runs["metric"]) == {"test_loss"} and "final_train_loss" in runs
    assert {"train_loss", "test_loss"} <= set(curves.columns)
    assert not (folder / "trajectories.parquet").exists()
    assert data_task.RegressionTask.kind in set(runs["kind"])


def test_a_task_with_its_own_plan_runs_as_if_swept_alone(tmp_path):
    """A [[tasks]] table's own steps, record_every, targets and optimizers: its blocks equal
    a sweep that has them as its settings, and the tables score each task on its own
    targets and budget (blank at the other task's)."""
    from optbench.analysis import tables_for
    from optbench.store import ResultStore

    sphere = {"landscape": "sphere", "start": [1.0, -0.5]}
    mixed = run_sweep({
        "name": "mixed", "steps": 40, "record_every": 10, "targets": [1e-2],
        "tasks": [{"landscape": "rosenbrock"},
                  {**sphere, "steps": 12, "record_every": 4, "targets": [0.5, 0.1],
                   "optimizers": ["adam"]}],
        "optimizers": {"sgd": {"learning_rate": 1e-3}, "adam": {"learning_rate": 0.1}}},
        tmp_path / "mixed", quiet=True, compile_cache=False)
    alone = run_sweep({"name": "alone", "steps": 12, "record_every": 4, "targets": [0.5, 0.1],
                       "tasks": [sphere], "optimizers": {"adam": {"learning_rate": 0.1}}},
                      tmp_path / "alone", quiet=True, compile_cache=False)
    store, reference = ResultStore(mixed), ResultStore(alone)
    runs, curves = store.table("runs"), store.table("curves")
    assert sorted(zip(runs["optimizer"], runs["task"], strict=True)) == [
        ("adam", "rosenbrock-2d"), ("adam", "sphere-2d"), ("sgd", "rosenbrock-2d")]
    own = curves[curves["run_id"] == "adam/sphere-2d/0"].reset_index(drop=True)
    pd.testing.assert_frame_equal(own[["step", "f_gap"]],
                                  reference.table("curves")[["step", "f_gap"]])
    assert curves.groupby(curves["run_id"].str.split("/").str[1])["step"].max().to_dict() == {
        "rosenbrock-2d": 40, "sphere-2d": 12}
    assert store.meta()["blocks"]["adam__sphere-2d"]["targets"] == [0.5, 0.1]
    table, text = tables_for(mixed)
    sphere_row = table.set_index(["task", "optimizer"]).loc[("sphere-2d", "adam")]
    assert np.isnan(sphere_row["success@0.01"]) and sphere_row["success@0.5"] == 1.0
    rosen_row = table.set_index(["task", "optimizer"]).loc[("rosenbrock-2d", "sgd")]
    assert np.isnan(rosen_row["success@0.5"]) and rosen_row["ert@0.01"] == np.inf
    assert "sphere-2d" in text


def _lowered(task, source="mini-batch", program=None) -> str:
    """The text of what the engine traces of ``task`` (or of ``program`` on its data): its
    program's step and evaluation."""
    args = jax.tree.map(lambda a: np.asarray(a, np.float32) if np.issubdtype(
        np.asarray(a).dtype, np.floating) else np.asarray(a), task.args(source))
    program, key = program or task.program(source), jax.random.key(0)
    params = jax.eval_shape(program.init, args, key, np.int32(0))
    return "\n".join(str(jax.make_jaxpr(f)(*arguments)) for f, arguments in (
        (program.init, (args, key, np.int32(0))),
        (program.loss_and_grad, (args, params, key, np.int32(1))),
        (program.evaluate, (args, params)), (program.project, (args, params))))


def test_tasks_with_equal_programs_lower_alike_and_the_flip_is_in_the_program(tmp_path):
    """The compile cache's key is the program: for every registered kind, tasks whose
    programs are equal (and whose data have equal shapes) lower to the same text, and
    unequal programs lower differently. Fashion-MNIST's augmentation mirrors images, MNIST's
    does not: with augment they must not share a program."""
    data_dir = str(write_tiny_mnist(tmp_path / "mnist"))
    cnn = {"data_dir": data_dir, "channels": [2], "width": 0, "batch_size": 4}
    mlp = {"depth": 1, "width": 4}
    lm = {"seq_len": 4, "d_model": 4, "layers": 1, "heads": 1}
    texts = [str(write_text(tmp_path / f"text{seed}.txt", 2000, seed)) for seed in (0, 1)]
    # per kind: tables differing in data only, then one differing in structure
    tables = {
        "surface": [{"landscape": "sphere", "dim": 2},
                    {"landscape": "sphere", "dim": 2, "noise": 1.0, "start": [1.0, 2.0]},
                    {"landscape": "sphere", "dim": 3}],
        "online-linear": [{"coefficients": [3.0, -1.0]}, {"coefficients": [1.0, 2.0]}],
        "moving-target": [{"jump_step": 2}, {"jump_step": 5, "after": 3.0}],
        "test-regression": [{}, {"batch_size": 5}, {"batch_size": 64}],
        "mnist-cnn": [cnn, {**cnn, "augment": True}],
        "fashion-mnist-cnn": [cnn, {**cnn, "augment": True}],
        "digits-cnn": [{"channels": [2], "width": 0, "dropout": 0.2},
                       {"channels": [2], "width": 0, "dropout": 0.6}],
        "mnist1d-cnn": [{"channels": [2, 2, 2]}, {"channels": [2, 2, 2],
                                                   "clip_global_norm": 1.0}],
        "markov-lm": [{**lm, "sequences": 40},
                      {**lm, "sequences": 40, "order": 1, "concentration": 2.0, "data_seed": 1},
                      {**lm, "sequences": 40, "heads": 2}],
        "char-lm": [{**lm, "text_file": texts[0]}, {**lm, "text_file": texts[1]},
                    {**lm, "text_file": texts[0], "layers": 2}],
    }
    cifar = write_cifar(write_cifar(tmp_path / "cifar", "cifar10"), "cifar100")
    for kind, problem in deepobs.PROBLEMS.items():  # the L2 factor is data, augment is not
        files = {"data_dir": str(cifar if problem.cifar else data_dir), "batch_size": 4}
        tables[kind] = ([{"batch_size": 4}, {"batch_size": 4, "name": "q"}, {}]
                        if not problem.model else
                        [files, {**files, "weight_decay": 0.5}] if problem.cifar else
                        [files, {**files, "name": "n"}])
    tables["cifar10_3c3d"].append({**tables["cifar10_3c3d"][0], "augment": False})
    for kind in set(registry.names()) - set(tables):  # the MLP kinds
        tables[kind] = [mlp, {**mlp, "weight_scale": 2.0}]
    assert set(tables) == set(registry.names())
    lowered = {}
    for kind, kind_tables in tables.items():
        for table in kind_tables:
            task = registry.build([registry.parse({"kind": kind, **table}, "t")])[0]
            lowered.setdefault(task.program("mini-batch"), set()).add(_lowered(task))
    assert all(len(texts) == 1 for texts in lowered.values())
    texts = [text for texts in lowered.values() for text in texts]
    assert len(set(texts)) == len(texts)  # unequal programs lower differently
    mnist, fashion = (registry.build([registry.parse({"kind": k, **cnn, "augment": True},
                                                     "t")])[0]
                      for k in ("mnist-cnn", "fashion-mnist-cnn"))
    assert mnist.program("mini-batch") != fashion.program("mini-batch")
    assert _lowered(mnist) != _lowered(fashion)


def test_the_convolution_derivative_form_is_in_a_cnns_program(monkeypatch):
    """The form is read when a network is traced: two forms are two programs, so a program
    compiled under one is never run under the other."""
    from optbench.nn import functional

    table = {"kind": "digits-cnn", "channels": [2], "width": 0}
    forms = {}
    for form in ("unfolded", "native"):
        monkeypatch.setenv(functional.DERIVATIVES_ENV, form)
        task = registry.build([registry.parse(table, "t")])[0]
        forms[form] = task.program("mini-batch")
    assert forms["unfolded"] != forms["native"]
    assert forms["unfolded"].conv_derivatives == "unfolded"
    # each traces under its own form, whatever the environment says when it is traced
    monkeypatch.setenv(functional.DERIVATIVES_ENV, "unfolded")
    convolutions = {name: _lowered(task, "mini-batch", program).count("conv_general_dilated")
                    for name, program in forms.items()}
    assert convolutions["native"] > convolutions["unfolded"]
