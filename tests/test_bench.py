"""``optbench bench``: every benchmark runs, small, and its table holds what it claims.
Nothing here asserts anything about timings."""

import json
import os
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from optbench import bench
from optbench.bench import commands, common, compile, sweep, update
from optbench.cli import main
from optbench.engine.distributed import CPU_DEVICES_VARIABLE

CPU = jax.devices("cpu")[0]


def _tiny_update(device, quick=False):
    return update.bench_update(device, size=1000, repeats=1, names=("adam", "momentum"))


def test_update_table_has_a_row_per_variant_and_ratios_to_optbench():
    report = _tiny_update(CPU)
    table = report.table
    for name in ("adam", "momentum"):
        rows = table[table["optimizer"] == name].set_index("variant")
        assert {"optbench", "optax", update.CONTROL, update.LIMIT} <= set(rows.index)
        # GB/s is the bytes each moves (28 B/param for Adam, 20 for momentum, 12 for the
        # limit's a = b + c) per second
        moved = np.where(rows.index == update.LIMIT, 12, update.ARRAYS_MOVED[name] * 4) * 1000
        np.testing.assert_allclose(rows["GB/s"] * rows["ms/step"] / 1e3 * 1e9, moved,
                                   rtol=1e-9)
        np.testing.assert_allclose(rows["of bandwidth"] * rows.loc[update.LIMIT, "GB/s"],
                                   rows["GB/s"], rtol=1e-9)
    assert (table["ms/step"] > 0).all()


def test_update_without_torch_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    report = _tiny_update(CPU)
    assert set(report.table["variant"]) == {"optbench", "optax", update.CONTROL, update.LIMIT}
    assert any("torch is not installed" in note for note in report.notes)


def test_torch_variants_when_torch_is_installed():
    pytest.importorskip("torch")
    calls, _ = update.torch_steps("adam", 100, CPU)
    assert "torch foreach" in calls
    for call in calls.values():
        call()


def test_memory_bandwidth_is_measured():
    assert common.memory_bandwidth(CPU, 10**5, repeats=1) > 0


