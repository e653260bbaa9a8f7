"""The command line: in-process through ``optbench.cli.main``, and as a subprocess where
what matters is what a user sees (one-line errors, no traceback)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

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


def test_list_landscapes_shows_each_surface_parameters_with_defaults(capsys):
    from optbench import landscapes

    assert main(["list", "landscapes"]) == 0
    printed = capsys.readouterr().out
    assert max(map(len, printed.splitlines())) <= 100
    assert "set in a surface task's table as params = { ... }" in printed
    assert "\nravine: condition_number = 100.0 (a finite number >= 1)\n" in printed
    assert ("\nrotated_ellipsoid: condition_number = 100.0 (a finite number >= 1), seed = 0 "
            "(an integer >= 0)\n") in printed
    for name in landscapes.names():
        listed = [line for line in printed.splitlines() if line.startswith(f"{name}: ")]
        assert len(listed) == bool(landscapes.base.parameters(name))


def test_list_tasks_lists_the_kinds_and_says_how_to_see_their_fields(capsys):
    assert main(["list", "tasks"]) == 0
    printed = capsys.readouterr().out
    assert "mnist1d-cnn        MNIST-1D (generated offline), 1-D CNN" in printed
    assert "optbench list tasks KIND: a kind's fields with their defaults" in printed


def test_list_tasks_kind_shows_its_fields_with_defaults(capsys):
    assert main(["list", "tasks", "mnist1d-cnn"]) == 0
    printed = capsys.readouterr().out
    assert max(map(len, printed.splitlines())) <= 100
    rows = [line.split() for line in printed.splitlines()]
    for row in (["channels", "[25,", "25,", "25]"], ["kernel", "[5,", "3,", "3]"],
                ["stride", "2"], ["padding", "1"], ["batch_size", "100", "yes"],
                ["activation", '"relu"', "yes"], ["name", '"mnist1d-cnn"']):
        assert row in rows
    assert main(["list", "tasks", "surface"]) == 0
    printed = capsys.readouterr().out
    assert ["landscape", "required:", "a", "name", "from", "optbench", "list", "landscapes"
            ] in [line.split() for line in printed.splitlines()]
    rows = [line.split() for line in printed.splitlines()]
    for row in (["batch_size", "16"], ["sharpness", "false"], ["hessian_trace", "false"],
                ["name", "<landscape>-<dim>d"]):
        assert row in rows


def _minimal_tables(data_dir: str, cifar_dir: str) -> dict[str, dict]:
    """The fewest fields each kind's table needs (the tiny files' kinds: a small batch)."""
    from optbench.tasks import deepobs, registry
    from tests.nn.test_language import write_text

    tables = {kind: {"kind": kind} for kind in registry.names()}
    tables["surface"]["landscape"] = "ravine"
    tables["online-linear"]["coefficients"] = [1.0, -1.0]
    tables["moving-target"]["jump_step"] = 10
    for kind in ("mnist-cnn", "fashion-mnist-cnn"):
        tables[kind].update(data_dir=data_dir, batch_size=8)
    tables["char-lm"]["text_file"] = str(write_text(Path(data_dir) / "text.txt"))
    for kind, problem in deepobs.PROBLEMS.items():
        if problem.dataset != "quadratic":
            tables[kind].update(data_dir=cifar_dir if problem.cifar else data_dir,
                                batch_size=8)
    return tables


def test_listed_defaults_are_what_a_table_without_the_field_gets(tmp_path):
    """Setting a field to its listed default changes nothing: the listing is read from
    where each kind's parser takes its defaults."""
    from optbench.tasks import registry
    from tests.nn.test_datasets import write_tiny_mnist
    from tests.nn.test_deepobs import write_cifar

    cifar = write_cifar(write_cifar(tmp_path / "cifar", "cifar10"), "cifar100")
    tables = _minimal_tables(str(write_tiny_mnist(tmp_path / "mnist")), str(cifar))
    for kind, table in tables.items():
        listed = registry.get(kind).fields()
        assert set(listed) >= set(table) - {"kind"}
        parsed = registry.parse(table, "tasks[0]")
        for field, default in registry.literal_defaults(listed).items():
            if field not in table:
                assert registry.parse({**table, field: default}, "tasks[0]") == parsed, (
                    kind, field)


