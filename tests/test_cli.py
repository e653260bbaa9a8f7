"""The command line, run in-process through ``optbench.cli.main``."""

import pytest

from optbench.cli import main


def test_list_prints_optimizers_and_landscapes(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "optax.sgd(learning_rate, momentum, nesterov=True)" in out
    assert "himmelblau" in out and "multimodal" in out and "unbounded" in out


def test_list_filters_landscapes_by_kind(capsys):
    assert main(["list", "landscapes", "--kind", "saddle"]) == 0
    out = capsys.readouterr().out
    assert "monkey_saddle" in out and "rosenbrock" not in out


def test_bad_kind_is_a_one_line_error(capsys):
    assert main(["list", "landscapes", "--kind", "bumpy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optbench: error:") and "convex" in err and err.count("\n") == 1


def test_package_reexports_landscapes():
    import landscapes
    import optbench.landscapes

    assert optbench.landscapes is landscapes


@pytest.mark.parametrize("argv", [["run", "--steps", "20"]])
def test_run_prints_a_table(argv, capsys):
    assert main(argv) == 0
    assert "rosenbrock" in capsys.readouterr().out
