"""DeepOBS's test problems: parameter counts, quadratic_deep's draw, the CIFAR and IDX readers
on generated files, a tiny training run through the sweep, and the data_dir errors."""

import dataclasses
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import optbench
from optbench import config
from optbench.nn import augment, datasets
from optbench.nn.errors import NNError
from optbench.nn.models import (
    Activation,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Pool,
    Sequential,
    Standardize,
)
from optbench.tasks import deepobs, registry
from optbench.validate import ConfigError
from tests.nn.test_datasets import write_tiny_mnist

# DeepOBS's counts: cifar10_3c3d, fmnist_2c2d and cifar100_allcnnc as its docs and the
# issue state them; the others summed by hand from DeepOBS's layer lists, e.g. the MLP
# 784·1000+1000 + 1000·500+500 + 500·100+100 + 100·10+10
DEEPOBS_PARAMETERS = {
    "quadratic_deep": 100, "mnist_logreg": 7_850, "mnist_mlp": 1_336_610,
    "fmnist_mlp": 1_336_610, "mnist_2c2d": 3_274_634, "fmnist_2c2d": 3_274_634,
    "cifar10_3c3d": 895_210, "cifar100_3c3d": 918_340, "cifar100_allcnnc": 1_387_108}


def test_every_kind_has_deepobs_parameter_count_and_lists_it_in_full():
    assert set(DEEPOBS_PARAMETERS) == set(deepobs.PROBLEMS)
    for kind, count in DEEPOBS_PARAMETERS.items():
        assert deepobs.parameter_count(kind) == count, kind
        assert f"{count:,} parameters" in registry.get(kind).about()


def test_parameter_count_equals_the_initialized_parameters_and_layers_keep_their_init():
    model = Sequential((Standardize(), Dropout(0.2, tunable=False),
                        Conv(6, 3, 2, "SAME", bias=0.1), Activation("relu"),
                        Pool("max", 3, 2, "SAME"), Conv(5, 1, initializer="zeros"),
                        GlobalAvgPool(), Dense(4, initializer="truncated_normal(0.05)")),
                       (9, 9, 3), "xavier_normal")
    params = jax.jit(model.init)(jax.random.key(0))
    assert sum(leaf.size for leaf in jax.tree.leaves(params)) == model.parameter_count()
    assert model.shapes()[4] == (3, 3, 6) and model.shapes()[-2] == (5,)
    np.testing.assert_array_equal(params[2]["b"], np.full(6, 0.1, np.float32))
    assert not params[5]["w"].any() and params[7]["w"].std() < 0.06
    # the task's dropout knob (0 here) does not reach a fixed rate
    fixed = Sequential((Dropout(0.5, tunable=False),), (1000,))
    out = fixed.apply(({},), jnp.ones((1, 1000)), key=jax.random.key(1), train=True, dropout=0.0)
    assert 0.4 < float(jnp.mean(out == 0)) < 0.6


def _subgroup_rotation(rng, dim):
    """The subgroup algorithm as Diaconis & Shahshahani state it, written apart from
    deepobs.haar_rotation: R_{d+1} = H(e₁ - v) · diag(1, R_d), H the Householder reflection."""
    t = 2 * np.pi * rng.uniform()
    r = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    for d in range(2, dim):
        v = rng.normal(size=d + 1)
        v = v / np.linalg.norm(v)
        w = np.eye(d + 1)[0] - v
        w = w / np.linalg.norm(w)
        r = (np.eye(d + 1) - 2 * np.outer(w, w)) @ np.block(
            [[np.ones((1, 1)), np.zeros((1, d))], [np.zeros((d, 1)), r]])
    return -r


def test_quadratic_deep_hessian_is_deepobs_draw():
    rng = np.random.RandomState(42)
    drawn = np.concatenate([rng.uniform(0, 1, 90), rng.uniform(30, 60, 10)])
    rotation = _subgroup_rotation(rng, 100)
    eigenvalues, hessian = deepobs.quadratic_deep_hessian()
    np.testing.assert_array_equal(eigenvalues, drawn)
    np.testing.assert_allclose(np.linalg.eigvalsh(hessian), np.sort(drawn), rtol=1e-10)
    np.testing.assert_allclose(hessian, rotation.T @ np.diag(drawn) @ rotation, atol=1e-10)
    assert np.isclose(np.linalg.det(rotation), 1.0)


def test_quadratic_deep_starts_at_deepobs_loss_on_its_data():
    task = registry.build([registry.parse({"kind": "quadratic_deep"}, "tasks[0]")])[0]
    program, args = task.program("mini-batch"), task.args("mini-batch")
    theta = program.init(args, jax.random.key(0), 0)
    metrics = program.evaluate(args, theta)
    hessian = deepobs.quadratic_deep_hessian()[1]
    for split, seed in (("train", 42), ("test", 43), ("valid", 44)):
        x = np.float32(np.random.RandomState(seed).normal(0.0, 0.6, (1000, 100)))
        d = 1.0 - x.astype(np.float64)
        expected = np.mean(0.5 * np.sum(d @ hessian * d, axis=1))  # DeepOBS's loss at θ = 1
        assert float(metrics[f"{split}_loss"]) == pytest.approx(expected, rel=1e-5), split
    assert program.batch == 128 and task.metric == "valid_loss" and not task.maximize


