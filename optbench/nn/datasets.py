"""Offline datasets as numpy arrays: MNIST-1D (generated), scikit-learn's shipped sets, and
the MNIST / Fashion-MNIST IDX files from a folder the user gives.

Nothing is downloaded: MNIST-1D is generated with the ``mnist1d`` package's own generator
(its default dataset arguments and seed: 5000 examples, 4000 train / 1000 test, length 40)
and cached under the user cache folder; the scikit-learn sets ship with scikit-learn.
Tabular inputs are standardized with statistics of the training split only.

Every dataset has a validation split, held out of the training examples with a fixed seed
(stratified by class where the classes allow it), so that settings are chosen on it and the
test split is only reported:

| dataset | train / validation / test |
|---|---|
| MNIST-1D | 3600 / 400 / 1000 (its 4000 training examples split; its test set untouched) |
| scikit-learn sets, digits | 60 / 20 / 20 % (the 20 % test split as before) |
| MNIST, Fashion-MNIST (IDX) | 55000 / 5000 / 10000 (1/12 of the training files held out) |
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from optbench.nn.errors import NNError
from optbench.paths import user_cache

SPLIT_SEED = 0  # the fixed seed of every split: the scikit-learn sets' test and validation
MNIST1D_VALID = 400  # MNIST-1D's validation examples, of its 4000 training ones
IDX_VALID_SHARE = 1 / 12  # MNIST's and Fashion-MNIST's: 5000 of 60000
TABULAR_VALID_SHARE = 0.25  # of the 80 % left after the test split: 60 / 20 / 20


@dataclass(frozen=True)
class Dataset:
    """Train, validation and test splits; ``outputs`` is the network's output width
    (classes, or 1)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    problem: Literal["classification", "binary", "regression"]
    outputs: int


def hold_out(x: np.ndarray, y: np.ndarray, size: float | int, stratify: bool = True
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_kept, x_held, y_kept, y_held)``: ``size`` examples (a count, or a share) held
    out with :data:`SPLIT_SEED`, stratified by ``y`` where every class can be split."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(x, y, test_size=size, random_state=SPLIT_SEED,
                                stratify=y if stratify else None)
    except ValueError:  # too few examples of a class (tiny files) to stratify
        return train_test_split(x, y, test_size=size, random_state=SPLIT_SEED)


def cache_folder() -> Path:
    """Where generated datasets are kept: ``$OPTBENCH_DATASET_CACHE``, else
    ``<user cache>/optbench/datasets``."""
    env = os.environ.get("OPTBENCH_DATASET_CACHE")
    if env:
        return Path(env)
    return user_cache("datasets")


def mnist1d() -> Dataset:
    """MNIST-1D (Greydanus 2020) from its procedural generator, cached as ``mnist1d.npz``."""
    path = cache_folder() / "mnist1d.npz"
    if not path.exists():
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError as error:  # pragma: no cover - depends on the install
            raise NNError("mnist1d tasks need the mnist1d package (a dependency of "
                          "optbench): pip install mnist1d") from error
        data = make_dataset(get_dataset_args())  # the generator; never its download path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, x=data["x"], y=data["y"], x_test=data["x_test"], y_test=data["y_test"])
        os.replace(tmp, path)
    with np.load(path) as f:
        x, x_valid, y, y_valid = hold_out(f["x"].astype(np.float32), f["y"].astype(np.int32),
                                          MNIST1D_VALID)
        return Dataset("mnist1d", x, y, x_valid, y_valid, f["x_test"].astype(np.float32),
                       f["y_test"].astype(np.int32), "classification", 10)


