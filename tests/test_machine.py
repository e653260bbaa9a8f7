"""The cores a process may use: its CPU affinity, capped by a container's CPU quota."""

import os

import pytest

from optbench import machine


@pytest.mark.parametrize(("v2", "v1", "cores"), [
    ("200000 100000\n", None, 2),
    ("150000 100000\n", None, 2),  # a part of a core is a core
    ("max 100000\n", None, None),
    (None, ("50000\n", "100000\n"), 1),
    (None, ("-1\n", "100000\n"), None),
    (None, None, None),
    ("garbage\n", None, None),
])
def test_a_cgroup_quota_in_whole_cores(tmp_path, v2, v1, cores):
    paths = tmp_path / "cpu.max", (tmp_path / "quota", tmp_path / "period")
    if v2 is not None:
        paths[0].write_text(v2)
    if v1 is not None:
        for path, text in zip(paths[1], v1, strict=True):
            path.write_text(text)
    assert machine.cgroup_quota(*paths) == cores


def test_a_quota_caps_the_cores_the_affinity_allows(monkeypatch):
    allowed = len(os.sched_getaffinity(0))
    monkeypatch.setattr(machine, "cgroup_quota", lambda: None)
    assert machine.available_cores() == allowed
    monkeypatch.setattr(machine, "cgroup_quota", lambda: 1)
    assert machine.available_cores() == 1
    monkeypatch.setattr(machine, "cgroup_quota", lambda: allowed + 5)
    assert machine.available_cores() == allowed
