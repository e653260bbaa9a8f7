"""The asv suite and `optbench bench` stay runnable: each benchmark body runs once, small."""

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.fixture(scope="module")
def suite():
    return {name: importlib.import_module(f"benchmarks.{name}")
            for name in ("optimizers", "sweep", "landscapes")}


def test_optimizer_step_benchmark(suite):
    bench = suite["optimizers"].TimeOptimizerStep()
    bench.setup("adam", 1000)
    bench.time_ours("adam", 1000)
    bench.time_optax("adam", 1000)


def test_sweep_block_benchmark(suite):
    result = suite["sweep"]._block("momentum", reference=True, n_lr=2, n_start=2, steps=20)
    assert result.outcome.curve.shape == (4, 3)


def test_landscape_benchmark(suite):
    bench = suite["landscapes"].TimeSurfaceGrid()
    bench.setup("himmelblau")
    bench.time_grid("himmelblau")


def test_bench_sweep_quick_prints_every_variant(capsys, monkeypatch):
    from optbench import bench

    quick = bench.make_grid(quick=True)
    tiny = bench.BenchGrid(quick.learning_rates[:2], quick.starts[:2], steps=20)
    monkeypatch.setattr(bench, "make_grid", lambda quick: tiny)
    monkeypatch.setattr(bench, "BENCH_OPTIMIZERS", ("gd", "adam"))
    table = bench.bench_sweep(quick=True)
    assert len(table) >= 4 and (table["optimizer-steps/s"] > 0).all()
    assert "(a) optbench engine" in capsys.readouterr().out
