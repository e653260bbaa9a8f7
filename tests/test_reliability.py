"""A result store you can trust with your own files, and a command line that never surprises:
--force deletes only what a sweep wrote, damaged files are found and recovered, leftovers go,
files follow the umask, reading commands do not write, a folder is locked, Ctrl-C stops in one
line, and every bad option gets a one-line error."""

import io
import json
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from tqdm import tqdm

import optbench
from optbench.cli import main
from optbench.config import parse
from optbench.engine import SweepTooLarge, run_sweep
from optbench.engine.sweep import NotEnoughMemory, StepProgress, check_duration
from optbench.store import (
    LOCK,
    MANIFEST,
    ResultStore,
    StoreConflict,
    StoreDamaged,
    StoreLocked,
    write_json,
)
from tests.engine.helpers import held_sweep, without_timing

SMALL = {
    "name": "small",
    "steps": 60,
    "record_every": 10,
    "seeds": 2,
    "targets": [1.0, 1e-2],
    "tasks": [{"landscape": "sphere", "dim": 2}, {"landscape": "booth"}],
    "optimizers": {"gd": {"learning_rate": 0.01}, "adam": {"learning_rate": [0.01, 0.1]}},
}
KEY = "gd__sphere-2d"
ONE_BLOCK = {**SMALL, "optimizers": {"gd": {}}, "tasks": SMALL["tasks"][:1]}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished sweep with its tables, copied by the tests that change it."""
    return optbench.sweep(SMALL, tmp_path_factory.mktemp("small") / "out", quiet=True)


@pytest.fixture
def folder(finished, tmp_path):
    return shutil.copytree(finished, tmp_path / "out")


def _runs(directory):
    return without_timing(pd.read_parquet(directory / "runs.parquet"))


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ---- --force and the manifest ----------------------------------------------------------


def test_force_deletes_only_what_the_sweep_wrote(folder):
    mine = ["convergence.png", "curves.pdf", "runs.xlsx", "trajectories.html",
            "blocks/adam__sphere-2d/notes.txt", "blocks/my-own/data.txt"]
    for name in mine:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("precious")
    with pytest.raises(StoreConflict, match="another config.*--force"):
        run_sweep({**SMALL, "steps": 40}, folder, quiet=True)
    optbench.sweep({**SMALL, "steps": 40, "optimizers": {"gd": {}}}, folder, quiet=True,
                   force=True)
    assert all((folder / name).read_text() == "precious" for name in mine)
    # the old block folder holds a user file: its results went, the folder and file stayed
    assert [p.name for p in (folder / "blocks" / "adam__sphere-2d").iterdir()] == ["notes.txt"]
    assert not (folder / "blocks" / "adam__booth-2d").exists()  # ours alone: removed
    assert pd.read_parquet(folder / "curves.parquet")["step"].max() == 40
    recorded = {json.loads(line).get("file") for line in
                (folder / MANIFEST).read_text().splitlines()}
    assert {"meta.json", "runs.parquet", "convergence.md", "blocks/gd__booth-2d/runs.parquet"
            } <= recorded and not recorded & set(mine)


def test_a_folder_from_before_manifests_is_adopted_by_table_write_then_forced(folder,
                                                                              capsys):
    """No manifest (written before manifests existed): `table --write` records the sweep's
    files first, so that a later --force with another config deletes the old blocks too."""
    (folder / MANIFEST).unlink()
    assert main(["table", str(folder), "--write"]) == 0
    recorded = {json.loads(line).get("file") for line in
                (folder / MANIFEST).read_text().splitlines()}
    assert f"blocks/{KEY}/runs.parquet" in recorded and "convergence.md" in recorded
    run_sweep(ONE_BLOCK, folder, quiet=True, force=True)
    assert sorted(p.name for p in (folder / "blocks").iterdir()) == [KEY]


def test_a_damaged_meta_without_manifest_points_to_force(folder):
    (folder / MANIFEST).unlink()
    _truncate(folder / "meta.json")
    with pytest.raises(StoreDamaged, match="written before manifests; rerun the sweep with "
                                           "--force"):
        run_sweep(SMALL, folder, quiet=True)
    run_sweep(SMALL, folder, quiet=True, force=True)
    assert ResultStore(folder).meta()["config_hash"] == parse(SMALL).digest()


def test_force_removes_the_optax_reference_folder(folder):
    assert main(["table", str(folder), "--reference", "optax", "--quiet"]) == 0
    assert (folder / "reference-optax" / "runs.parquet").is_file()
    run_sweep(ONE_BLOCK, folder, quiet=True, force=True)
    assert not (folder / "reference-optax").exists()


def test_a_foreign_folder_is_refused_even_with_force(tmp_path):
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "runs.csv").write_text("precious")
    with pytest.raises(StoreConflict, match="holds no optbench results"):
        run_sweep(SMALL, tmp_path / "thesis", quiet=True, force=True)
    assert sorted(p.name for p in (tmp_path / "thesis").iterdir()) == ["runs.csv"]


def test_json_is_written_from_plain_data_only(tmp_path):
    with pytest.raises(TypeError):
        write_json(tmp_path / "x.json", {"value": np.float32(1.0)})
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"value": float("nan")})
    assert not list(tmp_path.iterdir())


# ---- damage and recovery ---------------------------------------------------------------


def test_truncated_meta_is_named_and_rebuilt(folder, finished, capsys):
    _truncate(folder / "meta.json")
    assert main(["table", str(folder)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{folder / 'meta.json'} is damaged" in error
    with pytest.warns(UserWarning, match="meta.json was damaged or missing; rebuilt"):
        run_sweep(SMALL, folder, quiet=True)
    assert "all 4 blocks already done" in capsys.readouterr().err  # nothing recomputed
    pd.testing.assert_frame_equal(_runs(folder), _runs(finished))
    (folder / "meta.json").unlink()  # deleted: rebuilt the same way
    with pytest.warns(UserWarning, match="rebuilt"):
        run_sweep(SMALL, folder, quiet=True)
    assert json.loads((folder / "meta.json").read_text())["blocks"].keys() == {
        "gd__sphere-2d", "adam__sphere-2d", "gd__booth-2d", "adam__booth-2d"}


def test_truncated_block_and_table_are_found_and_recomputed(folder, finished, capsys):
    _truncate(folder / "blocks" / KEY / "curves.parquet")
    _truncate(folder / "runs.parquet")
    assert main(["table", str(folder)]) == 2
    assert "runs.parquet is damaged" in capsys.readouterr().err
    assert main(["store", "check", str(folder)]) == 1
    report = capsys.readouterr().out
    assert f"damaged: blocks/{KEY}/curves.parquet (" in report
    assert "damaged: runs.parquet (" in report and "2 damaged" in report
    with pytest.warns(UserWarning, match=f"block {KEY} is damaged"):
        run_sweep(SMALL, folder, quiet=True)
    assert "3 of 4 blocks already done, resuming" in capsys.readouterr().err
    pd.testing.assert_frame_equal(_runs(folder), _runs(finished))
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "curves.parquet"),
                                  pd.read_parquet(finished / "curves.parquet"))
    assert main(["store", "check", str(folder)]) == 0
    assert "all intact" in capsys.readouterr().out


def test_repair_deletes_damage_and_leftovers(folder, capsys):
    _truncate(folder / "meta.json")
    leftover = folder / "blocks" / KEY / ".optbench-runs.parquet.1234abcd.tmp"
    leftover.write_bytes(b"half")
    assert main(["store", "check", str(folder)]) == 1
    assert "leftover temporary file" in capsys.readouterr().out
    assert main(["store", "check", str(folder), "--repair"]) == 0
    assert not leftover.exists()
    assert ResultStore(folder).meta()["config"]["steps"] == SMALL["steps"]


def test_after_a_repair_check_says_what_a_rerun_recomputes(folder, capsys):
    """The repair deletes a damaged block; the next check says a rerun recomputes it (and
    suggests no --repair, which would do nothing), and the rerun restores it."""
    _truncate(folder / "blocks" / KEY / "curves.parquet")
    assert main(["store", "check", str(folder), "--repair"]) == 0
    capsys.readouterr()
    assert main(["store", "check", str(folder)]) == 1
    report = capsys.readouterr().out
    assert f"it recomputes the blocks {KEY} and rebuilds" in report
    assert "--repair" not in report
    run_sweep(SMALL, folder, quiet=True)
    assert main(["store", "check", str(folder)]) == 0


def test_leftover_temporary_files_go_on_resume_and_force(folder):
    ours = [folder / ".optbench-meta.json.0badf00d.tmp",
            folder / "blocks" / KEY / ".optbench-runs.parquet.12345678.tmp"]
    theirs = folder / ".notes.tmp"
    for path in [*ours, theirs]:
        path.write_bytes(b"x" * 100)
    run_sweep(SMALL, folder, quiet=True)
    assert not any(p.exists() for p in ours) and theirs.exists()
    ours[0].write_bytes(b"x")
    run_sweep(ONE_BLOCK, folder, quiet=True, force=True)
    assert not ours[0].exists() and theirs.exists()


def test_a_sweep_with_nothing_to_run_leaves_its_folder_as_it_was_and_rebuilds_damage(folder):
    meta, runs = (folder / "meta.json").read_bytes(), (folder / "runs.parquet").read_bytes()
    run_sweep(SMALL, folder, quiet=True)  # its finish time and program count stay
    assert (folder / "meta.json").read_bytes() == meta
    assert (folder / "runs.parquet").read_bytes() == runs
    (folder / "runs.parquet").unlink()
    run_sweep(SMALL, folder, quiet=True)
    assert _runs(folder).equals(without_timing(pd.read_parquet(io.BytesIO(runs))))
    run_sweep(SMALL, folder, quiet=True, meta={"stage1": {"seeds": [1]}})  # new records
    assert json.loads((folder / "meta.json").read_text())["stage1"] == {"seeds": [1]}


def test_rerun_recomputes_on_purpose(folder, capsys):
    before = (folder / MANIFEST).read_text().count(f"blocks/{KEY}/runs.parquet")
    run_sweep(SMALL, folder, quiet=True, rerun=True)
    assert "already done" not in capsys.readouterr().err
    assert (folder / MANIFEST).read_text().count(f"blocks/{KEY}/runs.parquet") == before + 1


# ---- permissions, read-only commands, locks ----------------------------------------------


def test_result_files_follow_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        optbench.sweep(ONE_BLOCK, tmp_path / "out", quiet=True)
    finally:
        os.umask(old)
    for name in ["meta.json", "runs.parquet", "convergence.md", MANIFEST,
                 "blocks/gd__sphere-2d/runs.parquet"]:
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o664, name


def test_table_reads_only_unless_asked(folder, tmp_path, capsys):
    def snapshot():
        return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}

    before = snapshot()
    for path in before:  # a read-only folder (root ignores the bits; the snapshot does not)
        path.chmod(path.stat().st_mode & ~0o222)
    folder.chmod(0o555)
    try:
        assert main(["table", str(folder)]) == 0
        assert snapshot() == before
    finally:
        folder.chmod(0o755)
    printed = capsys.readouterr().out
    assert "ERT (expected running time, COCO)" in printed and "can be fractional" in printed
    assert max(map(len, printed.splitlines())) <= 100
    assert main(["table", str(folder), "--out", str(tmp_path / "tables")]) == 0
    assert (tmp_path / "tables" / "convergence.csv").exists() and snapshot() == before


def test_best_setting_names_user_set_hyperparameters(finished):
    table = pd.read_csv(finished / "convergence.csv")
    gd = table[table.optimizer == "gd"]["setting"]
    assert (gd == "learning_rate=0.01").all()  # set by the user, not varied: still named
    adam = table[table.optimizer == "adam"]["setting"]
    assert adam.str.startswith("learning_rate=").all() and "b1" not in adam.iloc[0]


def test_a_live_lock_refuses_and_a_stale_one_is_taken_over(folder):
    (folder / LOCK).write_text("999999999\n")  # left by a killed sweep: no flock held
    run_sweep(SMALL, folder, quiet=True)
    holder = ResultStore(folder)
    holder.lock()
    try:
        with pytest.raises(StoreLocked, match=f"another optbench sweep \\(PID {os.getpid()}\\)"):
            run_sweep(SMALL, folder, quiet=True)
    finally:
        holder.close()
    run_sweep(SMALL, folder, quiet=True)


# ---- the command line ------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["verify", "--steps", "-5"], "argument --steps: found '-5'; allowed an integer in [1, "),
    (["verify", "--steps", "0"], "argument --steps: found '0'"),
    (["verify", "--steps", "100000000"], "argument --steps: found '100000000'"),
    (["sweep", "x.toml", "--join-timeout", "0"], "argument --join-timeout: found '0'"),
    (["list", "optimizers", "--kind", "convex"], "--kind applies only to landscapes"),
])
def test_bad_options_get_one_line(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("optbench: error: ") and error.count("\n") == 1
    assert message in error


def test_config_files_that_are_not_text_get_one_line(tmp_path, capsys):
    (tmp_path / "binary.toml").write_bytes(bytes(range(256)))
    assert main(["sweep", str(tmp_path / "binary.toml")]) == 2
    assert "binary.toml: (file): found 'bytes that are not UTF-8" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path)]) == 2
    assert f"{tmp_path}: (file): found 'a folder'; allowed a TOML file" in \
        capsys.readouterr().err


def test_a_long_sweep_asks_for_yes(tmp_path, capsys):
    config = tmp_path / "long.toml"
    config.write_text('steps = 10000000\nseeds = 1000\n[[tasks]]\nlandscape = "sphere"\n'
                      "[optimizers.adam]\n")
    assert main(["sweep", str(config), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "1e+10 optimizer steps, about 14 min" in error and "pass --yes" in error
    assert not (tmp_path / "out").exists()
    with pytest.raises(SweepTooLarge):
        check_duration(parse({"steps": 10**9, "seeds": 2000, "tasks": [{"landscape": "booth"}],
                              "optimizers": {"gd": {}}}), tmp_path)
    check_duration(parse(SMALL), tmp_path)  # short: no question


def test_a_memory_budget_beyond_the_machine_is_refused(tmp_path):
    with pytest.raises(NotEnoughMemory, match=r"max_memory_mb = 1e\+12 is more than this "
                       r"machine has \(host [0-9.]+ GB"):
        run_sweep({**SMALL, "max_memory_mb": 1e12}, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_progress_counts_blocks_and_moves_within_a_chunk_at_the_measured_rate():
    """The bar counts blocks (a network's and a surface's weigh alike), each block's share
    from its optimizer steps, and the estimate moves at the block's own measured rate."""
    bar = tqdm(total=2, file=io.StringIO())
    progress = StepProgress(bar)
    progress.block(4000)
    assert progress.estimate(now=50.0) == 0  # compiling: nothing to tell
    progress(0, now=100.0)
    assert progress.estimate(now=105.0) == 0  # no rate measured yet: the bar waits
    progress(1000, now=110.0)  # one chunk: 100 steps/s
    assert bar.n == 0.25  # a quarter of the first block
    assert progress.estimate(now=115.0) == 1500
    assert progress.estimate(now=200.0) == 1999  # never past the running chunk's likely end
    progress(1000, now=118.0)
    progress(1000, now=130.0)
    assert progress.estimate(now=200.0) == 3999  # nor past the block's end
    progress(1000, now=140.0)
    progress.block(6000)  # the next block compiles: the bar holds
    assert progress.estimate(now=500.0) == 4000 and bar.n == 1.0
    progress(0, now=600.0)
    progress(600, now=700.0)  # 6 steps/s here: this block's rate, not the last one's
    assert bar.n == 1.1 and progress.estimate(now=750.0) == 4900


