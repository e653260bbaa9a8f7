"""Sweep configs: parsing, normalization, and one-line errors naming the field."""

import hashlib
import json

import pytest

from optbench import config
from optbench.config import ConfigError, parse

BASE = {"tasks": [{"landscape": "rosenbrock"}], "optimizers": {"adam": {}}}


def test_defaults_are_spelled_out():
    cfg = parse(BASE)
    assert cfg.steps == 1000 and cfg.seeds == (0,) and not cfg.float64
    assert cfg.targets == tuple(10.0**-k for k in range(1, 9))
    assert cfg.tasks[0].dim == 2 and cfg.tasks[0].start == "default"
    assert cfg.optimizers[0].grid == {"learning_rate": (1e-3,), "b1": (0.9,), "b2": (0.999,),
                                      "eps": (1e-8,), "eps_root": (0.0,)}


def test_grids_logspace_linspace_lists():
    cfg = parse({**BASE, "optimizers": {"adam": {"learning_rate": {"logspace": [-4, -1, 4]},
                                                 "b1": {"linspace": [0.5, 0.9, 3]},
                                                 "b2": [0.99, 0.999]}}})
    grid = cfg.optimizers[0].grid
    assert grid["learning_rate"] == pytest.approx((1e-4, 1e-3, 1e-2, 1e-1))
    assert grid["b1"] == pytest.approx((0.5, 0.7, 0.9))
    assert grid["b2"] == (0.99, 0.999)


def test_same_optimizer_twice_under_two_labels():
    cfg = parse({**BASE, "optimizers": {"adam-fast": {"optimizer": "adam", "b1": 0.5},
                                        "adam": {}}})
    assert [o.label for o in cfg.optimizers] == ["adam-fast", "adam"]
    assert cfg.optimizers[0].optimizer == "adam"


def test_memory_budget_does_not_change_the_hash():
    assert parse({**BASE, "max_memory_mb": 64}).digest() == parse(BASE).digest()


def test_equal_configs_share_a_hash_however_spelled():
    a = parse({**BASE, "seeds": 3})
    b = parse({**BASE, "seeds": [0, 1, 2], "steps": 1000,
               "optimizers": {"adam": {"learning_rate": [1e-3]}}})
    assert a.digest() == b.digest()
    assert parse({**BASE, "seeds": 2}).digest() != a.digest()
    assert parse(a.to_dict()) == a


def test_a_task_table_may_set_its_own_steps_records_targets_and_optimizers():
    raw = {"steps": 1000, "record_every": 10, "targets": [1e-3], "seeds": 2,
           "tasks": [{"landscape": "rosenbrock"},
                     {"landscape": "sphere", "steps": 300, "record_every": 50,
                      "targets": [0.5, 0.1], "optimizers": ["adam"]}],
           "optimizers": {"sgd": {"learning_rate": [0.1, 0.01]}, "adam": {}}}
    cfg = parse(raw)
    assert cfg.plan("rosenbrock-2d") == config.TaskPlan(1000, 10, (1e-3,), ("sgd", "adam"), {})
    assert cfg.plan("sphere-2d") == config.TaskPlan(300, 50, (0.5, 0.1), ("adam",), {})
    assert [(o.label, t.name) for o, t in cfg.blocks()] == [
        ("sgd", "rosenbrock-2d"), ("adam", "rosenbrock-2d"), ("adam", "sphere-2d")]
    assert cfg.optimizer_steps() == (2 * 2 * 1000) + (1 * 2 * 1000) + (1 * 2 * 300)
    assert parse(cfg.to_dict()) == cfg
    assert cfg.to_dict()["tasks"][0] == parse(BASE).to_dict()["tasks"][0]  # nothing added
    assert cfg.digest() != parse({**raw, "tasks": raw["tasks"][:1] + [
        {**raw["tasks"][1], "steps": 400}]}).digest()
    assert parse(BASE).plans == ()  # no table sets anything: the hash of older configs


def test_a_task_table_may_set_its_own_grids():
    raw = {"tasks": [{"landscape": "rosenbrock", "grids": {"adam": {"learning_rate": 0.1}}},
                     {"landscape": "sphere"}],
           "optimizers": {"adam": {"learning_rate": [1e-3, 1e-2], "b1": [0.8, 0.9]},
                          "sgd": {}}}
    cfg = parse(raw)
    grids = {(o.label, t.name): o.grid for o, t in cfg.blocks()}
    assert grids[("adam", "rosenbrock-2d")]["learning_rate"] == (0.1,)
    assert grids[("adam", "rosenbrock-2d")]["b1"] == (0.8, 0.9)  # the sweep's, not set
    assert grids[("adam", "sphere-2d")]["learning_rate"] == (1e-3, 1e-2)
    assert parse(cfg.to_dict()) == cfg and cfg.optimizer_steps() == (2 + 1 + 4 + 1) * 1000


