"""Tiny sweeps to build reports from: a surface sweep (2-D trajectories) and a data-task sweep
(train and test loss columns, as a network task records). Built once per session; tests that
change a folder copy it first."""

import copy
import shutil

import pandas as pd
import pytest

from optbench.engine import run_sweep
from optbench.report import write_report
from optbench.report.data import ReportData, load
from tests.engine import data_task  # noqa: F401  (registers the test-regression task kind)

SURFACES = {
    "name": "tiny-surfaces",
    "steps": 40,
    "record_every": 5,
    "seeds": [0, 1],
    "targets": [1.0, 1e-2, 1e-4],
    "tasks": [{"landscape": "rosenbrock", "dim": 2},
              {"landscape": "himmelblau", "start": "random"}],
    "optimizers": {"gd": {"learning_rate": [1e-3, 1e-2, 0.1]},
                   "sgd": {"learning_rate": [1e-3, 1e-2]},
                   "minibatch": {"learning_rate": [1e-3, 1e-2]},
                   "adam": {"learning_rate": [1e-2, 0.1, 10.0]}},
}

DATA = {
    "name": "tiny-data",
    "steps": 30,
    "record_every": 5,
    "seeds": [0, 1],
    "targets": [1.0, 0.1],
    "tasks": [{"kind": "test-regression", "name": "regression"}],
    "optimizers": {"gd": {"learning_rate": [1e-3, 0.1]}, "adam": {"learning_rate": [0.1]}},
}


WINE = {
    "name": "wine-params",
    "steps": 20,
    "record_every": 10,
    "seeds": 1,
    "targets": [0.5],
    "keep_params": True,
    "tasks": [{"kind": "wine-ann", "width": 8}],
    "optimizers": {"adam": {"learning_rate": [1e-3, 1e-2]}, "gd": {"learning_rate": [0.1]}},
}


@pytest.fixture(scope="session")
def wine_paths(tmp_path_factory):
    """A small network sweep keeping every run's final parameters and the best setting's
    paths: two optimizers on two seeds each (the same seeds)."""
    return run_sweep({**WINE, "name": "wine-paths", "keep_params": "best", "seeds": 2},
                     tmp_path_factory.mktemp("sweeps") / "wine-paths", quiet=True,
                     compile_cache=False)


@pytest.fixture(scope="session")
def wine_paths_report(wine_paths, tmp_path_factory):
    """The ``index.html`` of the report of a copy of :func:`wine_paths`."""
    folder = shutil.copytree(wine_paths, tmp_path_factory.mktemp("reports") / "wine")
    return write_report(folder, workers=1)


@pytest.fixture(scope="session")
def surface_results(tmp_path_factory):
    return run_sweep(SURFACES, tmp_path_factory.mktemp("sweeps") / "surfaces", quiet=True,
                     compile_cache=False)


@pytest.fixture(scope="session")
def data_results(tmp_path_factory):
    return run_sweep(DATA, tmp_path_factory.mktemp("sweeps") / "data", quiet=True,
                     compile_cache=False)


@pytest.fixture
def surface_copy(surface_results, tmp_path):
    """A private copy of the surface sweep's folder, to change."""
    return shutil.copytree(surface_results, tmp_path / "surfaces")


@pytest.fixture(scope="session")
def mixed_data(surface_results, data_results) -> ReportData:
    """The surface and the data sweep read as one report's data: two metric groups (f_gap,
    and the regression's test_loss), each task with its own targets. No sweep is run."""
    surfaces, data = load(surface_results), load(data_results)
    meta = copy.deepcopy(surfaces.meta)
    meta["config"]["tasks"] += data.config["tasks"]
    assert set(data.optimizers) <= set(surfaces.optimizers)
    for key in ("blocks", "hyperparameters"):
        meta[key] = {**data.meta[key], **meta[key]}
    meta["planned_blocks"] = list(meta["blocks"])
    return ReportData(surface_results, meta,
                      pd.concat([surfaces.runs, data.runs], ignore_index=True),
                      pd.concat([surfaces.curves, data.curves], ignore_index=True),
                      surfaces.trajectories, [], {})
