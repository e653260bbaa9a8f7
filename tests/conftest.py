"""Keep the tests' caches out of the user's home, and share them between the suite's
workers: generated datasets, and compiled programs (JAX's persistent cache, so that a
program compiled by one test, worker or subprocess is loaded by the next). Derived results
are not kept (``OPTBENCH_MEMO=off``): every test computes its tables, whatever another test
changed (tests/test_memo.py turns it on). Every process has one CPU device, as JAX's default
(the suite's workers share the cores already; tests/engine/test_distributed.py checks the
command's own count)."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_shared_caches(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # all workers'
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(shared / "cache"))
    patch.setenv("OPTBENCH_COMPILE_CACHE", str(shared / "cache" / "xla"))
    patch.setenv("OPTBENCH_MEMO", "off")
    patch.setenv("JAX_NUM_CPU_DEVICES", "1")
    yield
    patch.undo()