@pytest.mark.parametrize(("grids", "message"), [
    ({"adamw": {"learning_rate": 0.1}},
     r"tasks\[0\]\.grids\.adamw: found 'adamw'; allowed a label of \[optimizers\]: adam"),
    ({"adam": {"momentum": 0.9}}, r"tasks\[0\]\.grids\.adam\.momentum: unknown key"),
    ({"adam": {"b1": 1.5}}, r"tasks\[0\]\.grids\.adam\.b1: found 1\.5; allowed values in"),
    ([1], r"tasks\[0\]\.grids: found \[1\]; allowed a table of optimizer labels"),
])
def test_bad_task_grids_are_one_line_errors(grids, message):
    with pytest.raises(ConfigError, match=message):
        parse({**BASE, "tasks": [{"landscape": "rosenbrock", "grids": grids}]})


@pytest.mark.parametrize(("task", "message"), [
    ({"steps": 0}, r"tasks\[0\]\.steps: found 0; allowed an integer in \[1, 2147483647\]"),
    ({"steps": 2**31}, r"tasks\[0\]\.steps: found 2147483648; allowed an integer in \[1, "),
    ({"steps": 10, "record_every": 20},
     r"tasks\[0\]\.record_every: found 20; allowed an integer in \[1, 10\]"),
    ({"targets": []}, r"tasks\[0\]\.targets: found \[\]; allowed a non-empty list"),
    ({"optimizers": [["adam"]]}, r"tasks\[0\]\.optimizers: found \[\['adam'\]\]"),
    ({"stepz": 3}, r"tasks\[0\]\.stepz: unknown key; allowed keys .*dim.*; and in any task "
                   r"steps, record_every, targets, optimizers"),
    ({"optimizers": ["sgd"]},
     r"tasks\[0\]\.optimizers: found \['sgd'\]; allowed a list of distinct labels of "
     r"\[optimizers\]: adam"),
])
def test_bad_task_plans_are_one_line_errors(task, message):
    with pytest.raises(ConfigError, match=message):
        parse({**BASE, "tasks": [{"landscape": "rosenbrock", **task}]})


