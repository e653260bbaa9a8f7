"""``optbench report``: figures, tables and page from tiny sweeps; partial, foreign and
read-only folders."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import optbench
from optbench.cli import main
from optbench.report import MARKER, _results_files, write_report
from optbench.store import ResultStore
from tests.report.conftest import SURFACES

SURFACE_FIGURES = ["trajectories-rosenbrock-2d", "trajectories-himmelblau-2d", "convergence",
                   "lr-sensitivity", "ecdf", "success-heatmap", "gradient-sources",
                   "tuning-budget", "performance-profile", "performance-profile-seconds",
                   "aggregate-scores"]
TABLES = ["convergence.md", "convergence.csv", "convergence.tex"]


class Links(HTMLParser):
    """Every src and href of a page, and its text."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data):
        self.text.append(data)


def parse(index: Path) -> Links:
    page = Links()
    page.feed(index.read_text(encoding="utf-8"))
    return page


def assert_valid_images(folder: Path, stems: list[str], vector: bool = False) -> None:
    """Each figure's PNG, and its SVG where the report was asked for vector copies (and
    none otherwise)."""
    for stem in stems:
        png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100, stem
        if vector:
            assert ET.parse(svg).getroot().tag.endswith("svg") and svg.stat().st_size > 1000
        else:
            assert not svg.exists()


def page_text(index: Path) -> str:
    return " ".join(parse(index).text)


