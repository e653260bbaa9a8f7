"""Offline datasets: the IDX reader, the scikit-learn splits, MNIST-1D's generator."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from optbench.nn import datasets
from optbench.nn.errors import NNError

# the IDX format's type codes (LeCun's MNIST page); multi-byte values are big-endian
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def write_idx(path, array):
    """An IDX file of ``array``, written independently of the reader under test."""
    array = np.asarray(array)
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = bytes([0, 0, IDX_CODES[big], array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(big).tobytes())


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
def test_idx_round_trip(tmp_path, dtype):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array)
    back = datasets.read_idx(tmp_path / "a")
    assert back.dtype == np.dtype(dtype) and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    (tmp_path / "a.gz").write_bytes(gzip.compress((tmp_path / "a").read_bytes()))
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "a.gz"), array)


def test_malformed_idx_names_the_path(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(NNError, match=f"{bad}: not an IDX file"):
        datasets.read_idx(bad)
    write_idx(tmp_path / "short", np.zeros((4, 5), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(NNError, match=r"short: IDX header says shape \(4, 5\)"):
        datasets.read_idx(tmp_path / "short")


def write_tiny_mnist(folder, n_train=12, n_test=6):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte",
                           rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte",
                           (np.arange(n) % 10).astype(np.uint8))
    return folder


def test_idx_images_reads_a_folder_and_names_missing_files(tmp_path):
    data = datasets.idx_images(write_tiny_mnist(tmp_path / "mnist"), "mnist")
    assert data.x_train.shape == (11, 28, 28, 1) and data.x_valid.shape == (1, 28, 28, 1)
    assert data.x_test.shape == (6, 28, 28, 1)  # 1/12 of the training files held out
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(NNError, match="train-images-idx3-ubyte.*missing t10k-labels-idx1-ubyte"):
        datasets.idx_images(tmp_path / "mnist", "mnist")


@pytest.mark.parametrize("name,n,features", [("wine", 178, 13), ("breast-cancer", 569, 30),
                                             ("diabetes", 442, 10)])
def test_tabular_split_is_60_20_20_and_standardized_on_train(name, n, features):
    data = datasets.tabular(name)
    assert len(data.x_train) + len(data.x_valid) + len(data.x_test) == n
    assert abs(len(data.x_test) - 0.2 * n) <= 1 and abs(len(data.x_valid) - 0.2 * n) <= 1
    assert data.x_train.shape[1] == features
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1, atol=1e-4)
    for held_out in (data.x_valid, data.x_test):  # their statistics are not used
        assert not np.allclose(held_out.mean(axis=0), 0, atol=1e-3)
    again = datasets.tabular(name)
    np.testing.assert_array_equal(again.x_test, data.x_test)  # a fixed split
    np.testing.assert_array_equal(again.x_valid, data.x_valid)
    rows = {tuple(r) for r in np.concatenate([data.x_train, data.x_valid, data.x_test])}
    assert len(rows) == n  # disjoint splits
    if name != "diabetes":  # stratified: each class in proportion
        for y in (data.y_train, data.y_valid, data.y_test):
            shares = np.bincount(y) / len(y)
            np.testing.assert_allclose(shares, np.bincount(data.y_train) / len(data.y_train),
                                       atol=0.05)


def test_digits_are_images_in_unit_range():
    data = datasets.digits()
    assert data.x_train.shape[1:] == (8, 8, 1) and len(data.x_test) == 360
    assert len(data.x_valid) == 360 and len(data.x_train) == 1077
    assert data.x_train.min() >= 0 and data.x_train.max() <= 1


def test_mnist1d_is_generated_offline_and_cached(tmp_path, monkeypatch):
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("MNIST-1D must not be downloaded")

    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setenv("OPTBENCH_DATASET_CACHE", str(tmp_path))
    data = datasets.mnist1d()
    assert data.x_train.shape == (3600, 40) and data.x_valid.shape == (400, 40)
    assert data.x_test.shape == (1000, 40)  # the generator's test set, untouched
    assert set(np.unique(data.y_train)) == set(range(10))
    assert (tmp_path / "mnist1d.npz").exists()
    np.testing.assert_array_equal(datasets.mnist1d().x_test, data.x_test)


def test_mnist1d_keeps_its_validation_split_and_recomputes_a_stale_or_damaged_one(
        tmp_path, monkeypatch):
    """The split is hold_out's, kept beside the data so that a later process need not import
    scikit-learn; a damaged copy is computed again, and another seed gets its own."""
    monkeypatch.setenv("OPTBENCH_DATASET_CACHE", str(tmp_path))
    data = datasets.mnist1d()
    with np.load(tmp_path / "mnist1d.npz") as f:
        x, y = f["x"].astype(np.float32), f["y"].astype(np.int32)
    expected = datasets.hold_out(x, y, datasets.MNIST1D_VALID)
    for got, want in zip((data.x_train, data.x_valid, data.y_train, data.y_valid), expected,
                         strict=True):
        np.testing.assert_array_equal(got, want)
    (kept,) = tmp_path.glob("mnist1d-split-*.npz")
    code = ("import sys\nfrom optbench.nn import datasets\ndatasets.mnist1d()\n"
            "print('sklearn' in sys.modules)")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "OPTBENCH_DATASET_CACHE": str(tmp_path)})
    assert fresh.stdout.strip() == "False"  # read back, not computed
    kept.write_bytes(b"damaged")
    np.testing.assert_array_equal(datasets.mnist1d().x_valid, data.x_valid)
    monkeypatch.setattr(datasets, "SPLIT_SEED", 1)
    other = datasets.mnist1d()
    assert len(list(tmp_path.glob("mnist1d-split-*.npz"))) == 2
    np.testing.assert_array_equal(other.x_valid, datasets.hold_out(x, y, 400)[1])
    assert not np.array_equal(other.x_valid, data.x_valid)