def write_cifar(folder, name, n_train=20, n_test=10, truncate=None):
    """Generated CIFAR python batches in the standard layout of ``name``."""
    sub, train, test, key = datasets.CIFAR[name]
    (folder / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    classes = 100 if name == "cifar100" else 10
    for file in (*train, test):
        n = n_test if file == test else n_train
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 key: [int(i) % classes for i in range(n)], b"batch_label": b"generated"}
        raw = pickle.dumps(batch, protocol=2)
        (folder / sub / file).write_bytes(raw if file != truncate else raw[: len(raw) // 2])
    return folder


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reader_reads_the_python_pickles_channels_last(tmp_path, name):
    write_cifar(tmp_path, name)
    sub, train, test, key = datasets.CIFAR[name]
    x, y = datasets.read_cifar_batch(tmp_path / sub / test, key)
    with open(tmp_path / sub / test, "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    # pixel (row 1, column 2) of channel c is byte c·1024 + 1·32 + 2 of the row
    np.testing.assert_array_equal(x[3, 1, 2], raw[b"data"][3, [34, 1024 + 34, 2048 + 34]])
    np.testing.assert_array_equal(y, raw[key])
    data = datasets.cifar(tmp_path, name)
    files = len(train)  # 20 images each, 1/10 held out
    assert data.x_train.shape == (18 * files, 32, 32, 3) and len(data.x_valid) == 2 * files
    assert data.x_test.shape == (10, 32, 32, 3)
    assert data.outputs == (100 if name == "cifar100" else 10)
    assert data.x_train.max() > 1  # DeepOBS's 0-255 pixels; the model standardizes


def test_truncated_cifar_and_idx_files_are_one_line_errors(tmp_path):
    write_cifar(tmp_path, "cifar10", truncate="data_batch_3")
    with pytest.raises(NNError, match=r"data_batch_3: not a complete CIFAR python batch") as error:
        datasets.cifar(tmp_path, "cifar10")
    assert "\n" not in str(error.value)
    mnist = write_tiny_mnist(tmp_path / "mnist")
    images = mnist / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-7])
    with pytest.raises(NNError, match=r"train-images-idx3-ubyte: IDX header says shape") as error:
        datasets.idx_images(mnist, "mnist")
    assert "\n" not in str(error.value)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    (tmp_path / "batch").write_bytes(pickle.dumps({b"data": print}))
    with pytest.raises(NNError, match="not part of a CIFAR batch"):
        datasets.read_cifar_batch(tmp_path / "batch", b"labels")


@pytest.mark.parametrize("table,match", [
    ({"kind": "cifar10_3c3d"}, r"tasks\[0\]\.data_dir: found None; allowed a folder holding "
     r"cifar-10-batches-py/data_batch_1.*https://www\.cs\.toronto\.edu/~kriz/cifar\.html"),
    ({"kind": "fmnist_2c2d", "data_dir": "/nonexistent"}, r"data_dir: found '/nonexistent'.*"
     r"github\.com/zalandoresearch/fashion-mnist; missing train-images-idx3-ubyte"),
    ({"kind": "cifar100_allcnnc", "data_dir": "CIFAR"}, r"cifar-100-python/train.*missing "
     r"cifar-100-python/test"),
    ({"kind": "quadratic_deep", "batch_size": 1001}, r"batch_size: found 1001"),
    ({"kind": "mnist_mlp", "weight_decay": 0.1}, r"weight_decay"),
])
def test_bad_deepobs_tables_are_one_line_config_errors(tmp_path, monkeypatch, table, match):
    write_cifar(tmp_path / "CIFAR", "cifar100")
    (tmp_path / "CIFAR" / "cifar-100-python" / "test").unlink()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=match) as error:
        registry.parse(table, "tasks[0]")
    assert "\n" not in str(error.value)


def test_deepobs_tables_round_trip(tmp_path):
    """A config written back as its table (the results folder's copy) parses to itself."""
    folder = write_cifar(tmp_path, "cifar100")
    for table in ({"kind": "quadratic_deep", "batch_size": 32},
                  {"kind": "cifar100_allcnnc", "data_dir": str(folder), "batch_size": 8,
                   "weight_decay": 0.01, "augment": False}):
        parsed = registry.parse(table, "tasks[0]")
        assert registry.parse(parsed.to_dict(), "tasks[0]") == parsed
        assert {k: parsed.to_dict()[k] for k in table} == table


def test_deepobs_cifar_augmentation_keeps_gray_gray_and_varies_per_image():
    images = jnp.broadcast_to(jnp.arange(32.0)[None, :, None, None], (8, 32, 32, 3)) * 8
    out = jax.jit(augment.deepobs_cifar)(jax.random.key(0), images)
    np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-3)  # no colour from gray
    rows = np.asarray(out[:, 16, :, 0])
    assert np.isfinite(rows).all() and not np.allclose(rows, rows[0])  # each image its own


