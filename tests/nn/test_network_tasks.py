"""Network tasks: config validation, one-line errors, training under the ordinary engine."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

import optbench
from optbench import config
from optbench.tasks import network, registry
from optbench.validate import ConfigError
from tests.nn.test_datasets import write_tiny_mnist


def parse(table):
    return registry.parse(table, "tasks[0]")


def test_every_kind_is_registered_and_round_trips(tmp_path):
    data_dir = str(write_tiny_mnist(tmp_path / "mnist"))
    for kind in network.KINDS:
        extra = {"data_dir": data_dir, "batch_size": 8} if kind.endswith("mnist-cnn") else {}
        parsed = parse({"kind": kind, **extra})
        assert kind in registry.names()
        assert parse(parsed.to_dict()) == parsed


@pytest.mark.parametrize("table,match", [
    ({"kind": "wine-ann", "activation": "gelu"},
     r"tasks\[0\]\.activation: found 'gelu'; allowed one of sigmoid, tanh, relu"),
    ({"kind": "wine-ann", "initializer": "orthogonal"},
     r"tasks\[0\]\.initializer: found 'orthogonal'; allowed one of zeros, uniform"),
    ({"kind": "wine-ann", "channels": [3]}, r"tasks\[0\]\.channels: unknown key"),
    ({"kind": "digits-cnn", "channels": [4, 4, 4, 4]},
     r"tasks\[0\]: .*layer 11 \(pool\): window 2, stride 2 on input \(1, 1\)"),
    ({"kind": "digits-cnn", "kernel": [3, 3, 3]}, r"tasks\[0\]\.kernel: .*a list of 2"),
    ({"kind": "mnist1d-cnn", "padding": "FULL"}, r"tasks\[0\]\.padding: found 'FULL'"),
    ({"kind": "wine-ann", "dropout": 1.0}, r"tasks\[0\]\.dropout: found 1\.0"),
    ({"kind": "wine-ann", "train_size": 5000},
     r"tasks\[0\]\.train_size: found 5000; allowed an integer in \[0, \d+\] \(the training "
     r"examples of wine; 0: all\)"),
    ({"kind": "wine-ann", "train_size": 10, "batch_size": 16},
     r"tasks\[0\]\.batch_size: found 16; allowed an integer in \[1, 10\]"),
    ({"kind": "mnist1d-mlp", "batch_size": 5000},
     r"tasks\[0\]\.batch_size: found 5000; allowed an integer in \[1, 3600\]"),
    ({"kind": "mnist-cnn", "data_dir": "/nonexistent/mnist"},
     r"tasks\[0\]\.data_dir: found '/nonexistent/mnist'; allowed a folder holding "
     r"train-images-idx3-ubyte.*missing"),
])
def test_bad_fields_are_one_line_config_errors(table, match):
    with pytest.raises(ConfigError, match=match) as error:
        parse(table)
    assert "\n" not in str(error.value)


def tiny(kind, **fields):
    task, = registry.build([parse({"kind": kind, **fields})])
    return task


def test_clip_global_norm_bounds_the_gradient():
    task = tiny("wine-ann", weight_scale=20.0, clip_global_norm=0.5)
    args = jax.tree.map(jnp.asarray, task.args("mini-batch"))
    program = task.program("mini-batch")
    params = program.init(args, jax.random.key(0), 0)
    _, grads = jax.jit(program.loss_and_grad)(args, params, jax.random.key(1), 0)
    assert float(optax.tree.norm(grads)) == pytest.approx(0.5, rel=1e-4)


def test_batches_depend_on_the_step_and_the_key_only():
    task = tiny("digits-cnn", channels=[4], width=0, augment=True, dropout=0.2)
    args = jax.tree.map(jnp.asarray, task.args("mini-batch"))
    program = task.program("mini-batch")
    params = program.init(args, jax.random.key(0), 0)
    f = jax.jit(lambda k, t: program.loss_and_grad(args, params, k, t)[0])
    key = jax.random.key(3)
    assert f(key, 5) == f(key, 5)
    assert f(key, 5) != f(key, 6) and f(key, 5) != f(jax.random.key(4), 5)


def test_every_kind_trains_a_few_steps_with_finite_metrics(tmp_path):
    data_dir = str(write_tiny_mnist(tmp_path / "mnist"))
    small_cnn = {"channels": [4], "width": 8, "batch_size": 8}
    tasks = [
        {"kind": "mnist1d-cnn", "channels": [4, 4, 4], "batch_size": 8},
        {"kind": "digits-cnn", "augment": True, "dropout": 0.2, **small_cnn},
        {"kind": "breast-cancer-ann", "depth": 1, "width": 8, "activation": "prelu"},
        {"kind": "diabetes-ann", "depth": 1, "width": 8},
        {"kind": "mnist-cnn", "data_dir": data_dir, **small_cnn},
        {"kind": "fashion-mnist-cnn", "data_dir": data_dir, "name": "fashion", **small_cnn},
    ]
    out = optbench.sweep({"name": "kinds", "steps": 4, "record_every": 2, "seeds": 1,
                          "targets": [0.5], "tasks": tasks,
                          "optimizers": {"adam": {"learning_rate": 1e-3}}},
                         results_root=tmp_path, quiet=True, yes=True, compile_cache=False)
    curves = pd.read_parquet(out / "curves.parquet")
    runs = pd.read_parquet(out / "runs.parquet")
    assert set(runs["kind"]) == {t["kind"] for t in tasks}
    curves["kind"] = curves["run_id"].map(runs.set_index("run_id")["kind"])
    for kind, part in curves.groupby("kind"):
        own = part.drop(columns=["run_id", "step", "kind"]).dropna(axis=1, how="all")
        assert {"train_loss", "valid_loss", "test_loss", "grad_norm",
                "grad_norm_layer1"} <= set(own)
        assert np.isfinite(own.to_numpy()).all(), kind
    regression = runs[runs["kind"] == "diabetes-ann"]
    assert (regression["metric"] == "valid_r2").all()
    assert regression["final_test_r2"].notna().all()


def test_a_small_sweep_improves_test_accuracy_well_above_chance(tmp_path):
    """Two optimizers x two learning rates x two seeds on wine-ann and mnist1d-mlp, through
    the ordinary engine and store."""
    sweep = config.parse({
        "name": "nn-sweep", "steps": 300, "record_every": 100, "seeds": 2,
        "targets": [0.6, 0.8, 0.9],
        "tasks": [{"kind": "wine-ann"}, {"kind": "mnist1d-mlp"}],
        "optimizers": {"sgd": {"optimizer": "minibatch", "learning_rate": [0.03, 0.1]},
                       "adam": {"learning_rate": [1e-3, 1e-2]}}})
    out = optbench.sweep(sweep, results_root=tmp_path, quiet=True, yes=True,
                         compile_cache=False)
    runs = pd.read_parquet(out / "runs.parquet")
    curves = pd.read_parquet(out / "curves.parquet")
    assert len(runs) == 2 * 2 * 2 * 2 and not runs["diverged"].any()
    assert (runs["metric"] == "valid_accuracy").all() and runs["maximize"].all()
    start = curves[curves["step"] == 0].set_index("run_id")["valid_accuracy"]
    runs = runs.set_index("run_id")
    assert (runs["final"] > start[runs.index]).mean() >= 0.75  # training helps
    best = runs.groupby(["task", "optimizer", "learning_rate"])["final"].median()
    # chance: 0.40 (wine's largest class), 0.10 (MNIST-1D's ten classes)
    assert best["wine-ann"].max() >= 0.9
    assert best["mnist1d-mlp"].max() >= 0.4
    assert runs.loc[runs["task"] == "wine-ann", "steps_to_0.8"].notna().all()


def test_chunked_evaluation_equals_one_batch(monkeypatch):
    task = tiny("breast-cancer-ann", depth=1, width=8)
    args = jax.tree.map(jnp.asarray, task.args("mini-batch"))
    program = task.program("mini-batch")
    params = program.init(args, jax.random.key(0), 0)
    whole = jax.jit(program.evaluate)(args, params)
    monkeypatch.setattr(network, "EVAL_ELEMENTS", 8 * 7)  # chunks of 7 examples
    assert program._eval_chunk() == 7
    chunked = jax.jit(program.evaluate)(args, params)
    for name, value in whole.items():
        np.testing.assert_allclose(chunked[name], value, rtol=1e-5, err_msg=name)


def test_gd_sgd_and_minibatch_train_on_their_own_batches(tmp_path):
    """GD (full batch), SGD (one example) and mini-batch SGD in one sweep each equal that
    optimizer swept alone: their programs are not shared although the rest is."""
    from optbench.engine.run import PROGRAMS

    def final_losses(names, folder):
        PROGRAMS.clear()
        out = optbench.sweep({"name": folder, "steps": 6, "record_every": 3, "seeds": 1,
                              "targets": [0.9],
                              "tasks": [{"kind": "wine-ann", "depth": 1, "width": 8}],
                              "optimizers": {n: {"learning_rate": 0.05} for n in names}},
                             results_root=tmp_path, quiet=True, yes=True, compile_cache=False)
        runs = pd.read_parquet(out / "runs.parquet")
        return runs.set_index("optimizer")["final_train_loss"]

    together = final_losses(["gd", "sgd", "minibatch"], "together")
    assert together.nunique() == 3
    for name in together.index:
        alone = final_losses([name], f"alone-{name}")
        np.testing.assert_allclose(together[name], alone[name], rtol=1e-6, err_msg=name)


def test_lists_in_a_networks_knobs_stand_for_one_task_per_combination():
    sweep = config.parse({
        "tasks": [{"kind": "wine-ann", "name": "mlp", "activation": ["tanh", "relu"],
                   "dropout": [0.0, 0.5], "steps": 7},
                  {"landscape": "sphere"}],
        "optimizers": {"adam": {}}})
    assert [t.name for t in sweep.tasks] == [
        "mlp-tanh-dropout0.0", "mlp-tanh-dropout0.5", "mlp-relu-dropout0.0",
        "mlp-relu-dropout0.5", "sphere-2d"]
    assert [(t.activation, t.dropout) for t in sweep.tasks[:4]] == [
        ("tanh", 0.0), ("tanh", 0.5), ("relu", 0.0), ("relu", 0.5)]
    assert all(sweep.plan(t.name).steps == 7 for t in sweep.tasks[:4])  # the table's plan
    assert config.parse(sweep.to_dict()) == sweep
    with pytest.raises(ConfigError, match=r"tasks\[1\]\.activation: found 'gelu'"):
        config.parse({"tasks": [{"landscape": "sphere"},
                                {"kind": "wine-ann", "activation": ["relu", "gelu"]}],
                      "optimizers": {"adam": {}}})
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.dropout: found \[\]"):
        config.parse({"tasks": [{"kind": "wine-ann", "dropout": []}],
                      "optimizers": {"adam": {}}})


def test_dropout_weight_scale_and_clip_are_data_one_program_for_all(tmp_path):
    """Tasks that differ only in dropout rate, weight scale or clipping norm share one
    compiled program, and each equals the same task swept alone."""
    from optbench.engine.run import PROGRAMS

    knobs = [{"dropout": 0.2, "weight_scale": 1.0, "clip_global_norm": 0.5},
             {"dropout": 0.5, "weight_scale": 3.0, "clip_global_norm": 2.0}]
    tasks = [{"kind": "wine-ann", "name": f"wine-{i}", "depth": 1, "width": 8, **k}
             for i, k in enumerate(knobs)]

    def sweep(tables, folder):
        PROGRAMS.clear()
        out = optbench.sweep({"name": folder, "steps": 6, "record_every": 3, "seeds": 1,
                              "targets": [0.9],
                              "tasks": tables,
                              "optimizers": {"minibatch": {"learning_rate": 0.1}}},
                             results_root=tmp_path, quiet=True, yes=True, compile_cache=False)
        runs = pd.read_parquet(out / "runs.parquet")
        return runs.set_index("task")["final_train_loss"], PROGRAMS.compiled

    together, compiled = sweep(tasks, "together")
    assert compiled == 1 and together.nunique() == 2
    for table in tasks:
        alone, _ = sweep([table], f"alone-{table['name']}")
        np.testing.assert_allclose(together[table["name"]], alone[table["name"]], rtol=1e-6)


def test_weight_scale_multiplies_the_initial_kernels_only():
    one = tiny("wine-ann", activation="prelu")
    three = tiny("wine-ann", activation="prelu", weight_scale=3.0)
    key = jax.random.key(5)
    p1 = one.program("any").init(jax.tree.map(jnp.asarray, one.args("any")), key, 0)
    p3 = three.program("any").init(jax.tree.map(jnp.asarray, three.args("any")), key, 0)
    for a, b in zip(p1, p3, strict=True):
        for name in a:
            factor = 3.0 if name == "w" else 1.0  # biases and PReLU slopes are not scaled
            np.testing.assert_allclose(b[name], factor * a[name], rtol=1e-6)


def test_same_seed_runs_of_two_optimizers_share_their_start_and_their_batches():
    """The pairing behind the paired tests: with the same seed, momentum 0 and mini-batch
    SGD (two optimizers, two programs) start from identical parameters and follow the same
    path, so they drew the same batches and dropout masks. Another seed starts elsewhere and
    draws others."""
    from optbench import optimizers
    from optbench.engine.run import RunSettings, run_block

    task = tiny("wine-ann", depth=1, width=4, dropout=0.2)
    settings = RunSettings(steps=6, record_every=3, targets=(0.5,), divergence_threshold=1e9)
    seeds, starts = np.asarray([0, 1]), np.zeros(2, int)

    def block(name, **hparams):
        spec = optimizers.get(name)
        values = {**spec.defaults, "learning_rate": 0.1, **hparams}
        return run_block(spec.pure, spec.gradient, task, settings,
                         {k: np.full(2, v) for k, v in values.items()}, seeds, starts,
                         keep_path=True).outcome

    momentum, minibatch = block("momentum", momentum=0.0), block("minibatch")
    for m, s in zip(jax.tree.leaves(momentum.path), jax.tree.leaves(minibatch.path),
                    strict=True):
        np.testing.assert_array_equal(m[:, 0], s[:, 0])  # record 0: the start, per seed
        np.testing.assert_allclose(m, s, rtol=1e-6, atol=1e-7)  # the same batches, masks
    kernels = max(jax.tree.leaves(momentum.path), key=np.ndim)
    assert not np.array_equal(kernels[0, 0], kernels[1, 0])  # seeds start apart
    assert not np.array_equal(momentum.curve[0], momentum.curve[1])


def test_validation_metrics_are_computed_on_the_validation_split():
    """Relabel the validation split wrongly: valid_accuracy drops to what wrong labels
    allow, while test_accuracy stays; the primary metric is the validation one."""
    from dataclasses import replace

    task = tiny("wine-ann", depth=1, width=4)
    wrong = replace(task, data=replace(task.data, y_valid=(task.data.y_valid + 1) % 3))
    program = task.program("full batch")
    assert program.metric == task.metric == "valid_accuracy"
    params = program.init(jax.tree.map(jnp.asarray, task.args("any")), jax.random.key(0), 0)
    right = jax.jit(program.evaluate)(task.args("any"), params)
    shifted = jax.jit(program.evaluate)(wrong.args("any"), params)
    assert float(shifted["test_accuracy"]) == float(right["test_accuracy"])
    assert float(shifted["valid_accuracy"]) != float(right["valid_accuracy"])
    predicted = jnp.argmax(program.model.apply(params, task.args("any")["x_valid"]), -1)
    assert float(right["valid_accuracy"]) == pytest.approx(
        float(jnp.mean(predicted == task.data.y_valid)), abs=1e-6)
