"""Offline datasets as numpy arrays: MNIST-1D (generated), scikit-learn's shipped sets, the
MNIST / Fashion-MNIST IDX files and the CIFAR-10 / CIFAR-100 python pickles from a folder
the user gives.

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
| CIFAR-10, CIFAR-100 (python) | 45000 / 5000 / 10000 (1/10 of the training files held out) |
"""

from __future__ import annotations

import contextlib
import gzip
import os
import pickle
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
CIFAR_VALID_SHARE = 1 / 10  # CIFAR's: 5000 of 50000
# where each dataset read from a user's folder is published
SOURCES = {"mnist": "http://yann.lecun.com/exdb/mnist/",
           "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist",
           "cifar10": "https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-10 python version)",
           "cifar100": "https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-100 python version)"}
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
    kept, held = held_out_indices(y, size, stratify)
    return x[kept], x[held], y[kept], y[held]


def held_out_indices(y: np.ndarray, size: float | int, stratify: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The indices :func:`hold_out` keeps and holds out (in its order)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    try:
        kept, held = train_test_split(index, test_size=size, random_state=SPLIT_SEED,
                                      stratify=y if stratify else None)
    except ValueError:  # too few examples of a class (tiny files) to stratify
        kept, held = train_test_split(index, test_size=size, random_state=SPLIT_SEED)
    return kept, held


def cache_folder() -> Path:
    """Where generated datasets are kept: ``$OPTBENCH_DATASET_CACHE``, else
    ``<user cache>/optbench/datasets``."""
    env = os.environ.get("OPTBENCH_DATASET_CACHE")
    if env:
        return Path(env)
    return user_cache("datasets")


def mnist1d() -> Dataset:
    """MNIST-1D (Greydanus 2020) from its procedural generator, cached as ``mnist1d.npz``
    (its validation split beside it)."""
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
        x, y = f["x"].astype(np.float32), f["y"].astype(np.int32)
        x_test, y_test = f["x_test"].astype(np.float32), f["y_test"].astype(np.int32)
    kept, held = _mnist1d_split(y)
    return Dataset("mnist1d", x[kept], y[kept], x[held], y[held], x_test, y_test,
                   "classification", 10)


def _mnist1d_split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D's :func:`held_out_indices`, kept in the cache folder under a digest of all
    they depend on (the labels, the seed, the size, scikit-learn's version and that
    function's source): computing them imports scikit-learn, 0.9 s of every process that
    trains on MNIST-1D."""
    import hashlib
    import inspect
    from importlib.metadata import version

    try:
        source = inspect.getsource(held_out_indices)
    except OSError:  # no source to read (a frozen install): nothing to key a kept split on
        return held_out_indices(y, MNIST1D_VALID)
    depends = f"{SPLIT_SEED} {MNIST1D_VALID} {version('scikit-learn')} {source}".encode()
    digest = hashlib.sha256(depends + y.astype(np.int64).tobytes()).hexdigest()[:16]
    path = cache_folder() / f"mnist1d-split-{digest}.npz"
    try:
        with np.load(path) as f:
            return f["kept"], f["held"]
    except Exception:  # absent or damaged: computed (and kept) again
        pass
    kept, held = held_out_indices(y, MNIST1D_VALID)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, kept=kept, held=held)
        os.replace(tmp, path)
    except OSError:  # a cache only: an unwritable folder computes them every time
        with contextlib.suppress(OSError):
            tmp.unlink()
    return kept, held


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


def _idx_path(folder: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``folder``, plain or gzipped, if there is one."""
    return next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)


def required_files(name: str) -> tuple[str, ...]:
    """The files (relative to ``data_dir``) that the dataset ``name`` is read from."""
    if name in CIFAR:
        folder, train, test, _ = CIFAR[name]
        return tuple(f"{folder}/{f}" for f in (*train, test))
    return IDX_FILES


def missing_file(folder: str | Path, name: str) -> str | None:
    """The first file of :func:`required_files` not in ``folder`` (an IDX file may be
    gzipped), or None."""
    folder = Path(folder).expanduser()
    for file in required_files(name):
        if not ((folder / file).is_file() or (name not in CIFAR and _idx_path(folder, file))):
            return file
    return None


def files_wanted(name: str) -> str:
    """The files of ``name`` in words, with where the dataset is published."""
    files = ", ".join(required_files(name))
    gz = "" if name in CIFAR else " (plain or .gz)"
    return f"{files}{gz}, from {SOURCES[name]}"


def check_files(folder: str | Path, name: str) -> None:
    """:class:`NNError` in one line naming the first missing file and where the dataset
    is published."""
    missing = missing_file(folder, name)
    if missing:
        raise NNError(f"{folder}: {name} needs {files_wanted(name)}; missing {missing}")


def idx_images(data_dir: str | Path, name: str) -> Dataset:
    """MNIST-style IDX files from ``data_dir`` (plain or ``.gz``) as ``(28, 28, 1)`` images
    in [0, 1]: the standard 60000 / 10000 split."""
    folder = Path(data_dir)
    check_files(folder, name)
    x, y, x_test, y_test = (read_idx(_idx_path(folder, stem)) for stem in IDX_FILES)
    if x.ndim != 3 or len(x) != len(y) or x_test.ndim != 3 or len(x_test) != len(y_test):
        raise NNError(f"{folder}: {name} IDX files have inconsistent shapes "
                      f"{x.shape}, {y.shape}, {x_test.shape}, {y_test.shape}")
    def images(a):
        return (a[..., None] / 255.0).astype(np.float32)
    x_train, x_valid, y_train, y_valid = hold_out(images(x), y.astype(np.int32),
                                                  max(1, round(len(x) * IDX_VALID_SHARE)))
    return Dataset(name, x_train, y_train, x_valid, y_valid, images(x_test),
                   y_test.astype(np.int32), "classification", int(max(y.max(), 9)) + 1)


# --------------------------------------------------------------------------------------
# CIFAR python pickles
# --------------------------------------------------------------------------------------

# name: (folder, training files, test file, label key), as the python version ships them
CIFAR = {"cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                     "test_batch", b"labels"),
         "cifar100": ("cifar-100-python", ("train",), "test", b"fine_labels")}
_CIFAR_PIXELS = 3 * 32 * 32


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers and nothing else, so that
    a file that is not a CIFAR batch cannot run code."""

    def find_class(self, module: str, name: str):
        numpy = module.split(".")[0] == "numpy" and name in ("_reconstruct", "ndarray",
                                                             "dtype", "scalar", "_frombuffer")
        if numpy or (module, name) == ("_codecs", "encode"):  # protocol 2 spells bytes so
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR batch")


def read_cifar_batch(path: str | Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch (a pickled dict with ``b"data"``, N x 3072 bytes, channels
    first, and ``label_key``) as ``(N, 32, 32, 3)`` uint8 images and int32 labels;
    :class:`NNError` naming the path if it is truncated or malformed."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int32)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError,
            IndexError, AttributeError) as error:
        reason = f"{type(error).__name__}: {error}".replace("\n", " ")
        raise NNError(f"{path}: not a complete CIFAR python batch with b'data' and "
                      f"{label_key!r} ({reason})") from None
    if data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS or len(data) != len(labels):
        raise NNError(f"{path}: a CIFAR batch holds N x {_CIFAR_PIXELS} pixels and N labels; "
                      f"found data {data.shape}, {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def cifar(data_dir: str | Path, name: str) -> Dataset:
    """CIFAR-10 (``cifar-10-batches-py/``) or CIFAR-100 (``cifar-100-python/``, its 100
    fine labels) from ``data_dir``: ``(32, 32, 3)`` float32 pixels 0-255, as DeepOBS feeds
    them (its per-image standardization is the model's); 1/10 of the training images held
    out for validation, stratified, with :data:`SPLIT_SEED`."""
    folder = Path(data_dir).expanduser()
    check_files(folder, name)
    sub, train, test, key = CIFAR[name]
    parts = [read_cifar_batch(folder / sub / f, key) for f in train]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    x_test, y_test = read_cifar_batch(folder / sub / test, key)
    x_train, x_valid, y_train, y_valid = hold_out(
        x, y, max(1, round(len(x) * CIFAR_VALID_SHARE)))
    outputs = 100 if name == "cifar100" else 10
    for file, labels in ((train[0], y), (test, y_test)):
        if labels.min() < 0 or labels.max() >= outputs:
            raise NNError(f"{folder / sub / file}: {name} labels are 0 ... {outputs - 1}; "
                          f"found {labels.min()} ... {labels.max()}")
    return Dataset(name, *(a.astype(np.float32) if a.dtype == np.uint8 else a for a in
                           (x_train, y_train, x_valid, y_valid, x_test, y_test)),
                   "classification", outputs)