def test_saturation_is_tensorflows_hsv_adjustment():
    """The closed form equals the HSV round trip: saturation times the factor, capped at 1."""
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    images = np.random.default_rng(0).uniform(0, 1, (4, 5, 5, 3)).astype(np.float32)
    for factor in (0.5, 1.5, 40.0):
        hsv = rgb_to_hsv(images)
        hsv[..., 1] = np.minimum(hsv[..., 1] * factor, 1.0)
        np.testing.assert_allclose(augment._saturate(images, factor), hsv_to_rgb(hsv),
                                   atol=1e-5)


def test_cifar_labels_outside_the_classes_are_refused(tmp_path):
    folder = write_cifar(tmp_path, "cifar10")
    batch = folder / "cifar-10-batches-py" / "test_batch"
    with open(batch, "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    batch.write_bytes(pickle.dumps({**raw, b"labels": [10] * len(raw[b"labels"])}))
    with pytest.raises(NNError, match=r"test_batch: cifar10 labels are 0 \.\.\. 9; found 10"):
        datasets.cifar(folder, "cifar10")


def _tiny_cifar_task(tmp_path, weight_decay):
    """cifar10_3c3d on generated files, its network swapped for a tiny one (the program's
    wiring, L2 and augmentation stay the kind's)."""
    folder = write_cifar(tmp_path / "data", "cifar10")
    table = {"kind": "cifar10_3c3d", "data_dir": str(folder), "batch_size": 4,
             "weight_decay": weight_decay}
    task = registry.build([registry.parse(table, "tasks[0]")])[0]
    tiny = Sequential((Standardize(), Flatten(), Dense(10)), (32, 32, 3), "xavier_uniform")
    return dataclasses.replace(task, model=tiny)


def test_deepobs_l2_joins_the_loss_on_kernels_only(tmp_path):
    """DeepOBS's regularizer ½·wd·Σ‖w‖²: in the step's loss and gradient (kernels, not
    biases) and in every reported loss; the same key draws the same batch and augmentation."""
    task = _tiny_cifar_task(tmp_path, 0.1)
    program, decayed = task.program("mini-batch"), task.args("mini-batch")
    plain = {**decayed, "weight_decay": np.float64(0.0)}
    assert program.augment and program.batch == 4 and decayed["weight_decay"] == 0.1
    params = jax.jit(program.init)(decayed, jax.random.key(0), 0)
    penalty = 0.05 * sum(float(jnp.sum(p["w"] ** 2)) for p in params if "w" in p)
    step, evaluate = jax.jit(program.loss_and_grad), jax.jit(program.evaluate)
    (v0, g0), (v1, g1) = (step(args, params, jax.random.key(3), jnp.int32(5))
                          for args in (plain, decayed))
    assert float(v1 - v0) == pytest.approx(penalty, rel=1e-4)
    for p, a, b in zip(params, g0, g1, strict=True):
        if "w" in p:
            np.testing.assert_allclose(b["w"] - a["w"], 0.1 * p["w"], atol=1e-6)
            np.testing.assert_allclose(b["b"], a["b"], atol=1e-6)
    e0, e1 = (evaluate(args, params) for args in (plain, decayed))
    for split in ("train", "valid", "test"):
        assert float(e1[f"{split}_loss"] - e0[f"{split}_loss"]) == pytest.approx(penalty,
                                                                                 rel=1e-4)


def test_deepobs_kinds_train_through_the_sweep(tmp_path):
    """A DeepOBS network on generated IDX files and quadratic_deep, through config, engine
    and store."""
    folder = write_tiny_mnist(tmp_path / "mnist")
    tasks = [{"kind": "mnist_logreg", "data_dir": str(folder), "batch_size": 4},
             {"kind": "quadratic_deep", "steps": 30}]
    sweep = config.parse({"name": "deepobs-tiny", "steps": 4, "record_every": 2, "seeds": 1,
                          "targets": [0.5], "tasks": tasks,
                          "optimizers": {"sgd": {"optimizer": "minibatch",
                                                 "learning_rate": 0.01}}})
    out = optbench.sweep(sweep, results_root=tmp_path, quiet=True, yes=True,
                         compile_cache=False)
    runs = pd.read_parquet(out / "runs.parquet").set_index("task")
    curves = pd.read_parquet(out / "curves.parquet")
    assert runs.loc["mnist_logreg", "metric"] == "valid_accuracy"
    assert runs.loc["quadratic_deep", "metric"] == "valid_loss"
    logreg = curves[curves["run_id"] == runs.loc["mnist_logreg", "run_id"]].set_index("step")
    assert np.isfinite(logreg[["train_loss", "valid_loss", "test_accuracy"]]).all().all()
    # zero weights: every class equally likely, the loss log 10 at the start
    assert logreg.loc[0, "train_loss"] == pytest.approx(np.log(10), rel=1e-5)
    assert logreg["train_loss"].iloc[-1] < logreg.loc[0, "train_loss"]
    quadratic = curves[curves["run_id"] == runs.loc["quadratic_deep", "run_id"]]
    assert quadratic["valid_loss"].iloc[-1] < 0.5 * quadratic["valid_loss"].iloc[0]