def test_a_device_jax_does_not_see_is_one_line_naming_the_devices(capsys):
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("this machine has a GPU")
    assert main(["bench", "update", "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such device; JAX sees cpu" in err


def test_run_prints_every_report_and_writes_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.BENCHMARKS, "update", "tests.test_bench:_tiny_update")
    path = tmp_path / "out" / "bench.json"
    assert main(["bench", "update", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "device: cpu" in out and "jax " in out and "## bench update" in out
    written = json.loads(path.read_text())
    assert written["device"]["platform"] == "cpu"
    [report] = written["benchmarks"]
    assert report["name"] == "update" and len(report["rows"]) >= 8


def test_unknown_benchmark_names_the_allowed():
    with pytest.raises(bench.OptbenchError, match="allowed all, update, sweep, compile"):
        bench.run(["nope"])


def test_sweep_compares_every_variant_with_the_engine(monkeypatch):
    quick = sweep.make_grid(quick=True)
    tiny = sweep.BenchGrid(quick.learning_rates[:2], quick.starts[:2], steps=20)
    monkeypatch.setattr(sweep, "make_grid", lambda quick: tiny)
    monkeypatch.setattr(sweep, "BENCH_OPTIMIZERS", ("gd", "adam"))
    report = sweep.bench_sweep(CPU, quick=True, repeats=1)
    table = report.table.set_index("variant")
    assert {"(a) optbench engine", "(a') optbench engine, scoring = record",
            "(b) optax, same vmap/scan", "(b') bare optax vmap/scan, no recording",
            "(a'') engine, 2 rules bundled, chosen per step",
            "(a'') engine, 2 rules bundled, chosen per run"} <= set(table.index)
    assert (table["optimizer-steps/s"] > 0).all() and (table["compile s"] >= 0).all()
    assert "(a') optbench engine, scoring = record" in report.text()
    record, bare = (table.loc[v] for v in ("(a') optbench engine, scoring = record",
                                           "(b') bare optax vmap/scan, no recording"))
    assert (f"(a') runs at {bare['run s'] / record['run s']:.2f}x the speed of (b')"
            in report.text())


def test_targets_read_met_or_missed_in_their_direction():
    assert common.against(2.0, 2.0, at_most=True) == "target ≤ 2: met"
    assert common.against(2.1, 2.0, at_most=True) == "target ≤ 2: missed"
    assert common.against(0.8, 0.8, at_most=False) == "target ≥ 0.8: met"
    assert common.against(0.39, 0.8, at_most=False) == "target ≥ 0.8: missed"


def test_record_mode_is_measured_against_the_bare_loop():
    record = sweep.Timing("(a')", run_seconds=0.05, compile_seconds=3.0, steps=1)
    bare = sweep.Timing("(b')", run_seconds=0.02, compile_seconds=1.0, steps=1)
    assert sweep.record_mode_note(record, bare) == (
        "scoring = \"record\": (a') runs at 0.40x the speed of (b') (target ≥ 0.8: missed) "
        "and compiles in 3.00x its time (target ≤ 2: missed).")
    fast = sweep.Timing("(a')", run_seconds=0.022, compile_seconds=1.5, steps=1)
    assert "0.91x the speed of (b') (target ≥ 0.8: met)" in sweep.record_mode_note(fast, bare)
    assert "1.50x its time (target ≤ 2: met)" in sweep.record_mode_note(fast, bare)


def test_summarize_sums_the_blocks():
    meta = {"programs_compiled": 2, "blocks": {
        "a": {"compile_seconds": 1.5, "run_seconds": 0.25},
        "b": {"compile_seconds": 0.0, "run_seconds": 0.5}}}
    assert compile.summarize(meta) == {"blocks": 2, "compile s (blocks)": 1.5,
                                       "run s (blocks)": 0.75, "programs compiled": 2}


def _tiny_config(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text('name = "tiny"\nsteps = 10\nseeds = 1\n'
                      '[[tasks]]\nlandscape = "sphere"\ndim = 2\n'
                      '[optimizers.gd]\nlearning_rate = 0.1\n'
                      '[optimizers.adam]\nlearning_rate = 0.1\n')
    return str(config)


def test_compile_runs_with_an_empty_then_a_filled_cache_then_xlas_options(tmp_path):
    report = compile.bench_compile(CPU, config=_tiny_config(tmp_path), branchings=("run",))
    table = report.table
    assert table[["run", "compiler options"]].values.tolist() == [
        ["empty cache", compile.ENGINE_OPTIONS], ["filled cache", compile.ENGINE_OPTIONS],
        ["empty cache", compile.XLA_DEFAULTS]]
    assert (table["branching"] == "run").all() and (table["blocks"] == 2).all()
    assert (table["programs compiled"] >= 1).all()
    assert table["persistent-cache hits"].tolist()[::2] == [0, 0]
    assert table["persistent-cache hits"][1] >= 1
    # blocks that differ only in grid size share their program (one here: the surfaces too)
    assert report.figures == {"grid-size programs compiled": 1}
    assert ("with an empty cache, compiled 1 program(s) (target ≤ 2: met)"
            in report.text())


def test_xlas_default_options_compile_other_programs(tmp_path):
    """The engine's compiler options reach XLA: a cache filled with them holds none of the
    engine's programs for a sweep compiled with XLA's defaults (only programs compiled
    outside the engine, with XLA's defaults either way: the surfaces' float32 check)."""
    config, cache = _tiny_config(tmp_path), tmp_path / "cache"
    cache.mkdir()
    compile.run_child(config, tmp_path / "engine", cache, "step")
    again = compile.run_child(config, tmp_path / "again", cache, "step")
    defaults = compile.run_child(config, tmp_path / "xla", cache, "step", compile.XLA_DEFAULTS)
    missed = again["persistent-cache hits"] - defaults["persistent-cache hits"]
    assert missed >= again["programs compiled"] >= 1


def test_commands_times_each_command_against_its_target(monkeypatch):
    ran = []

    def timed(arguments, cwd, env):  # each command takes 0.5 s
        ran.append((arguments[0], cwd.name, Path(env["XDG_CACHE_HOME"]).name,
                    env.get(CPU_DEVICES_VARIABLE)))
        return 0.5

    monkeypatch.setattr(commands, "timed", timed)
    monkeypatch.setattr(commands, "available_cores", lambda: 2)
    monkeypatch.delenv(CPU_DEVICES_VARIABLE, raising=False)
    table = commands.bench_commands(CPU).table
    assert table["state"].tolist() == [
        "", "caches empty", "caches filled, a new folder", "again, into the same folder",
        commands.ONE_DEVICE_STATE, "computed", "read back", "drawn", "nothing changed"]
    assert [command for command, *_ in ran] == ["--help"] * 3 + [
        "run"] * 5 + ["table", "table", "report", "report"]
    assert ran[3][1] != ran[4][1] == ran[5][1]  # the second run goes into a new folder
    # one device: its programs compiled into one new folder, then timed into another
    assert len({folder for _, folder, *_ in ran[3:8]}) == 4
    assert [devices for *_, devices in ran[3:8]] == [None, None, None, "1", "1"]
    assert {cache for _, _, cache, _ in ran} == {"cache"}  # one new cache folder throughout
    assert table["met"].tolist() == [False] + [True] * 8  # 0.5 s against 0.3 s, then more
    monkeypatch.setattr(commands, "available_cores", lambda: 1)
    assert commands.ONE_DEVICE_STATE not in commands.bench_commands(CPU).table["state"].tolist()


def test_a_command_is_timed_in_a_new_process(tmp_path):
    assert commands.timed(["--help"], tmp_path, dict(os.environ)) > 0


def test_a_failing_command_is_one_line_naming_it(tmp_path):
    with pytest.raises(commands.CommandFailed, match="optbench table nowhere failed"):
        commands.timed(["table", "nowhere"], tmp_path, dict(os.environ))
