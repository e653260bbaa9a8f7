"""The report's figure workers: from a fork server once JAX has started (a sweep's process),
yet with the caller's data, environment and working folder."""

import os

import jax

from optbench.report import workers


def _what_a_worker_sees(name: str) -> tuple:
    return workers.held_data(), os.environ.get(name), os.getcwd(), os.getppid()


def test_workers_from_the_fork_server_see_the_callers_data_environment_and_folder(
        tmp_path, monkeypatch):
    jax.devices()  # JAX's threads run here now: forking this process is no longer safe
    assert not workers.can_fork()
    workers.start_early()  # the server starts with the environment and folder of now
    monkeypatch.setenv("OPTBENCH_WORKER_PROBE", "set after the server started")
    monkeypatch.chdir(tmp_path)
    data = {"runs": [1, 2, 3]}
    with workers.pool(2, data) as executor:
        *seen, parent = executor.submit(_what_a_worker_sees, "OPTBENCH_WORKER_PROBE").result()
    assert parent != os.getpid()  # not forked from here
    assert seen == [data, "set after the server started", str(tmp_path)]