def tree(folder: Path) -> dict[str, int]:
    """Every path under ``folder`` but the report's, with its modification time."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.relative_to(folder).parts[0] != "report"}


SURFACE_PROGRESS: list[str] = []  # what the session's surface report told as it drew


@pytest.fixture(scope="session")
def surface_report(surface_results):
    return write_report(surface_results, workers=1, vector=True,
                        progress=SURFACE_PROGRESS.append)


def test_surface_report_has_every_figure_and_table(surface_report):
    folder = surface_report.parent
    assert folder == surface_report.parent and surface_report.name == "index.html"
    assert_valid_images(folder, SURFACE_FIGURES, vector=True)
    for name in TABLES:
        assert (folder / name).stat().st_size > 100
    assert "gd" in (folder / "convergence.md").read_text()


def test_page_links_only_files_that_exist(surface_report):
    page = parse(surface_report)
    files = [link for link in page.links if not link.startswith("#")]
    assert files and not [f for f in files if "://" in f or f.startswith("//")]
    assert all((surface_report.parent / f).is_file() for f in files)
    images = {f.removesuffix(".png") for f in files if f.endswith(".png")}
    assert set(SURFACE_FIGURES) <= images


def test_absent_data_is_skipped_with_its_reason(surface_report):
    text = " ".join(parse(surface_report).text)
    assert "Skipped: no network-task results" in text
    assert "Skipped: no optax re-run in this folder" in text
    assert not (surface_report.parent / "training-curves.png").exists()


def test_page_states_what_was_run_and_warns_of_divergence(surface_results, surface_report):
    text = " ".join(parse(surface_report).text)
    assert "tiny-surfaces" in text and "float32" in text and "jax" in text
    runs = pd.read_parquet(surface_results / "runs.parquet")
    diverged = runs[runs["diverged"]].groupby(["task", "optimizer"]).size()
    assert len(diverged)  # the fixture's large learning rates diverge
    for (task, optimizer), count in diverged.items():
        assert f"{optimizer} on {task}: {count} of " in text
    # the best setting names a hyperparameter that differs from the default
    assert "learning_rate=" in text


def test_data_task_draws_training_curves_and_skips_surface_figures(data_results, tmp_path):
    index = write_report(data_results, workers=2)  # the parallel path; PNG only by default
    serial = write_report(data_results, tmp_path / "serial", workers=1)
    assert parse(index).links == parse(serial).links  # the jobs' order is the page's
    folder = index.parent
    assert_valid_images(folder, ["training-curves", "generalization-gap", "lr-sensitivity",
                                 "ecdf", "success-heatmap"])
    assert not any(link.endswith(".svg") for link in parse(index).links)
    text = " ".join(parse(index).text)
    assert "Skipped: no 2-D surface task" in text
    assert "Skipped: no surface-task results" in text


def test_report_writes_nothing_outside_its_folder(surface_copy):
    before = tree(surface_copy)
    write_report(surface_copy, workers=1)
    assert tree(surface_copy) == before and (surface_copy / "report" / "index.html").is_file()
    index = write_report(surface_copy, workers=1, vector=True)  # replaces the previous one
    assert (index.parent / "ecdf.svg").is_file()  # other options: drawn again
    assert tree(surface_copy) == before  # no leftovers beside the results either
    hidden = [p.name for p in (surface_copy / "report").rglob(".*")]
    assert hidden == [MARKER]  # no temporary files left behind


def test_a_report_is_drawn_again_only_when_what_it_shows_changed(surface_copy):
    optbench.sweep(SURFACES, surface_copy, quiet=True)  # adds the convergence tables
    index = write_report(surface_copy, workers=1)
    drawn = {p.name: p.stat().st_mtime_ns for p in index.parent.iterdir()}
    assert write_report(surface_copy, workers=1) == index  # up to date: nothing drawn
    optbench.sweep(SURFACES, surface_copy, quiet=True)  # runs nothing, writes the tables
    assert write_report(surface_copy, workers=1) == index
    assert {p.name: p.stat().st_mtime_ns for p in index.parent.iterdir()} == drawn
    (index.parent / "ecdf.png").unlink()  # a file of the report removed: drawn again
    write_report(surface_copy, workers=1)
    assert (index.parent / "ecdf.png").is_file()
    block = surface_copy / "blocks" / "adam__himmelblau-2d" / "runs.parquet"
    runs = pd.read_parquet(block)
    runs.assign(diverged=True, final=float("inf")).to_parquet(block)  # other results
    text = " ".join(parse(write_report(surface_copy, workers=1)).text)
    assert f"adam on himmelblau-2d: {len(runs)} of {len(runs)} runs diverged" in text


WRITER = """import sys, time
from optbench.store import ResultStore
ResultStore(sys.argv[1]).lock()
print("locked", flush=True)
time.sleep(600)
"""


def test_a_report_of_a_sweep_still_writing_is_drawn_again_once_it_stops(surface_copy):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(surface_copy)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "locked\n"
        assert "what follows is partial" in page_text(write_report(surface_copy, workers=1))
    finally:
        writer.kill()  # killed: no other file of the folder changes
        writer.wait()
    assert "what follows is partial" not in page_text(write_report(surface_copy, workers=1))


def test_a_report_using_code_of_the_users_own_is_always_drawn(data_results, tmp_path):
    folder = shutil.copytree(data_results, tmp_path / "data")  # its task kind is a test's
    index = write_report(folder, workers=1)
    drawn = index.stat().st_mtime_ns
    assert write_report(folder, workers=1).stat().st_mtime_ns != drawn


def test_the_report_reads_every_visible_regular_file_once(tmp_path):
    folder, elsewhere = tmp_path / "results", tmp_path / "elsewhere"
    (folder / "report").mkdir(parents=True)
    (folder / "report" / MARKER).write_text("")
    (folder / "report" / "index.html").write_text("")
    (elsewhere / "a").mkdir(parents=True)
    (elsewhere / "a" / "runs.parquet").write_text("")
    (folder / "blocks").symlink_to(elsewhere / "a")
    (folder / "again").symlink_to(elsewhere / "a")
    (folder / ".optbench.lock").write_text("")
    (folder / "meta.json").write_text("")
    os.mkfifo(folder / "pipe")
    found = [p.relative_to(folder).as_posix() for p in _results_files(folder)]
    assert found == ["meta.json", "again/runs.parquet"]  # "blocks" is the same folder again


def test_partial_results_report_what_exists_and_list_what_is_missing(surface_copy):
    (surface_copy / "blocks" / "adam__himmelblau-2d" / "runs.parquet").unlink()
    text = " ".join(parse(write_report(surface_copy, workers=1)).text)
    assert "block adam on himmelblau-2d is missing from the store" in text
    # a first sweep killed (or still writing) has listed no block in meta.json yet: the
    # finished blocks' own records give their tasks' targets and steps
    meta = json.loads((surface_copy / "meta.json").read_text())
    del meta["finished"]
    ResultStore(surface_copy).write_json("meta.json", {**meta, "blocks": {}})
    text = " ".join(parse(write_report(surface_copy, workers=1)).text)
    assert "block adam on himmelblau-2d is missing from the store" in text


def test_not_a_results_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not an optbench results folder" in err
    assert not any(tmp_path.iterdir())


def test_read_only_results_fail_clearly_or_go_to_out(surface_copy, tmp_path, monkeypatch,
                                                      capsys):
    """Root ignores permission bits, so the read-only folder is simulated where the report
    stages its files."""
    real = tempfile.mkdtemp

    def mkdtemp(*args, dir=None, **kwargs):
        if Path(dir) == surface_copy:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    before = tree(surface_copy)
    assert main(["report", str(surface_copy), "--workers", "1"]) == 2
    assert "read-only: pass --out" in capsys.readouterr().err
    assert tree(surface_copy) == before
    out = tmp_path / "elsewhere"
    assert main(["report", str(surface_copy), "--out", str(out), "--workers", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert (out / "index.html").is_file() and tree(surface_copy) == before


def test_out_refuses_a_foreign_folder(surface_results, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["report", str(surface_results), "--out", str(tmp_path)]) == 2
    assert "holds no optbench report" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_animation_behind_a_flag(surface_copy):
    index = write_report(surface_copy, animate=True, workers=1)
    with Image.open(index.parent / "animation-rosenbrock-2d.gif") as gif:
        assert gif.n_frames > 1
        below_title = []  # the paths grow: the first and last frames differ below the title
        for frame in (0, gif.n_frames - 1):
            gif.seek(frame)
            image = np.asarray(gif.convert("RGB"))
            below_title.append(image[image.shape[0] // 8:])
        assert (below_title[0] != below_title[1]).any(-1).mean() > 0.001
    assert "animation-rosenbrock-2d.gif" in parse(index).links


def test_sweep_with_report_prints_the_page(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text('name = "tiny"\nsteps = 20\nrecord_every = 5\nseeds = 2\n'
                      '[[tasks]]\nlandscape = "rosenbrock"\n'
                      '[optimizers.momentum]\nlearning_rate = [0.001, 0.01]\n'
                      'momentum = 0.5\n')
    out = tmp_path / "tiny"
    assert main(["sweep", str(config), "--out", str(out), "--quiet", "--report"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report' / 'index.html'}" in printed
    text = " ".join(parse(out / "report" / "index.html").text)
    # momentum = 0.5 is fixed in the grid but not optax's default: the best setting names it
    assert "momentum=0.5" in text


def test_accuracy_columns_are_drawn_where_a_task_records_them(data_results, tmp_path):
    """A network task records test_accuracy beside its losses: add one to the data sweep's
    blocks and the report draws it (linear axis); learning rates are still shown by the
    primary metric, which chooses settings, never by the test one."""
    folder = shutil.copytree(data_results, tmp_path / "data")
    for block in (folder / "blocks").iterdir():
        curves = pd.read_parquet(block / "curves.parquet")
        curves["test_accuracy"] = 1 / (1 + curves["test_loss"])
        curves.to_parquet(block / "curves.parquet")
        runs = pd.read_parquet(block / "runs.parquet")
        last = curves.sort_values("step").groupby("run_id")["test_accuracy"].last()
        runs["final_test_accuracy"] = runs["run_id"].map(last)
        runs.to_parquet(block / "runs.parquet")
    index = write_report(folder, workers=1)
    text = " ".join(parse(index).text)
    assert "train loss, test loss, test accuracy against step" in text
    assert "The final value of each task's primary metric" in text
    assert "final test accuracy" not in text
    assert_valid_images(index.parent, ["training-curves", "lr-sensitivity"])


def test_bad_target_and_workers_are_one_line_errors(surface_results, capsys):
    assert main(["report", str(surface_results), "--target", "0.5"]) == 2
    assert "--target: 0.5 is not one of the sweep's targets (1, 0.01, 0.0001)" in (
        capsys.readouterr().err)
    assert main(["report", str(surface_results), "--workers", "0"]) == 2
    assert "--workers: 0 is not an integer >= 1" in capsys.readouterr().err


def test_target_picks_the_heatmap_target(surface_copy):
    index = write_report(surface_copy, target=1.0, workers=1)
    assert "Success rate at target 1" in " ".join(parse(index).text)


def test_networks_compare_gd_sgd_and_minibatch_per_example_seen(tmp_path):
    """One wine task per method, each with its own steps so that the examples seen are
    about equal (106 per GD step, 16 per mini-batch step, 1 per SGD step): drawn per example."""
    from optbench.engine import run_sweep

    tasks = [{"kind": "wine-ann", "name": f"wine-{m}", "width": 8, "optimizers": [m],
              "steps": steps, "record_every": steps // 2, "batch_size": 16}
             for m, steps in (("gd", 2), ("minibatch", 14), ("sgd", 212))]
    folder = run_sweep({"name": "sources", "seeds": 1, "targets": [0.9], "tasks": tasks,
                        "optimizers": {m: {"learning_rate": 0.05}
                                       for m in ("gd", "minibatch", "sgd")}},
                       tmp_path / "sources", quiet=True, compile_cache=False)
    index = write_report(folder, workers=1)
    assert_valid_images(index.parent, ["gradient-sources-examples"])
    text = " ".join(parse(index).text)
    assert "GD vs SGD vs mini-batch SGD per example seen" in text
    assert "no task was run with all of gd" not in text


def test_one_task_running_gd_sgd_and_minibatch_puts_each_on_its_own_examples_seen(tmp_path):
    """With the three methods in one task, each curve's x is its own step x examples per
    step (the training split for GD, 1 for SGD, the batch for mini-batch), not the first
    method's."""
    from optbench.engine import run_sweep
    from optbench.report import figures
    from optbench.report.data import load

    folder = run_sweep({"name": "one-task", "steps": 4, "record_every": 2, "seeds": 1,
                        "targets": [0.9],
                        "tasks": [{"kind": "wine-ann", "width": 8, "batch_size": 16}],
                        "optimizers": {m: {"learning_rate": 0.05}
                                       for m in ("gd", "minibatch", "sgd")}},
                       tmp_path / "one-task", quiet=True, compile_cache=False)
    data = load(folder)
    n_train = int(data.runs["n_train"].iloc[0])
    drawn, = [d for d in figures.gradient_sources(data) if d.name == "gradient-sources-examples"]
    seen = {line.get_label(): np.asarray(line.get_xdata(), float)
            for line in drawn.figure.axes[0].get_lines() if len(line.get_xdata()) > 1}
    np.testing.assert_array_equal(seen["sgd"], [0, 2, 4])
    np.testing.assert_array_equal(seen["minibatch"], seen["sgd"] * 16)
    np.testing.assert_array_equal(seen["gd"], seen["sgd"] * n_train)


