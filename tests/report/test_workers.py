"""The report's figure workers: from a fork server once JAX has started (a sweep's process),
yet with the caller's data, environment and working folder."""

import os
from pathlib import Path

import jax
import pytest

from optbench.report import workers

# what the workers run is named by module (pickled by reference), and this test module is not
# importable in another process: stdlib functions and optbench's only


def test_workers_from_the_fork_server_see_the_callers_data_environment_and_folder(
        tmp_path, monkeypatch):
    jax.devices()  # JAX's threads run here now: forking this process is no longer safe
    assert not workers.can_fork()
    workers.start_early()  # the server starts with the environment and folder of now
    monkeypatch.setenv("OPTBENCH_WORKER_PROBE", "set after the server started")
    monkeypatch.chdir(tmp_path)
    data = {"runs": [1, 2, 3]}
    with workers.pool(2, data) as executor:
        seen = [executor.submit(*call).result() for call in [
            (workers.held_data,), (os.getenv, "OPTBENCH_WORKER_PROBE"), (os.getcwd,),
            (os.getppid,)]]
    assert seen[-1] != os.getpid()  # not forked from here
    assert seen[:-1] == [data, "set after the server started", str(tmp_path)]


def test_a_workers_error_reaches_the_caller():
    jax.devices()
    with workers.pool(1, None) as executor:
        with pytest.raises(ValueError, match="drawn wrong"):
            executor.submit(int, "drawn wrong").result()


class _Unrebuildable:
    """Pickled as a call that fails where it is unpickled."""

    def __reduce__(self):
        return int, ("cannot be rebuilt here",)


def test_a_worker_that_cannot_take_the_data_says_why():
    jax.devices()
    with workers.pool(1, _Unrebuildable()) as executor:
        with pytest.raises(ValueError, match="cannot be rebuilt here"):
            executor.submit(workers.held_data).result()


def _fork_servers_of(pid: int) -> list[Path]:
    """The /proc folders of ``pid``'s children that are fork servers."""
    found = []
    for process in Path("/proc").iterdir():
        try:
            parent = int((process / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (process / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):  # not a process, or gone meanwhile
            continue
        if parent == pid and b"multiprocessing.forkserver" in command:
            found.append(process)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads Linux's /proc")
def test_the_fork_server_holds_none_of_this_process_output():
    """It ends a moment after this process; a pipe reading our output must not wait for it."""
    workers.start_early()
    servers = _fork_servers_of(os.getpid())
    assert servers
    for server in servers:
        for fd in (0, 1, 2):
            assert os.readlink(server / "fd" / str(fd)) == os.devnull
