"""Derived results kept on disk: read back for the same content, computed afresh for any
change, and never an error of their own."""

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from optbench import memo
from optbench.analysis import convergence_table
from tests.test_analysis import _runs


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTBENCH_MEMO", str(tmp_path / "memo"))
    return tmp_path / "memo"


class Sources:
    """A stand-in for :func:`memo.code_digest`: the sources as imported, and as they are
    now on disk."""

    def __init__(self, imported: bytes, now: bytes):
        self.imported, self.__wrapped__ = imported, lambda: now

    def __call__(self) -> bytes:
        return self.imported


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


def test_edited_code_computes_afresh_and_keeps_nothing_computed_while_it_changed(
        monkeypatch):
    total, calls = counted()
    frame = pd.DataFrame({"x": [1.0]})
    total(frame, 1)
    monkeypatch.setattr(memo, "code_digest", Sources(b"edited", b"edited"))
    total(frame, 1)
    total(frame, 1)
    assert len(calls) == 2
    monkeypatch.setattr(memo, "code_digest", Sources(b"as imported", b"edited since"))
    total(frame, 1)  # the old code's result, which must not be filed as the new code's
    total(frame, 1)
    assert len(calls) == 4


def test_keys_tell_apart_what_python_tells_apart():
    def key(*args, **kwargs):
        return memo.key("f", args, kwargs)

    many = [f"c{i}" for i in range(200)]  # pandas' repr shortens a long list of categories
    swapped = [*many[:100], many[101], many[100], *many[102:]]

    distinct = [key(1, 23), key(12, 3), key(1), key(1.0), key(True), key([1]), key((1,)),
                key({1: 2}), key({"1": 2}), key(0.0), key(-0.0), key(a=1), key("a", 1),
                key(pd.DataFrame({"x": [1, "a"]})), key(pd.DataFrame({"x": ["1", "a"]})),
                key(pd.DataFrame({"x": ["a", "b"]})), key(pd.DataFrame({"x": ["a", "c"]})),
                key(pd.DataFrame({"x": [0.0]})), key(pd.DataFrame({"x": [-0.0]})),
                key(pd.DataFrame({"x": [1.0]})), key(pd.DataFrame({"y": [1.0]})),
                key(pd.DataFrame({"x": [1.0]}, index=[1])),
                key(pd.DataFrame({"x": pd.Categorical(["a"], categories=["a", "b"])})),
                key(pd.DataFrame({"x": pd.Categorical(["a"], categories=["b", "a"])})),
                key(pd.DataFrame({"x": pd.Categorical(["c0"], categories=many)})),
                key(pd.DataFrame({"x": pd.Categorical(["c0"], categories=swapped)})),
                key(pd.DataFrame({"x": pd.array([2**53, None], dtype="Int64")})),
                key(pd.DataFrame({"x": pd.array([2**53 + 1, None], dtype="Int64")})),
                key(pd.DataFrame({"x": [1.0]}).rename_axis("run"))]
    assert len(set(distinct)) == len(distinct)
    assert memo.key("f", (1,), {}) != memo.key("g", (1,), {})
    # pandas reads None and NaN alike as missing
    assert key(pd.DataFrame({"x": ["a", None]})) == key(pd.DataFrame({"x": ["a", np.nan]}))


def test_off_computes_every_time_and_keeps_nothing(private_cache, monkeypatch):
    monkeypatch.setenv("OPTBENCH_MEMO", "off")
    total, calls = counted()
    frame = pd.DataFrame({"x": [1.0]})
    assert total(frame, 1) == total(frame, 1) == 1.0
    assert len(calls) == 2 and not private_cache.exists()


def test_what_cannot_be_keyed_read_or_written_is_computed(private_cache, tmp_path,
                                                         monkeypatch):
    total, calls = counted()
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    assert total(frame, Fraction(2)) == 6.0 and total(frame, Fraction(2)) == 6.0  # unkeyed
    assert not private_cache.exists()
    with pytest.raises(TypeError):  # the function's own error, not the cache's
        total(frame, "two")
    assert total(frame, 1) == 3.0
    entries = list(private_cache.rglob("*.pkl"))
    assert len(entries) == 1
    entries[0].write_bytes(b"damaged")
    assert total(frame, 1) == 3.0
    monkeypatch.setenv("OPTBENCH_MEMO", str(tmp_path / "a-file"))
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
