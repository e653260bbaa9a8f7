"""One sweep over two processes (jax.distributed on localhost) equals the same sweep in one
process, which has a CPU device per core."""

import os
import socket
import subprocess
import sys
import warnings

import jax
import pandas as pd
import pytest

from optbench.engine import distributed
from optbench.engine.distributed import (
    CPU_DEVICES_FLAG,
    CPU_DEVICES_VARIABLE,
    MAX_CPU_DEVICES,
    cpu_device_count,
    use_every_core,
)
from optbench.machine import available_cores
from tests.engine.helpers import without_timing

CONFIG = """
name = "dist"
steps = 50
seeds = 3
float64 = true
[[tasks]]
landscape = "rosenbrock"
start = "random"
starts = 2
[[tasks]]
landscape = "himmelblau"
start = "random"
[optimizers.adam]
learning_rate = [0.01, 0.1]
[optimizers.gd]
learning_rate = [0.001, 0.01]
"""

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "OPTBENCH_COMPILE_CACHE": "off"}
ENV.pop(CPU_DEVICES_VARIABLE, None)  # the command's own choice of CPU devices
ENV["XLA_FLAGS"] = " ".join(f for f in ENV.get("XLA_FLAGS", "").split()
                            if not f.startswith(CPU_DEVICES_FLAG))
# the subprocesses run in tmp_path, not the checkout, so that they import the installed optbench


def _sweep(config, out, *extra):
    return [sys.executable, "-m", "optbench.cli", "sweep", str(config), "--out", str(out),
            "--quiet", *extra]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_write_the_same_results_as_one(tmp_path):
    config = tmp_path / "dist.toml"
    config.write_text(CONFIG)
    one = subprocess.run(_sweep(config, tmp_path / "one"), env=ENV, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    cluster = ["--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2"]
    processes = [subprocess.Popen(_sweep(config, tmp_path / "two", *cluster, "--process-id",
                                         str(i)), env=ENV, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert "results:" in outputs[0][0] and "results:" not in outputs[1][0]  # process 0 reports
    single = without_timing(pd.read_parquet(tmp_path / "one" / "runs.parquet"))
    double = without_timing(pd.read_parquet(tmp_path / "two" / "runs.parquet"))
    pd.testing.assert_frame_equal(single, double, rtol=1e-12)
    meta = pd.read_json(tmp_path / "two" / "meta.json", typ="series")
    assert meta["process_count"] == 2 and meta["device_count"] == 2  # JAX's one CPU device each
    # one process has a CPU device per core, up to the limit
    meta = pd.read_json(tmp_path / "one" / "meta.json", typ="series")
    assert meta["device_count"] == min(available_cores(), MAX_CPU_DEVICES)


def test_one_cpu_device_per_core_unless_the_user_chose():
    assert [cpu_device_count({}, cores) for cores in (1, 2, 3, 64)] == [1, 2, 3, MAX_CPU_DEVICES]
    assert cpu_device_count({CPU_DEVICES_VARIABLE: "1"}, 4) is None
    assert cpu_device_count({"XLA_FLAGS": f"--xla_cpu_use_thunk_runtime=true {CPU_DEVICES_FLAG}=3"},
                            4) is None
    assert cpu_device_count({"XLA_FLAGS": "--xla_cpu_use_thunk_runtime=true"}, 4) == 4


def test_asking_for_cores_once_jax_has_started_warns(monkeypatch):
    jax.devices()  # started, with the suite's one CPU device
    monkeypatch.delenv(CPU_DEVICES_VARIABLE)
    monkeypatch.setattr(distributed, "available_cores", lambda: 3)
    with pytest.warns(UserWarning, match="JAX has started already, with 1 CPU device"):
        use_every_core()
    monkeypatch.setattr(distributed, "available_cores", lambda: 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        use_every_core()  # it has the one asked for


def test_a_coordinator_out_of_reach_is_a_one_line_error_and_writes_nothing(tmp_path):
    config = tmp_path / "dist.toml"
    config.write_text(CONFIG)
    out = subprocess.run(_sweep(config, tmp_path / "none", "--coordinator",
                                f"127.0.0.1:{_free_port()}", "--num-processes", "2",
                                "--process-id", "1", "--join-timeout", "1"),
                         env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("optbench: error: could not reach the coordinator")
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()


def test_num_processes_without_a_coordinator_is_refused(tmp_path):
    config = tmp_path / "dist.toml"
    config.write_text(CONFIG)
    out = subprocess.run(_sweep(config, tmp_path / "none", "--num-processes", "2"), env=ENV,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "go together" in out.stderr
    assert not (tmp_path / "none").exists()