@pytest.mark.parametrize("name", config.example_names())
def test_shipped_examples_parse(name, tmp_path, monkeypatch):
    """Every example parses; deepobs-small where DeepOBS's data folder holds the files (here
    generated ones, in the standard formats)."""
    from tests.nn.test_datasets import write_tiny_mnist
    from tests.nn.test_deepobs import write_cifar

    write_tiny_mnist(tmp_path / "data_deepobs" / "fmnist", n_train=140)
    write_cifar(tmp_path / "data_deepobs", "cifar10", n_train=30)
    monkeypatch.chdir(tmp_path)
    cfg = config.example(name)
    assert cfg.name == name and cfg.optimizer_steps() > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stepz": 3}, "stepz: unknown key; allowed keys branching, compile_cache, csv, diverg"),
        ({"plans": "garbage"}, "plans: unknown key; allowed keys"),  # set by task tables
        ({"steps": 0}, r"steps: found 0; allowed an integer in \[1, 2147483647\]"),
        ({"steps": 3 * 10**9}, r"steps: found 3000000000; allowed an integer in \[1, 21"),
        ({"seeds": [1, 1]}, r"seeds: found \[1, 1\]; allowed a non-empty list of distinct"),
        ({"targets": [1e-2, -1]}, r"targets\[1\]: found -1; allowed a finite number > 0"),
        ({"float64": "yes"}, "float64: found 'yes'; allowed true or false"),
        ({"tasks": [{"landscape": "rosenbrok"}]},
         r"tasks\[0\].landscape: found 'rosenbrok'; allowed one of ackley"),
        ({"tasks": [{"landscape": "beale", "dim": 3}]},
         r"tasks\[0\].dim: found 3; allowed dim == 2"),
        ({"tasks": [{"landscape": "ravine", "params": {"condition_number": 0.5}}]},
         r"tasks\[0\].params.condition_number: found 0.5; allowed a finite number >= 1"),
        ({"tasks": [{"landscape": "ravine", "start": [1, 2, 3]}]},
         r"tasks\[0\].start: found \[1, 2, 3\]; allowed \"default\", \"random\", a point of 2"),
        ({"tasks": [{"landscape": "ravine", "starts": 4}]},
         r"tasks\[0\].starts: found 4; allowed 1 unless start = \"random\""),
        ({"tasks": [{"landscape": "ravine", "noise": -1}]},
         r"tasks\[0\].noise: found -1; allowed a finite number >= 0"),
        ({"optimizers": {"adamw": {}}}, "optimizers.adamw: found 'adamw'; allowed one of gd"),
        ({"optimizers": {"adam": {"momentum": 0.9}}},
         "optimizers.adam.momentum: unknown key; allowed keys b1, b2, eps"),
        ({"optimizers": {"adam": {"learning_rate": {"logspace": [1, 2]}}}},
         r"optimizers.adam.learning_rate.logspace: found \[1, 2\]; allowed \[lo, hi, n\]"),
        ({"optimizers": {"adam": {"b1": [0.9, 1.0]}}},
         r"optimizers.adam.b1: found 1.0; allowed values in \[0, 1\)"),
        ({"seeds": [2**31]}, r"seeds\[0\]: found 2147483648; allowed an integer in \[0, "),
        ({"seeds": 10**9}, r"seeds: found 1000000000; allowed an integer in \[1, 1000000\]"),
        ({"optimizers": {"my adam": {"optimizer": "adam"}}},
         "optimizers.my adam: found 'my adam'; allowed a label of letters"),
        ({"optimizers": {"adam": {"b1": {"linspace": [0.5, 0.5, 3]}}}},
         r"optimizers.adam.b1.linspace: found \[0.5, 0.5, 0.5\]; allowed lo != hi"),
        ({"optimizers": {"sgd": {"learning_rate": -0.1}}},
         r"optimizers.sgd.learning_rate: found -0.1; allowed values in \[0, inf\)"),
    ],
)
def test_errors_name_the_field_what_was_found_and_what_is_allowed(change, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse({**BASE, **change}, source="my.toml")
    assert str(error.value).startswith("my.toml: ") and "\n" not in str(error.value)


def test_toml_syntax_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = = 3")
    with pytest.raises(ConfigError, match=r"bad.toml: \(syntax\)"):
        config.load(bad)
    with pytest.raises(ConfigError, match="an existing TOML file"):
        config.load(tmp_path / "missing.toml")


def test_matmul_precision_is_highest_by_default_recorded_and_leaves_old_hashes_alone():
    """float32 products are exact unless a config opts into a GPU's faster ones; the field
    is stored, changes the hash when set, and at its default leaves the hash of a config
    written before it existed as it was."""
    from optbench.config import parse as parse_config

    base = {"tasks": [{"landscape": "sphere"}], "optimizers": {"gd": {}}}
    config = parse_config(base)
    assert config.matmul_precision == "highest"
    stored = config.to_dict()
    assert stored["matmul_precision"] == "highest"
    # the hash as stores written before the field computed it: their folders stay theirs
    hashed = {k: v for k, v in stored.items() if k not in (
        "max_memory_mb", "csv", "compile_cache", "keep_params", "matmul_precision",
        "scoring", "branching")}
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    assert config.digest() == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    faster = parse_config({**base, "matmul_precision": "high"})
    assert faster.digest() != config.digest() and parse_config(faster.to_dict()) == faster
    with pytest.raises(ConfigError, match=r"matmul_precision: found 'tf32'; allowed one of "
                                          r"highest, high, default"):
        parse_config({**base, "matmul_precision": "tf32"})
    coarse = parse_config({**base, "scoring": "record"})  # so does the scoring mode
    assert config.scoring == "step" and coarse.digest() != config.digest()
    with pytest.raises(ConfigError, match=r"scoring: found 'exact'; allowed one of step, "
                                          r"record"):
        parse_config({**base, "scoring": "exact"})
    per_run = parse_config({**base, "branching": "run"})  # the same numbers: the same hash
    assert config.branching == "auto" and per_run.digest() == config.digest()
    with pytest.raises(ConfigError, match=r"branching: found 'loop'; allowed one of auto, "
                                          r"step, run"):
        parse_config({**base, "branching": "loop"})
