"""Derived results kept on disk: read back for the same content, computed afresh for any
change, and never an error of their own."""

import numpy as np
import pandas as pd
import pytest

from optbench import memo
from optbench.analysis import convergence_table
from tests.test_analysis import _runs


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "optbench" / "memo"


def counted():
    """A memoized function that counts its calls."""
    calls = []

    @memo.on_disk
    def total(frame, scale):
        calls.append(1)
        return frame["x"].sum() * scale

    return total, calls


def test_the_same_content_is_computed_once_and_any_change_afresh():
    total, calls = counted()
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    assert total(frame, 2) == 12.0 and total(frame.copy(), 2) == 12.0
    assert len(calls) == 1
    changed = frame.assign(x=[1.0, 2.0, 4.0])
    assert total(changed, 2) == 14.0 and total(frame, 3) == 18.0
    renamed = frame.rename(columns={"x": "y"}).assign(x=frame["x"])
    assert total(renamed, 2) == 12.0
    assert len(calls) == 4


def test_edited_code_computes_afresh(monkeypatch):
    total, calls = counted()
    frame = pd.DataFrame({"x": [1.0]})
    total(frame, 1)
    monkeypatch.setattr(memo, "code_digest", lambda libraries: b"edited")
    total(frame, 1)
    assert len(calls) == 2


def test_what_cannot_be_keyed_read_or_written_is_computed(private_cache, tmp_path,
                                                         monkeypatch):
    total, calls = counted()
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    assert total(frame, np.int64(2)) == 6.0 and total(frame, np.int64(2)) == 6.0  # unkeyed
    assert not private_cache.exists()
    with pytest.raises(TypeError):  # the function's own error, not the cache's
        total(frame, "two")
    assert total(frame, 1) == 3.0
    entries = list(private_cache.rglob("*.pkl"))
    assert len(entries) == 1
    entries[0].write_bytes(b"damaged")
    assert total(frame, 1) == 3.0
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("not a folder")
    assert total(frame, 1) == 3.0 and total(frame, 1) == 3.0
    assert len(calls) == 7
    assert not list(tmp_path.rglob("*.tmp"))


def test_only_the_newest_entries_are_kept(private_cache, monkeypatch):
    monkeypatch.setattr(memo, "KEEP", 3)
    total, calls = counted()
    frame = pd.DataFrame({"x": [1.0]})
    for scale in range(5):
        total(frame, scale)
    assert len(list(private_cache.rglob("*.pkl"))) == 3
    total(frame, 4)  # among the newest: read back
    assert len(calls) == 5
    total(frame, 0)  # dropped: computed again
    assert len(calls) == 6


def test_a_convergence_table_read_back_equals_one_computed():
    runs = _runs([(0, 0.1, 1e-3, 1e-3, 5, np.nan), (0, 0.1, 2e-3, 2e-3, 6, np.nan),
                  (1, 0.3, 1e-5, 1e-5, 3, np.nan), (1, 0.3, 3e-5, 1e-5, 4, np.nan)])
    hyperparameters = {"gd": {"learning_rate": 0.1}}
    computed = convergence_table.__wrapped__(runs, [0.1, 1e-8], 100, hyperparameters)
    for _ in range(2):  # computed and kept, then read back
        table = convergence_table(runs, [0.1, 1e-8], 100, hyperparameters)
        pd.testing.assert_frame_equal(table, computed)
        assert table.attrs == computed.attrs
    worse = runs.assign(final=runs["final"].where(runs["config"] == 0, 0.5))
    assert convergence_table(worse, [0.1, 1e-8], 100, hyperparameters)[
        "setting"].iloc[0] == "learning_rate=0.1"
