"""The command line: in-process through ``optbench.cli.main``, and as a subprocess where
what matters is what a user sees (one-line errors, no traceback)."""

import os
import subprocess
import sys

import pandas as pd

from optbench.cli import main


def test_list_prints_optimizers_and_landscapes(capsys):
    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    assert max(map(len, printed.splitlines())) <= 100
    assert "optax.sgd(learning_rate," in printed and "nesterov=True)" in printed  # wrapped
    assert "adam: Kingma & Ba (2015), Algorithm 1. eps outside the sqrt" in printed
    out = printed
    assert "himmelblau" in out and "multimodal" in out and "unbounded" in out


def test_list_filters_landscapes_by_kind(capsys):
    assert main(["list", "landscapes", "--kind", "saddle"]) == 0
    out = capsys.readouterr().out
    assert "monkey_saddle" in out and "rosenbrock" not in out


def test_sweep_example_then_table(tmp_path, capsys):
    out = tmp_path / "ravine"
    assert main(["sweep", "--example", "momentum-vs-sgd-ravine", "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| ravine-2d" in printed and "momentum" in printed and "ERT" in printed
    assert (out / "runs.parquet").exists() and (out / "convergence.tex").exists()
    assert main(["table", str(out), "--reference", "optax", "--quiet", "--write"]) == 0
    printed = capsys.readouterr().out
    assert "Max relative deviation of the recorded curves from optax" in printed
    assert (out / "reference-optax" / "runs.parquet").exists()
    table = pd.read_csv(out / "convergence.csv")
    assert (table["optax_max_deviation"] <= 1e-6).all()  # float32 curves


def _optbench(*args, cwd):
    return subprocess.run([sys.executable, "-m", "optbench.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                          timeout=300)


def test_config_errors_are_one_line_without_traceback(tmp_path):
    config = tmp_path / "lr.toml"
    config.write_text('[[tasks]]\nlandscape = "rosenbrock"\n'
                      '[optimizers.adam]\nlearning_rate = { logspace = [1, 2] }\n')
    result = _optbench("sweep", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("optbench: error: lr.toml: optimizers.adam.learning_rate.logspace: "
                             "found [1, 2]; allowed [lo, hi, n] (exponents of 10 and a count "
                             ">= 1)\n")
    debug = _optbench("--debug", "sweep", str(config), cwd=tmp_path)
    assert "Traceback" in debug.stderr


def test_unknown_example_and_bad_kind(tmp_path, capsys):
    assert main(["sweep", "--example", "nope"]) == 2
    assert "allowed one of adaptive-methods-multimodal" in capsys.readouterr().err
    assert main(["list", "landscapes", "--kind", "bumpy"]) == 2
    assert "valid kinds: convex" in capsys.readouterr().err
