"""The report's figure workers: from a fork server once JAX has started (a sweep's process),
yet with the caller's data, environment and working folder."""

import ast
import os
import subprocess
import sys
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


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads Linux's /proc")
@pytest.mark.parametrize("closed", ["", "<&-", "2>&-", "<&- 2>&-", ">&-"])
def test_the_fork_server_holds_none_of_the_callers_streams(closed, tmp_path):
    """It ends a moment after the caller; a pipe reading the caller's output must not wait
    for it. Its streams are the null device, even where the caller's are closed, and the
    caller's are as they were."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, sys\n"
        "from pathlib import Path\n"
        "from optbench.report import workers\n"
        "def streams(pid):\n"
        "    return [os.readlink(f'/proc/{pid}/fd/{fd}') if Path(f'/proc/{pid}/fd/{fd}')"
        ".exists() else 'closed' for fd in (0, 1, 2)]\n"
        "def children(pid):\n"
        "    return [p.name for p in Path('/proc').iterdir() if p.name.isdigit()"
        " and (p / 'stat').is_file()"
        " and (p / 'stat').read_text().rsplit(')', 1)[1].split()[1] == str(pid)"
        " and b'forkserver' in (p / 'cmdline').read_bytes()]\n"
        "if __name__ == '__main__':  # the fork server imports this script too\n"
        "    before = streams(os.getpid())\n"
        "    workers.start_early()\n"
        "    report = {'before': before, 'after': streams(os.getpid()),"
        " 'servers': [streams(pid) for pid in children(os.getpid())]}\n"
        "    Path(sys.argv[1]).write_text(repr(report))\n")
    out = tmp_path / "report.txt"
    subprocess.run(["bash", "-c", f'exec "$0" "$1" "$2" {closed}', sys.executable, script,
                    out], check=True, timeout=120)
    report = ast.literal_eval(out.read_text())
    assert report["after"] == report["before"]
    assert report["servers"] == [[os.devnull] * 3]
