"""The result store: tidy tables, atomic blocks, resume after SIGKILL, refusal of a
different config, and the convergence tables."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

import optbench
from optbench.analysis import tables_for
from optbench.engine import SweepTooLarge, run_sweep
from optbench.errors import Interrupted
from optbench.store import MANIFEST, REPORT, REPORT_MARKER, ResultStore, StoreConflict
from tests.engine.helpers import held_sweep, without_timing

CONFIG = {
    "name": "resume",
    "steps": 300,
    "record_every": 10,
    "seeds": 2,
    "targets": [1.0, 1e-2, 1e-4],
    "tasks": [{"landscape": "himmelblau", "start": "random", "starts": 2},
              {"landscape": "sphere", "dim": 3, "noise": 0.1}],
    "optimizers": {"gd": {"learning_rate": [1e-3, 1e-2]},
                   "sgd": {"learning_rate": [1e-3, 1e-2]},
                   "adam": {"learning_rate": [1e-2, 1e-1], "b1": [0.9, 0.5]}},
}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One uninterrupted sweep with its tables, shared by the tests that only read it."""
    return optbench.sweep(CONFIG, tmp_path_factory.mktemp("sweep") / "out", quiet=True)


def _runs(directory):
    return without_timing(pd.read_parquet(directory / "runs.parquet"))


def test_runs_table_is_tidy(swept):
    directory = swept
    runs = pd.read_parquet(directory / "runs.parquet")
    # 2 tasks x (2 + 2 + 4 configs) x 2 seeds x starts (2 random, 1 fixed)
    assert len(runs) == 2 * 8 * 2 + 1 * 8 * 2 and runs["run_id"].is_unique
    for column in ["optimizer", "learning_rate", "b1", "task", "dim", "seed", "start", "final",
                   "best", "steps_to_1", "steps_to_0.01", "diverged", "divergence_step",
                   "wall_time"]:
        assert column in runs
    assert runs.loc[runs.optimizer == "gd", "b1"].isna().all()
    curves = pd.read_parquet(directory / "curves.parquet")
    assert len(curves) == len(runs) * 31 and set(curves["step"]) == {*range(0, 301, 10)}
    trajectories = pd.read_parquet(directory / "trajectories.parquet")
    assert {"x0", "x1", "x2"} <= set(trajectories.columns)
    # CSV copies: always of runs, of curves and trajectories only with csv = true
    assert (directory / "runs.csv").exists() and not (directory / "curves.csv").exists()
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["config"]["optimizers"]["adam"]["b1"] == [0.9, 0.5]
    blocks = meta["blocks"].values()
    # a block either compiled its program or reused one compiled for an earlier block
    assert len(blocks) == 6 and all((b["compile_seconds"] > 0) != b["program_reused"]
                                    for b in blocks)
    assert {"jax", "optax", "optbench", "device_kind", "device_count", "config_hash",
            "started", "finished"} <= set(meta)
    assert meta["compiler_options"] == {"xla_backend_optimization_level": 1}  # on a CPU
    # sgd sees the noise (one sample), gd does not: on a noisy task their results differ
    sphere = runs[runs.task == "sphere-3d"]
    assert not np.allclose(sphere[sphere.optimizer == "gd"]["final"],
                           sphere[sphere.optimizer == "sgd"]["final"])


def test_convergence_tables(swept):
    directory = swept
    table, text = tables_for(directory)
    assert len(table) == 6
    adam = table[(table.task == "himmelblau-2d") & (table.optimizer == "adam")].iloc[0]
    runs = pd.read_parquet(directory / "runs.parquet")
    mine = runs[(runs.task == "himmelblau-2d") & (runs.optimizer == "adam")]
    medians = mine.groupby(["learning_rate", "b1"])["final"].median()
    assert adam["median_final"] == medians.min()
    lr, b1 = (float(v.split("=")[1]) for v in adam["setting"].split(", "))
    best = mine[np.isclose(mine.learning_rate, lr, rtol=1e-2) & np.isclose(mine.b1, b1)]
    assert len(best) == 4 and best["final"].median() == medians.min()
    hits = best["steps_to_0.01"]
    assert adam["success@0.01"] == hits.notna().mean()
    expected_ert = hits.fillna(300).sum() / hits.notna().sum() if hits.notna().any() else np.inf
    assert adam["ert@0.01"] == expected_ert
    assert "ERT" in text
    for suffix in ("md", "csv", "tex"):
        assert (directory / f"convergence.{suffix}").stat().st_size > 0