INTERRUPTIBLE = {
    "name": "interrupt", "steps": 1000, "seeds": 4,
    "tasks": [{"landscape": "sphere", "dim": 2}, {"landscape": "booth"}],
    "optimizers": {"gd": {"learning_rate": [1e-3, 1e-2]}, "adam": {}},
}


def test_ctrl_c_stops_in_one_line_and_resumes(tmp_path, capsys):
    """Ctrl-C while the first block is stored (the sweep is held there, so the interrupt
    lands mid-sweep however fast the blocks run): one line, exit 130, the block kept."""
    config, target, gate = tmp_path / "interrupt.toml", tmp_path / "out", tmp_path / "gate"
    config.write_text(_toml(INTERRUPTIBLE))
    process = subprocess.Popen(
        held_sweep(gate, 1, "from optbench import cli\nsys.exit(cli.main(sys.argv[3:]))",
                   "sweep", str(config), "--out", str(target), "--quiet"),
        stderr=subprocess.PIPE, text=True, cwd=tmp_path,  # the installed package
        env={**os.environ, "JAX_PLATFORMS": "cpu"})
    deadline = time.time() + 120
    while time.time() < deadline and not list(target.glob("blocks/*/runs.parquet")):
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)  # the signal is handled before the sweep goes on
    gate.touch()
    _, error = process.communicate(timeout=120)
    assert len(list(target.glob("blocks/*/runs.parquet"))) == 1
    assert process.returncode == 130 and "Traceback" not in error
    assert error.splitlines()[-1] == (f"optbench: interrupted; 1 of 4 blocks are saved in "
                                      f"{target}; run the same command again to resume")
    run_sweep(INTERRUPTIBLE, target, quiet=True)
    assert "1 of 4 blocks already done, resuming" in capsys.readouterr().err
    assert len(pd.read_parquet(target / "runs.parquet")) == 2 * (8 + 4)  # gd: 2 lrs