def test_initialization_study_draws_init_by_activation_and_layer_norms(tmp_path):
    """Networks that differ in initializer and activation (as nn-initialization does): the
    heatmap and the per-layer gradient norms are drawn from the runs' own columns."""
    from optbench.engine import run_sweep

    tasks = [{"kind": "wine-ann", "name": f"{a}-{i}", "activation": a, "initializer": i,
              "depth": 2, "width": 8}
             for a in ("tanh", "relu") for i in ("zeros", "he_normal")]
    folder = run_sweep({"name": "init", "steps": 10, "record_every": 5, "seeds": 1,
                        "targets": [0.9], "tasks": tasks,
                        "optimizers": {"adam": {"learning_rate": 0.01}}},
                       tmp_path / "init", quiet=True, compile_cache=False)
    index = write_report(folder, workers=1)
    assert_valid_images(index.parent, ["init-activation", "gradient-norms"])
    text = " ".join(parse(index).text)
    assert "per weight initialization and activation" in text
    assert "layer 1 is the first dense or conv layer" in text


def test_blocks_a_task_never_planned_are_not_reported_missing(tmp_path):
    """A task with its own optimizer list plans fewer blocks than optimizers x tasks: the
    report lists none of the others as missing, and does list a planned one that is."""
    from optbench.engine import run_sweep
    from optbench.report.data import load

    out = run_sweep({"name": "own-list", "steps": 5, "record_every": 5, "seeds": 1,
                     "tasks": [{"landscape": "sphere", "dim": 2},
                               {"landscape": "booth", "optimizers": ["adam"]}],
                     "optimizers": {"gd": {"learning_rate": 0.1},
                                    "adam": {"learning_rate": 0.1}}},
                    tmp_path / "own-list", quiet=True, compile_cache=False)
    assert load(out).missing_blocks == []
    (out / "blocks" / "adam__booth-2d" / "runs.parquet").unlink()
    assert load(out).missing_blocks == ["adam__booth-2d"]


def test_the_report_tells_its_progress_as_figures_are_drawn(surface_report):
    total = int(SURFACE_PROGRESS[-1].split(" of ")[1].split()[0])
    assert total > 1 and SURFACE_PROGRESS == [f"report: {k} of {total} figure jobs drawn"
                                              for k in range(1, total + 1)]