def test_a_different_config_is_refused_unless_forced(tmp_path):
    small = {**CONFIG, "tasks": CONFIG["tasks"][1:], "optimizers": {"gd": {}}}
    run_sweep(small, tmp_path / "out", quiet=True)
    other = {**small, "steps": 200}
    with pytest.raises(StoreConflict, match=r"another config.*steps: 300 there, 200 here\)"
                                            r".*--force"):
        run_sweep(other, tmp_path / "out", quiet=True)
    renamed = {**small, "optimizers": {"gd": {"learning_rate": 0.5}}}
    with pytest.raises(StoreConflict, match=r"optimizers\.gd\.learning_rate\[0\]: 0\.001 "
                                            r"there, 0\.5 here"):
        run_sweep(renamed, tmp_path / "out", quiet=True)
    run_sweep(other, tmp_path / "out", quiet=True, force=True)
    assert pd.read_parquet(tmp_path / "out" / "curves.parquet")["step"].max() == 200
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["config"]["steps"] == 200  # the config that replaced the old one
    run_sweep(other, tmp_path / "out", quiet=True)  # and so it resumes, without --force


def test_absurdly_large_sweeps_need_yes(tmp_path):
    huge = {**CONFIG, "steps": 10**9, "seeds": 2000}
    with pytest.raises(SweepTooLarge, match="--yes"):
        run_sweep(huge, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_sigkill_mid_sweep_resumes_to_the_same_results(tmp_path, swept):
    """SIGKILL while the sweep is held after its second block: the two stored blocks are
    kept, and resuming gives the results of an uninterrupted sweep."""
    reference = swept
    target = tmp_path / "interrupted"
    process = subprocess.Popen(
        held_sweep(tmp_path / "gate", 2, """
            import json
            from optbench.engine import run_sweep
            run_sweep(json.loads(sys.argv[3]), sys.argv[4], quiet=True)
        """, json.dumps(CONFIG), str(target)),
        env={**os.environ, "JAX_PLATFORMS": "cpu"}, cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(target.glob("blocks/*/runs.parquet"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(list(target.glob("blocks/*/runs.parquet"))) == 2
    assert not (target / "runs.parquet").exists()
    resumed = run_sweep(CONFIG, target, quiet=True)
    meta = json.loads((resumed / "meta.json").read_text())
    assert len(meta["blocks"]) == 6
    pd.testing.assert_frame_equal(_runs(resumed), _runs(reference))
    pd.testing.assert_frame_equal(pd.read_parquet(resumed / "curves.parquet"),
                                  pd.read_parquet(reference / "curves.parquet"))


def test_force_deletes_only_what_a_sweep_wrote_and_foreign_folders_are_refused(tmp_path,
                                                                              capsys):
    """--force deletes the old config's files and its report (which describes them), says
    how many, and keeps a user's files."""
    small = {**CONFIG, "tasks": CONFIG["tasks"][1:], "optimizers": {"gd": {}}}
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    with pytest.raises(StoreConflict, match="not empty and holds no optbench results"):
        run_sweep(small, folder, quiet=True)
    empty = tmp_path / "out"
    run_sweep(small, empty, quiet=True)
    (empty / "notes.txt").write_text("precious")
    (empty / REPORT).mkdir()
    for name in (REPORT_MARKER, "index.html"):
        (empty / REPORT / name).write_text("the old config's report")
    written = len(ResultStore(empty).owned_files())  # the manifest's files and itself
    capsys.readouterr()
    run_sweep({**small, "steps": 100}, empty, quiet=True, force=True)
    assert (empty / "notes.txt").read_text() == "precious"
    assert len(list(empty.glob("blocks/*"))) == 1
    assert not (empty / REPORT).exists()
    said = capsys.readouterr().err
    assert f"--force deleted {written} files of the previous config's results" in said
    assert "and its report (2 files)" in said


def test_a_manifest_naming_files_outside_its_folder_deletes_nothing_there(tmp_path):
    """A foreign or damaged manifest that names ../ or absolute paths: --force and repair
    delete only inside the results folder."""
    small = {**CONFIG, "tasks": CONFIG["tasks"][1:], "optimizers": {"gd": {}}}
    out = tmp_path / "out"
    run_sweep(small, out, quiet=True)
    victims = [tmp_path / "victim.txt", tmp_path / "elsewhere" / "v.txt"]
    victims[1].parent.mkdir()
    for victim in victims:
        victim.write_text("precious")
    with (out / MANIFEST).open("a") as manifest:
        for name in ("../victim.txt", str(victims[1])):
            manifest.write(json.dumps({"file": name, "size": 8, "sha256": "x"}) + "\n")
    assert ResultStore(out).check().damaged == {}
    run_sweep({**small, "steps": 100}, out, quiet=True, force=True)
    assert all(victim.read_text() == "precious" for victim in victims)


def test_block_keys_cannot_collide(tmp_path):
    from optbench.config import ConfigError

    with pytest.raises(ConfigError, match="distinct labels, ignoring case"):
        run_sweep({**CONFIG, "optimizers": {"Adam": {"optimizer": "adam"}, "adam": {}}},
                  tmp_path / "out", quiet=True)
    with pytest.raises(ConfigError, match="without '__'"):
        run_sweep({**CONFIG, "optimizers": {"my__adam": {"optimizer": "adam"}}},
                  tmp_path / "out", quiet=True)


def test_a_rerun_killed_before_a_block_is_written_leaves_it_unfinished(tmp_path, monkeypatch):
    """--rerun recomputes finished blocks: one killed between its new curves and its runs
    must not be taken as finished, old runs beside new curves; the next run computes it."""
    config = {**CONFIG, "steps": 20, "tasks": CONFIG["tasks"][:1],
              "optimizers": {"gd": {"learning_rate": [1e-3, 1e-2]}}}
    out = run_sweep(config, tmp_path / "out", quiet=True)
    key = ResultStore(out).planned_blocks()[0]
    write_frame = ResultStore.write_frame

    def killed_at_runs(self, name, frame):
        if name.endswith("/runs.parquet"):
            raise KeyboardInterrupt  # as a kill would, after curves.parquet is written
        return write_frame(self, name, frame)

    monkeypatch.setattr(ResultStore, "write_frame", killed_at_runs)
    with pytest.raises(Interrupted, match="0 of 1 blocks are saved"):
        run_sweep({**config, "branching": "run"}, out, quiet=True, rerun=True)
    monkeypatch.undo()
    assert not ResultStore(out).is_done(key)
    run_sweep({**config, "branching": "run"}, out, quiet=True)
    assert json.loads((out / "blocks" / key / "timing.json").read_text())["branching"] == "run"


def test_a_rerun_without_kept_parameters_leaves_none_of_the_old_ones(tmp_path):
    """Parameters kept by an earlier run are not those of a rerun's runs: they go."""
    config = {**CONFIG, "steps": 20, "tasks": CONFIG["tasks"][:1],
              "optimizers": {"gd": {"learning_rate": [1e-3, 1e-2]}}}
    out = run_sweep({**config, "keep_params": "best"}, tmp_path / "out", quiet=True)
    assert sorted(p.name for p in (out / "params").iterdir()) == [
        "gd__himmelblau-2d.npz", "gd__himmelblau-2d.path.npz"]
    run_sweep(config, out, quiet=True, rerun=True)
    assert list((out / "params").iterdir()) == []
    assert ResultStore(out).check().damaged == {}  # removed, as the manifest says