def _toml(config: dict) -> str:
    """A small TOML writer for the flat configs of these tests."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in config.items()
             if k not in ("tasks", "optimizers")]
    for task in config["tasks"]:
        lines += ["[[tasks]]", *(f"{k} = {json.dumps(v)}" for k, v in task.items())]
    for label, grid in config["optimizers"].items():
        lines += [f"[optimizers.{label}]", *(f"{k} = {json.dumps(v)}" for k, v in grid.items())]
    return "\n".join(lines) + "\n"


def _disk_full_after(monkeypatch, writes: int) -> None:
    """Every file write after the first ``writes`` fails as on a full disk (ENOSPC)."""
    import errno

    from optbench import store

    real, count = store._fsync, [0]

    def fsync(path):
        count[0] += 1
        if count[0] > writes:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path)

    monkeypatch.setattr(store, "_fsync", fsync)


SMALL_TOML = """
name = "small"
steps = 60
record_every = 10
seeds = 2
targets = [1.0, 1e-2]
[[tasks]]
landscape = "sphere"
dim = 2
[[tasks]]
landscape = "booth"
[optimizers.gd]
learning_rate = 0.01
[optimizers.adam]
learning_rate = [0.01, 0.1]
"""


def test_a_full_disk_is_a_one_line_error_and_the_same_command_resumes(tmp_path, monkeypatch,
                                                                     capsys, finished):
    """A sweep, then a report, each on a disk that fills mid-way: exit 2 and one line,
    no temporary file or half-written report left; with space again, the same commands
    finish the work (a manual check on a 3 MB tmpfs behaved the same)."""
    import errno
    import tomllib

    import matplotlib.figure

    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML)
    assert parse(tomllib.loads(SMALL_TOML)) == parse(SMALL)
    out = tmp_path / "out"
    _disk_full_after(monkeypatch, 9)
    assert main(["sweep", str(config), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on device" in err
    assert "run the same command again" in err
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert main(["sweep", str(config), "--out", str(out), "--quiet"]) == 0
    assert "blocks already done, resuming" in capsys.readouterr().err
    pd.testing.assert_frame_equal(_runs(out), _runs(finished))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    assert main(["report", str(out), "--workers", "1"]) == 2
    assert "no space left on device" in capsys.readouterr().err
    assert [p.name for p in out.iterdir() if "report" in p.name] == []