@pytest.mark.parametrize("argv,message", [
    (["list", "tasks", "mnist1d-rnn"],
     "optbench: error: optbench list tasks KIND: found 'mnist1d-rnn'; allowed one of surface, "
     "mnist1d-mlp, mnist1d-cnn,"),
    (["list", "landscapes", "ravine"],
     "optbench: error: optbench list landscapes: found KIND 'ravine'; allowed only after "
     "tasks (optbench list tasks KIND)"),
])
def test_list_with_a_bad_kind_is_a_one_line_error(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert captured.out == ""


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


def test_a_maximized_metric_without_targets_of_its_own_is_refused(tmp_path, capsys):
    """The default targets are levels of f - f_min (0.1 ... 1e-8): a network's accuracy
    reaches them all at step 0, so a task that maximizes must set its own."""
    config = tmp_path / "c.toml"
    config.write_text('steps = 2\nseeds = 1\n[[tasks]]\nlandscape = "sphere"\n'
                      '[[tasks]]\nkind = "wine-ann"\n[optimizers.gd]\nlearning_rate = 0.1\n')
    assert main(["sweep", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tasks (wine-ann).targets" in err, err
    assert "for the valid_accuracy it maximizes" in err and not (tmp_path / "out").exists()


def test_unknown_example_and_bad_kind(tmp_path, capsys):
    assert main(["sweep", "--example", "nope"]) == 2
    assert "allowed one of adaptive-methods-multimodal" in capsys.readouterr().err
    assert main(["list", "landscapes", "--kind", "bumpy"]) == 2
    assert "valid kinds: convex" in capsys.readouterr().err


def test_a_file_where_a_results_folder_belongs_is_a_one_line_error(tmp_path, capsys):
    """--out FILE, --out FILE/sub, and a reader given a file: exit 2, one line, the file
    untouched and nothing written beside it."""
    config = tmp_path / "c.toml"
    config.write_text('steps = 2\nseeds = 1\n[[tasks]]\nlandscape = "sphere"\n'
                      '[optimizers.gd]\nlearning_rate = 0.1\n')
    a_file = tmp_path / "FILE"
    a_file.write_text("mine")
    commands = [["sweep", str(config), "--out", str(a_file)],
                ["sweep", str(config), "--out", str(a_file / "sub")],
                ["table", str(a_file)], ["report", str(a_file)],
                ["store", "check", str(a_file)]]
    for command in commands:
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "a file, not a folder" in err, (command, err)
    assert a_file.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE", "c.toml"]


def test_a_learning_rate_of_zero_is_warned_about_once_and_runs(tmp_path, recwarn):
    config = tmp_path / "c.toml"
    config.write_text('steps = 2\nseeds = 1\n[[tasks]]\nlandscape = "sphere"\n'
                      '[[tasks]]\nlandscape = "booth"\n'
                      '[optimizers.gd]\nlearning_rate = [0, 0.1]\n'
                      '[optimizers.adam]\nlearning_rate = 0.1\n')
    assert main(["sweep", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    said = [str(w.message) for w in recwarn]
    assert sum("optimizers.gd.learning_rate: the grid holds 0" in m for m in said) == 1
    assert not any("optimizers.adam" in m for m in said)


def test_reading_a_sweep_imports_no_optimizer_code(tmp_path, monkeypatch, capsys):
    """A sweep of a user's factory, read after its module is gone: table and report work
    from what the store holds (the factory's defaults are in meta.json)."""
    import importlib

    from optbench.optimizers import optax_adapter

    (tmp_path / "gone_optimizer.py").write_text(
        "import optax\n\ndef signed(learning_rate, damping=0.5):\n"
        "    return optax.chain(optax.scale_by_sign(), optax.scale(-damping * learning_rate))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "c.toml"
    config.write_text('steps = 3\nseeds = 1\n[[tasks]]\nlandscape = "sphere"\n'
                      '[optimizers.mine]\noptimizer = "gone_optimizer:signed"\n'
                      'learning_rate = [0.1, 0.2]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out), "--quiet"]) == 0
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    monkeypatch.setitem(sys.modules, "gone_optimizer", None)  # importing it now fails
    optax_adapter.load_factory.cache_clear()
    optax_adapter.factory_spec.cache_clear()
    with pytest.raises(ImportError):
        importlib.import_module("gone_optimizer")
    capsys.readouterr()
    assert main(["table", str(out)]) == 0
    assert "| mine " in capsys.readouterr().out
    code = ("import sys\nfrom optbench import cli\ncli.main(['table', sys.argv[1]])\n"
            "print([m for m in ('jax', 'optbench.optimizers') if m in sys.modules])")
    printed = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                             text=True, check=True).stdout
    assert printed.strip().splitlines()[-1] == "[]"  # reading a table loads no JAX
    assert main(["report", str(out), "--workers", "1"]) == 0, capsys.readouterr().err
    page = (out / "report" / "index.html").read_text()
    assert "damping=0.5" in page  # the factory's default, from meta.json


def test_readers_say_when_a_sweep_is_still_writing_the_folder(tmp_path, recwarn):
    """A live process holding the folder's lock: table and report warn that the data are
    partial, with its PID and the blocks finished; the page says it too. A live process
    named in a stale lock file (a reused PID) is no writer."""
    config = tmp_path / "c.toml"
    config.write_text('steps = 2\nseeds = 1\n[[tasks]]\nlandscape = "sphere"\n'
                      '[optimizers.gd]\nlearning_rate = 0.1\n')
    out = tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out), "--quiet"]) == 0
    assert main(["table", str(out)]) == 0 and not recwarn.list  # the sweep released it
    lock = out / ".optbench.lock"
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a live process named in the lock file that does not hold the lock: a reused PID
        lock.write_text(f"{bystander.pid}\n")
        assert main(["table", str(out)]) == 0 and not recwarn.list
    finally:
        bystander.kill()
        bystander.wait()
    writer = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
        "fcntl.flock(fd, fcntl.LOCK_EX); os.ftruncate(fd, 0); "
        "os.write(fd, f'{os.getpid()}\\n'.encode()); print('locked', flush=True); "
        "time.sleep(60)"), str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        expected = f"is being written by PID {writer.pid} (1 of 1 blocks finished)"
        assert main(["table", str(out)]) == 0
        assert main(["report", str(out), "--workers", "1"]) == 0
        said = [str(w.message) for w in recwarn]
        assert len(said) == 2 and all(expected in m for m in said), said
        assert expected in (out / "report" / "index.html").read_text()
    finally:
        writer.kill()
        writer.wait()
    recwarn.clear()
    assert main(["table", str(out)]) == 0 and not recwarn.list  # a dead writer is no writer


def test_a_log_gets_one_line_per_block_and_no_progress_bar(tmp_path, capsys):
    """stderr that is not a terminal (a log file, CI): one line per finished block saying
    whether it compiled or shared a program, and none of a bar's carriage returns."""
    config = tmp_path / "c.toml"
    config.write_text('steps = 5\nseeds = 1\n[[tasks]]\nlandscape = "sphere"\n'
                      '[[tasks]]\nlandscape = "booth"\n'
                      '[optimizers.gd]\nlearning_rate = 0.1\n')
    assert main(["sweep", str(config), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("optbench: block")]
    assert len(lines) == 2 and "\r" not in err
    assert lines[0].startswith("optbench: block 1/2 gd on sphere-2d: ran in ")
    assert lines[0].endswith(" s") and "compiled in" in lines[0]
    assert lines[1].endswith("program shared")  # the 2-D surfaces share one program


def test_help_and_a_bad_option_load_neither_jax_nor_pandas():
    """``optbench --help`` must start in a fraction of a second: the package, the command line
    and argument errors import no heavy library."""
    code = textwrap.dedent("""
        import sys
        from optbench import cli
        for argv in (["--help"], ["list", "--bogus"]):
            try:
                cli.main(argv)
            except SystemExit:
                pass
        print(sorted(m for m in ("jax", "pandas", "numpy", "matplotlib") if m in sys.modules))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("thread", [False, True])
def test_the_command_exits_only_once_nothing_is_left_to_finish(thread):
    """``optbench`` skips the interpreter's teardown, but only after its buffered output, its
    exit handlers and any other thread are done: its exit code and all it printed arrive."""
    code = textwrap.dedent(f"""
        import atexit, sys, threading, time
        from optbench import cli

        def main():
            atexit.register(print, "exit handler ran")
            if {thread}:
                threading.Thread(target=lambda: (time.sleep(0.5), print("thread done"))).start()
            print("still buffered", end="")  # a pipe is block-buffered: not written yet
            print("an unfinished line", end="", file=sys.stderr)  # stderr: line-buffered
            return 3

        cli.main = main
        cli.console()
        """)
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=buffered, timeout=60)
    assert done.returncode == 3 and done.stderr.endswith("an unfinished line")
    assert done.stdout.startswith("still buffered") and "exit handler ran" in done.stdout
    assert ("thread done" in done.stdout) == thread
    closed = subprocess.run(["sh", "-c", f'"{sys.executable}" -c "$0" >&- 2>&-', code],
                            env=buffered, timeout=60)
    assert closed.returncode == 3  # no output to flush where the streams are closed