def _sklearn(loader: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn import datasets
    except ImportError as error:  # pragma: no cover - depends on the install
        raise NNError("scikit-learn datasets need scikit-learn (a dependency of "
                      "optbench): pip install scikit-learn") from error
    return getattr(datasets, loader)(return_X_y=True)


def _three_way(x: np.ndarray, y: np.ndarray, stratify: bool) -> tuple[np.ndarray, ...]:
    """``(x_train, x_valid, x_test, y_train, y_valid, y_test)``: 60 / 20 / 20 %, the test
    split first (20 %), then the validation split from the rest."""
    x_rest, x_test, y_rest, y_test = hold_out(x, y, 0.2, stratify)
    x_train, x_valid, y_train, y_valid = hold_out(x_rest, y_rest, TABULAR_VALID_SHARE,
                                                  stratify)
    return x_train, x_valid, x_test, y_train, y_valid, y_test


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Every split standardized with the training split's mean and standard deviation."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def tabular(name: str) -> Dataset:
    """scikit-learn's breast-cancer (binary), wine (3 classes) or diabetes (regression):
    60 / 20 / 20 % with a fixed seed (stratified for classes), standardized on train."""
    loader, problem = {"breast-cancer": ("load_breast_cancer", "binary"),
                       "wine": ("load_wine", "classification"),
                       "diabetes": ("load_diabetes", "regression")}[name]
    x, y = _sklearn(loader)
    x_train, x_valid, x_test, y_train, y_valid, y_test = _three_way(
        x, y, stratify=problem != "regression")
    xs = _standardize(x_train, x_valid, x_test)
    if problem == "regression":
        ys = [a[:, 0] for a in _standardize(*(a[:, None] for a in (y_train, y_valid, y_test)))]
        outputs = 1
    else:
        ys = [a.astype(np.int32) for a in (y_train, y_valid, y_test)]
        outputs = 1 if problem == "binary" else int(y.max()) + 1
    return Dataset(name, xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], problem, outputs)


def digits() -> Dataset:
    """scikit-learn's 8×8 digits as ``(8, 8, 1)`` images in [0, 1], split 60 / 20 / 20 %
    with a fixed seed, stratified."""
    x, y = _sklearn("load_digits")
    x = (x.reshape(-1, 8, 8, 1) / 16.0).astype(np.float32)
    x_train, x_valid, x_test, y_train, y_valid, y_test = _three_way(x, y.astype(np.int32),
                                                                    stratify=True)
    return Dataset("digits", x_train, y_train, x_valid, y_valid, x_test, y_test,
                   "classification", 10)


# --------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)
# --------------------------------------------------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
              0x0E: ">f8"}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as an array; :class:`NNError` naming the path if it
    is malformed."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise NNError(f"{path}: cannot be read ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise NNError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise NNError(f"{path}: not an IDX file (truncated header)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)) * dtype.itemsize:
        raise NNError(f"{path}: IDX header says shape {shape} of {dtype}, but the file holds "
                      f"{len(body)} data bytes")
    return np.frombuffer(body, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def idx_images(data_dir: str | Path, name: str) -> Dataset:
    """MNIST-style IDX files from ``data_dir`` (plain or ``.gz``) as ``(28, 28, 1)`` images
    in [0, 1]: the standard 60000 / 10000 split."""
    folder = Path(data_dir)
    found = []
    for stem in IDX_FILES:
        candidates = [folder / stem, folder / f"{stem}.gz"]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            raise NNError(f"{folder}: {name} needs the IDX files {', '.join(IDX_FILES)} "
                          f"(plain or .gz); missing {stem}")
        found.append(read_idx(hit))
    x, y, x_test, y_test = found
    if x.ndim != 3 or len(x) != len(y) or x_test.ndim != 3 or len(x_test) != len(y_test):
        raise NNError(f"{folder}: {name} IDX files have inconsistent shapes "
                      f"{x.shape}, {y.shape}, {x_test.shape}, {y_test.shape}")
    def images(a):
        return (a[..., None] / 255.0).astype(np.float32)
    x_train, x_valid, y_train, y_valid = hold_out(images(x), y.astype(np.int32),
                                                  max(1, round(len(x) * IDX_VALID_SHARE)))
    return Dataset(name, x_train, y_train, x_valid, y_valid, images(x_test),
                   y_test.astype(np.int32), "classification", int(max(y.max(), 9)) + 1)
