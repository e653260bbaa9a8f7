"""Time to target in seconds: each block's seconds per step (compilation excluded), the
seconds_to_<target> columns, the convergence table's ERT in seconds, and old stores."""

import json
import shutil
import time
import types

import jax
import numpy as np
import pandas as pd
import pytest

import optbench
from optbench import optimizers
from optbench.analysis import markdown, tables_for
from optbench.engine import run as engine
from optbench.engine.run import RunSettings, run_block
from optbench.engine.sweep import seconds_per_step
from optbench.store import ResultStore
from tests.engine.helpers import surface_task

COMPILE_SECONDS = 1000.0  # what the fake clock adds per compilation: far more than a run
CONFIG = {
    "name": "seconds", "steps": 200, "seeds": [0, 1], "targets": [1.0, 1e-3],
    "compile_cache": False,
    "tasks": [{"landscape": "sphere", "dim": 2}],
    "optimizers": {"gd": {"learning_rate": [0.01, 0.3]}, "momentum": {"learning_rate": [0.1]}},
}


def _slow_compiles(monkeypatch):
    """A clock for the engine that jumps :data:`COMPILE_SECONDS` at every compilation, and
    a fresh program cache (the first block compiles): a run time that contained a
    compilation would be at least that long. Returns the list of jumps, to add others."""
    jumps = []
    monkeypatch.setattr(engine, "time", types.SimpleNamespace(
        perf_counter=lambda: time.perf_counter() + sum(jumps)))
    compile_ = jax.stages.Lowered.compile

    def slow(self, *args, **kwargs):
        jumps.append(COMPILE_SECONDS)
        return compile_(self, *args, **kwargs)

    monkeypatch.setattr(jax.stages.Lowered, "compile", slow)
    monkeypatch.setattr(engine, "PROGRAMS", engine.ProgramCache())
    return jumps


@pytest.fixture
def slow_compiles(monkeypatch):
    return _slow_compiles(monkeypatch)


def test_a_blocks_run_time_sums_its_chunks_without_compilation_or_progress(
        slow_compiles, monkeypatch):
    """Four chunks; the clock also jumps at every progress call, which is no run time."""
    monkeypatch.setattr(engine, "chunk_size_for", lambda n_runs, *rest: 2)
    seen = []

    def progress(steps):
        seen.append(steps)
        slow_compiles.append(COMPILE_SECONDS)

    settings = RunSettings(steps=50, record_every=None, targets=(1e-3,),
                           divergence_threshold=1e6)
    n = 8
    spec = optimizers.get("gd")
    result = run_block(spec.pure, spec.gradient, surface_task(landscape="sphere", dim=2),
                       settings, {"learning_rate": np.full(n, 0.1)}, np.arange(n),
                       np.zeros(n, int), progress=progress)
    assert seen == [0] + [2 * settings.steps] * 4  # compiled once, then four chunks ran
    assert result.compile_seconds >= COMPILE_SECONDS and not result.program_reused
    assert 0 < result.run_seconds < COMPILE_SECONDS


def test_a_block_on_several_devices_counts_device_seconds():
    """Blocks spread over different numbers of devices (a small one on fewer) compare: each
    counts its run time on every device it used."""
    settings = RunSettings(steps=100, record_every=None, targets=(1e-3,),
                           divergence_threshold=1e6)
    outcome = types.SimpleNamespace(final=np.zeros(6))
    one, two = (engine.BlockResult(outcome, 0.0, 1.2, chunk_size=8, n_devices=n)
                for n in (1, 2))
    assert seconds_per_step(one, settings) == pytest.approx(1.2 / (8 * 100))  # padding ran too
    assert seconds_per_step(two, settings) == pytest.approx(2 * 1.2 / (8 * 100))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        _slow_compiles(patch)
        return optbench.sweep(CONFIG, tmp_path_factory.mktemp("seconds") / "out", quiet=True)


def test_seconds_to_target_are_steps_times_the_blocks_seconds_per_step(swept):
    runs = pd.read_parquet(swept / "runs.parquet")
    blocks = json.loads((swept / "meta.json").read_text())["blocks"]
    assert set(blocks) == {"gd__sphere-2d", "momentum__sphere-2d"}
    assert not all(b["program_reused"] for b in blocks.values())  # one compiled here
    for block in blocks.values():
        mine = runs[runs["optimizer"] == block["optimizer"]]
        # one time per block: its program's run time over the steps of all the runs it
        # ran (a small block padded to its chunk's size), without the 1000 s compilation
        assert mine["seconds_per_step"].nunique() == 1
        per_step = mine["seconds_per_step"].iloc[0]
        assert block["seconds_per_step"] == per_step > 0
        ran = -(-block["runs"] // block["chunk_size"]) * block["chunk_size"]
        assert per_step * ran * block["steps"] == pytest.approx(block["run_seconds"]
                                                               * block["devices"])
        assert block["run_seconds"] < COMPILE_SECONDS
        assert block["program_reused"] or block["compile_seconds"] >= COMPILE_SECONDS
        for target in ("1", "0.001"):
            steps, seconds = mine[f"steps_to_{target}"], mine[f"seconds_to_{target}"]
            assert steps.notna().any()  # some run reaches it: the check is not NaN == NaN
            pd.testing.assert_series_equal(seconds, steps * per_step, check_names=False)
    columns = list(runs.columns)  # beside each other in the table
    assert columns.index("seconds_to_0.001") == columns.index("steps_to_0.001") + 1


def test_the_convergence_table_gives_erts_in_seconds(swept):
    table, text = tables_for(swept)
    for _, row in table.iterrows():
        per_step = row["seconds_per_step"]
        for name, seconds in (("ert@0.001", "ert_seconds@0.001"),
                              ("ert@0.001_high", "ert_seconds@0.001_high"),
                              ("median_steps@1", "median_seconds@1")):
            assert row[seconds] == pytest.approx(row[name] * per_step)
    assert "ERT s" in text and "s / step" in text
    written = pd.read_csv(swept / "convergence.csv")
    assert {"seconds_per_step", "ert_seconds@0.001"} <= set(written.columns)
    assert any("share its per-step time" in note and "1 x cpu" in note
               for note in table.attrs["caveats"])


def test_a_store_written_before_steps_were_timed_reads_with_nan_seconds(swept, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(swept, old)
    untimed = [c for c in pd.read_parquet(old / "runs.parquet")
               if c == "seconds_per_step" or c.startswith("seconds_to_")]
    for path in [old / "runs.parquet", *old.glob("blocks/*/runs.parquet")]:
        pd.read_parquet(path).drop(columns=untimed).to_parquet(path)
    store = ResultStore(old)
    runs = store.table("runs")
    assert set(untimed) <= set(runs.columns) and runs[untimed].isna().all().all()
    assert store.read_block("gd__sphere-2d", "runs")["seconds_to_1"].isna().all()
    table, text = tables_for(old)
    assert table["seconds_per_step"].isna().all() and table["ert_seconds@1"].isna().all()
    assert table["ert@1"].notna().all()  # the steps are as they were
    assert "ERT s" not in markdown(table)
    assert not any("per-step time" in note for note in table.attrs["caveats"])
