"""Two-stage (DeepOBS-style) tuning: stage 2 reruns each (task, optimizer)'s best setting of
a finished sweep on fresh seeds, beside it, recording where it came from."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from optbench.analysis import tables_for
from optbench.cli import main
from optbench.config import parse
from optbench.engine import run_sweep
from optbench.report import load, write_report
from optbench.report.build import protocol
from optbench.tuning import fresh_seeds, rerun_best

STAGE_1 = {
    "name": "stage-1",
    "steps": 30,
    "record_every": 10,
    "seeds": 2,
    "targets": [1e-1, 1e-3],
    "tasks": [{"landscape": "sphere", "start": [1.0, -1.0]},
              {"landscape": "rosenbrock", "start": [-1.2, 1.0], "optimizers": ["adam"]}],
    "optimizers": {"adam": {"learning_rate": [1e-3, 0.1], "b1": [0.5, 0.9]},
                   "sgd": {"learning_rate": [0.01, 0.03, 0.3]}},
}


@pytest.fixture(scope="module")
def stage_1(tmp_path_factory):
    return run_sweep(STAGE_1, tmp_path_factory.mktemp("tuning") / "stage-1", quiet=True,
                     compile_cache=False)


def test_stage_2_fixes_each_tasks_best_setting_and_takes_more_seeds(stage_1, tmp_path):
    config = rerun_best(stage_1, seeds=3)
    table, _ = tables_for(stage_1)
    best = table.set_index(["task", "optimizer"])["setting"]
    stage_2 = run_sweep(config, tmp_path / "stage-2", quiet=True, compile_cache=False)
    runs = pd.read_parquet(stage_2 / "runs.parquet")
    assert sorted(runs.groupby(["task", "optimizer"]).groups) == sorted(best.index)
    for (task, optimizer), group in runs.groupby(["task", "optimizer"]):
        assert sorted(group["seed"]) == [2, 3, 4] and group["config"].nunique() == 1
        row = group.iloc[0]
        hparams = {"learning_rate": row["learning_rate"]}
        if optimizer == "adam":
            hparams["b1"] = row["b1"]
        shown = ", ".join(f"{k}={v:.3g}" for k, v in hparams.items())
        assert best[(task, optimizer)] == shown  # stage 1's best setting, as its table says
    assert parse(config).name == "stage-1-best"


def test_best_of_from_the_command_line(stage_1, tmp_path, capsys):
    out = tmp_path / "rerun"
    assert main(["sweep", "--best-of", str(stage_1), "--seeds", "2", "--out", str(out),
                 "--quiet"]) == 0
    assert (out / "runs.parquet").is_file() and "results:" in capsys.readouterr().out
    assert main(["sweep", "--seeds", "2", "--example", "default"]) == 2
    assert "--seeds applies to --best-of DIR only" in capsys.readouterr().err
    assert main(["sweep", "--best-of", str(stage_1), "--example", "default"]) == 2
    assert "give one of CONFIG.toml, --example NAME or --best-of DIR" in \
        capsys.readouterr().err
    assert main(["sweep", "--best-of", str(tmp_path / "none")]) == 2


def test_stage_2_seeds_are_disjoint_from_stage_1s(stage_1, tmp_path):
    assert fresh_seeds([0, 1, 2, 3, 4], 3) == [5, 6, 7]
    assert fresh_seeds([1, 3], 3) == [0, 2, 4]
    assert rerun_best(stage_1)["seeds"] == list(range(2, 12))  # 10 by default, as DeepOBS
    stage_2 = run_sweep(rerun_best(stage_1, seeds=2), tmp_path / "stage-2", quiet=True,
                        compile_cache=False)
    first, second = (set(pd.read_parquet(d / "runs.parquet")["seed"]) for d in (stage_1, stage_2))
    assert first == {0, 1} and second == {2, 3}


def test_stage_2_writes_beside_stage_1_and_records_its_budget(stage_1, capsys):
    assert main(["sweep", "--best-of", str(stage_1), "--seeds", "2", "--quiet"]) == 0
    stage_2 = stage_1.parent / "stage-1-best"
    assert (stage_2 / "runs.parquet").is_file() and str(stage_2) in capsys.readouterr().out
    record = json.loads((stage_2 / "meta.json").read_text())["stage1"]
    meta = json.loads((stage_1 / "meta.json").read_text())
    sphere, rosenbrock = (t["name"] for t in meta["config"]["tasks"])
    chosen = record.pop("chosen")
    assert record == {
        "directory": str(stage_1.resolve()), "config_hash": meta["config_hash"],
        "seeds": [0, 1], "metrics": {sphere: "f_gap", rosenbrock: "f_gap"},
        "trials": {sphere: {"adam": 4, "sgd": 3}, rosenbrock: {"adam": 4}},
        "starts": {sphere: 1, rosenbrock: 1}, "runs_per_trial": {sphere: 2, rosenbrock: 2}}

    # its table shows stage 1's search, which its one setting each cannot: the settings
    # tried, the expected bests, and a chosen value on the edge of the values tried
    first, second = (tables_for(d)[0].set_index(["task", "optimizer"]) for d in (stage_1, stage_2))
    columns = ["settings_tried", "expected_best@1", "expected_best@N_high"]
    pd.testing.assert_frame_equal(second[columns], first.loc[second.index, columns])
    assert chosen[sphere]["sgd"]["settings_tried"] == 3
    edge = "learning_rate=0.3 is the largest value tried (0.01 to 0.3)"
    assert chosen[sphere]["sgd"]["edges"] == [edge + "; the best may lie beyond it"]
    assert f"sgd on {sphere}: {edge}" in " ".join(second.attrs["caveats"])
    assert "(stage 1 chose it)" in (stage_2 / "convergence.md").read_text()

    # the report states the protocol and links stage 1's report once there is one
    data = load(stage_2)
    assert f"<code>{stage_1.resolve()}</code>" in protocol(data, stage_2 / "report")
    data.config["tasks"][1]["kind"] = "mnist1d-mlp"  # the metric as recorded, whatever it is
    data.meta["stage1"] = {**record, "metrics": {sphere: "f_gap", rosenbrock: "valid_loss"},
                           "starts": {sphere: 1, rosenbrock: 3}}
    assert ("by f_gap on surface tasks and valid_loss on mnist1d-mlp tasks, over 3–4 settings "
            "× 2 seeds × 1–3 starts") in protocol(data, stage_2 / "report")
    write_report(stage_1, workers=1)
    page = write_report(stage_2, workers=1).read_text()
    assert '<a href="../../stage-1/report/index.html">stage-1</a>' in page
    assert "Skipped: a stage-2 sweep runs one setting per optimizer" in page
    assert ("hyperparameters were tuned in stage 1" in page and "by f_gap on surface tasks, "
            "over 3–4 settings × 2 seeds, and its best setting is confirmed here on 2 fresh "
            "seeds (2, 3)" in page)
    assert "Protocol:" not in write_report(stage_1, workers=1).read_text()

    # stage 2's folder is not a stage 1: its settings were chosen on stage 1's seeds
    assert main(["sweep", "--best-of", str(stage_2), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"holds stage 2 of {stage_1.resolve()}" in err and len(err.splitlines()) == 1
    assert not (stage_1.parent / "stage-1-best-best").exists()


def test_stage_2_of_an_optimizer_whose_every_setting_diverged(tmp_path):
    """Its expected bests are +inf (the worst), which JSON cannot hold: the stage-1 record
    keeps them as text and stage 2's table reads them back as numbers."""
    stage_1 = run_sweep({**STAGE_1, "tasks": STAGE_1["tasks"][:1],
                         "optimizers": {"sgd": {"learning_rate": [3.0, 10.0]}}},
                        tmp_path / "diverging", quiet=True, compile_cache=False)
    assert main(["sweep", "--best-of", str(stage_1), "--seeds", "2", "--quiet"]) == 0
    table, _ = tables_for(tmp_path / "diverging-best")
    assert table["diverged"].eq(1.0).all() and table["settings_tried"].tolist() == [2]
    assert np.isposinf(table[["expected_best@1", "expected_best@N_high"]].to_numpy()).all()


def test_stage_2_refuses_bad_seeds_and_an_unfinished_stage_1(stage_1, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--best-of", str(stage_1), "--seeds", "0"])
    assert exit_.value.code == 2 and "--seeds: found '0'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="seeds: found 0; allowed an integer >= 1"):
        rerun_best(stage_1, seeds=0)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(stage_1, unfinished, ignore=shutil.ignore_patterns("report"))
    next((unfinished / "blocks").glob("*/runs.parquet")).unlink()
    assert main(["sweep", "--best-of", str(unfinished)]) == 2
    err = capsys.readouterr().err
    assert "holds an unfinished sweep (2 of 3 blocks)" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "unfinished-best").exists()
