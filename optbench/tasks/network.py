"""Neural-network tasks: a dataset, a model from :mod:`optbench.nn` and its loss.

Kinds (one ``[[tasks]]`` table each; the kind picks the data and the model family):

| kind | data (train / valid / test) | model | loss / primary metric |
|---|---|---|---|
| mnist1d-mlp, mnist1d-cnn | MNIST-1D, 3600/400/1000 | MLP; 1-D CNN | softmax CE / valid_accuracy |
| digits-cnn | scikit-learn digits 8×8, 60/20/20 % | CNN | softmax CE / valid_accuracy |
| breast-cancer-ann | scikit-learn, 60/20/20 % | MLP | sigmoid BCE / valid_accuracy |
| wine-ann | scikit-learn, 3 classes, 60/20/20 % | MLP | softmax CE / valid_accuracy |
| diabetes-ann | scikit-learn diabetes, 60/20/20 % | MLP | MSE / valid_r2 |
| (fashion-)mnist-cnn | IDX in ``data_dir``, 55000/5000/10000 | CNN | softmax CE / valid_accuracy |

The primary metric, which chooses the best setting and scores targets, divergence and ERT,
is the validation split's; the test split's (``test_accuracy``, ``test_r2``) is recorded
beside it and reported at the setting chosen on validation (see
:mod:`optbench.nn.datasets` for the splits).

Batches: "full batch" (GD) uses the whole training split, "one sample" (SGD) one example,
anything else ``batch_size`` examples, drawn uniformly with replacement from the key of the
step (``fold_in(run key, step)``), which also draws the dropout masks and the augmentation.
``clip_global_norm`` clips each gradient to that global norm before the optimizer sees it:
the same as chaining ``optax.clip_by_global_norm`` in front of it (the clip is stateless).

Record points evaluate, on the full splits: train_loss, valid_loss, valid_accuracy (or
valid_r2 for regression), test_loss, test_accuracy (or test_r2), the global gradient norm
of the train loss and each weighted layer's (``grad_norm_layer1`` is the first dense or conv
layer). Large splits are evaluated in chunks (``lax.map``) with rematerialization, so
memory does not grow with the split.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optbench import validate
from optbench.nn import activations, augment, datasets, functional, initializers, losses, models
from optbench.nn.errors import NNError
from optbench.tasks import registry
from optbench.tasks.base import FromConfig, examples_per_gradient
from optbench.tasks.curvature import Curvature, curvature_of
from optbench.validate import ConfigError

EVAL_ELEMENTS = 2**22  # activations per run and chunk when evaluating a split
# knobs that are program arguments, not part of the compiled network (whether there is
# dropout or clipping at all is): a sweep over them compiles once
DATA_KNOBS = ("dropout", "weight_scale", "clip_global_norm")
STAND_IN_DROPOUT = 0.5  # the compiled model's dropout rate; the task's own is passed in


@dataclass(frozen=True)
class KindSpec:
    """What a kind fixes: its dataset, model family, input shape and default knobs."""

    dataset: str
    model: str  # "mlp" or "cnn"
    input_shape: tuple[int, ...]
    defaults: Mapping[str, Any]
    description: str
    outputs: int = 10  # classes, or 1 (binary, regression)


_MLP = {"depth": 2, "width": 100, "activation": "relu", "initializer": "he_normal"}
_IMAGE_CNN = {"channels": [32, 64], "kernel": 3, "stride": 1, "padding": "SAME", "pool": 2,
              "width": 128, "activation": "relu", "initializer": "he_normal",
              "batch_size": 128}
KINDS: dict[str, KindSpec] = {
    # a plain 40-100-100-10 MLP (the MNIST-1D paper's MLP also adds a residual connection
    # around its second hidden layer and uses torch's bias init); the paper's CNN: three
    # stride-2 convs of 25 channels (kernels 5, 3, 3, padding 1) and a linear layer; torch's
    # default kernel init, batch 100
    "mnist1d-mlp": KindSpec("mnist1d", "mlp", (40,), {**_MLP, "initializer": "uniform",
                                                      "batch_size": 100},
                            "MNIST-1D (generated offline), MLP"),
    "mnist1d-cnn": KindSpec("mnist1d", "cnn", (40, 1), {
        "channels": [25, 25, 25], "kernel": [5, 3, 3], "stride": 2, "padding": 1, "pool": 1,
        "width": 0, "activation": "relu", "initializer": "uniform", "batch_size": 100},
        "MNIST-1D (generated offline), 1-D CNN"),
    "digits-cnn": KindSpec("digits", "cnn", (8, 8, 1), {
        "channels": [16, 32], "kernel": 3, "stride": 1, "padding": "SAME", "pool": 2,
        "width": 64, "activation": "relu", "initializer": "he_normal", "batch_size": 64},
        "scikit-learn 8x8 digits, conv-pool-dense CNN"),
    "breast-cancer-ann": KindSpec("breast-cancer", "mlp", (30,),
                                  {**_MLP, "width": 32, "batch_size": 32},
                                  "scikit-learn breast cancer (binary), MLP", 1),
    "wine-ann": KindSpec("wine", "mlp", (13,), {**_MLP, "width": 32, "batch_size": 16},
                         "scikit-learn wine (3 classes), MLP", 3),
    "diabetes-ann": KindSpec("diabetes", "mlp", (10,), {**_MLP, "width": 32,
                                                        "batch_size": 32},
                             "scikit-learn diabetes (regression), MLP", 1),
    "mnist-cnn": KindSpec("mnist", "cnn", (28, 28, 1), _IMAGE_CNN,
                          "MNIST from IDX files in data_dir, 2-D CNN"),
    "fashion-mnist-cnn": KindSpec("fashion-mnist", "cnn", (28, 28, 1), _IMAGE_CNN,
                                  "Fashion-MNIST from IDX files in data_dir, 2-D CNN"),
}
_IMAGES = ("digits", "mnist", "fashion-mnist")


@dataclass(frozen=True)
class NetworkConfig:
    """One ``[[tasks]]`` table of a network kind; unset knobs take the kind's defaults."""

    kind: str
    name: str
    activation: str
    initializer: str
    batch_size: int
    width: int
    depth: int = 2  # hidden layers (mlp)
    channels: tuple[int, ...] = ()  # (cnn)
    kernel: tuple[int, ...] = ()  # one per conv layer (cnn)
    stride: int = 1
    padding: str | int = "SAME"
    pool: int = 1  # max-pool window after each conv; 1 = none
    dropout: float = 0.0
    weight_scale: float = 1.0
    augment: bool = False  # image kinds: flip, shift, zoom, rotation per batch
    clip_global_norm: float = 0.0  # 0: no clipping
    train_size: int = 0  # use only the first n training examples; 0: all
    sharpness: bool = False  # record the training loss's top Hessian eigenvalue
    hessian_trace: bool = False  # record Hutchinson's estimate of its Hessian's trace
    data_dir: str = ""  # mnist-cnn, fashion-mnist-cnn

    @property
    def n_starts(self) -> int:
        return 1

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    def to_dict(self) -> dict:
        """The table as ``parse`` reads it back: the kind and its own fields, all spelled."""
        data = asdict(self)
        data["channels"], data["kernel"] = list(self.channels), list(self.kernel)
        return {"kind": self.kind, **{k: data[k] for k in sorted(_fields_of(self.spec))}}

    def model(self, outputs: int) -> models.Sequential:
        """The network, its shapes checked (an :class:`NNError` if a layer does not fit)."""
        common = {"activation": self.activation, "dropout": self.dropout,
                  "initializer": self.initializer, "weight_scale": self.weight_scale}
        if self.spec.model == "mlp":
            return models.mlp(self.spec.input_shape, outputs, self.depth, self.width, **common)
        return models.cnn(self.spec.input_shape, outputs, self.channels, self.kernel,
                          self.stride, self.padding, self.pool, self.width, **common)


# the defaults of the knobs that no kind sets: the dataclass's, spelled once above
_FIELD_DEFAULTS = {f.name: f.default for f in fields(NetworkConfig) if f.default is not MISSING}
_COMMON = {"name", "activation", "initializer", "batch_size", "width", "dropout",
           "weight_scale", "clip_global_norm", "train_size", "sharpness",
           "hessian_trace"}
_MLP_FIELDS = {"depth"}
_CNN_FIELDS = {"channels", "kernel", "stride", "padding", "pool"}


def _fields_of(spec: KindSpec) -> set[str]:
    """The config fields a kind accepts."""
    allowed = _COMMON | (_MLP_FIELDS if spec.model == "mlp" else _CNN_FIELDS)
    if spec.dataset in _IMAGES:
        allowed |= {"augment"}
    if spec.dataset in ("mnist", "fashion-mnist"):
        allowed |= {"data_dir"}
    return allowed


def _defaults(kind: str) -> dict[str, Any]:
    """The default of each field: the kind's own, else the dataclass's; the name: the kind."""
    return {**_FIELD_DEFAULTS, **KINDS[kind].defaults, "name": kind}


def field_defaults(kind: str) -> dict[str, Any]:
    """Each field of ``kind``, in the config's order, with its default (``optbench list
    tasks KIND``); ``data_dir`` has none."""
    allowed = _fields_of(KINDS[kind])
    return registry.described([f.name for f in fields(NetworkConfig) if f.name in allowed],
                              _defaults(kind),
                              {"data_dir": "required: a folder holding the IDX files"})


def parse(kind: str, raw: Mapping[str, Any], path: str) -> NetworkConfig:
    spec = KINDS[kind]
    allowed = _fields_of(spec)
    validate.table(raw, path, allowed)
    get = {**_defaults(kind), **raw}.get
    fields: dict[str, Any] = {
        "kind": kind,
        "name": validate.name(get("name"), f"{path}.name"),
        "activation": validate.choice(get("activation"), f"{path}.activation",
                                      activations.NAMES),
        "initializer": validate.choice(get("initializer"), f"{path}.initializer",
                                       initializers.NAMES),
        "batch_size": validate.integer(get("batch_size"), f"{path}.batch_size", 1),
        "width": validate.integer(get("width"), f"{path}.width",
                                  0 if spec.model == "cnn" else 1),
        "dropout": validate.number(get("dropout"), f"{path}.dropout", 0.0, high=0.95),
        "weight_scale": validate.number(get("weight_scale"), f"{path}.weight_scale",
                                        0.0, low_open=True),
        "clip_global_norm": validate.number(get("clip_global_norm"),
                                            f"{path}.clip_global_norm", 0.0),
        "train_size": validate.integer(get("train_size"), f"{path}.train_size", 0),
        "augment": validate.boolean(get("augment"), f"{path}.augment"),
        "sharpness": validate.boolean(get("sharpness"), f"{path}.sharpness"),
        "hessian_trace": validate.boolean(get("hessian_trace"), f"{path}.hessian_trace"),
    }
    if spec.model == "mlp":
        fields["depth"] = validate.integer(get("depth"), f"{path}.depth", 0, 1000)
    else:
        fields.update(_cnn_fields(get, path))
    if "data_dir" in allowed:
        fields["data_dir"] = data_dir(raw.get("data_dir"), f"{path}.data_dir", spec.dataset)
    check_sizes(fields, spec.dataset, path)
    config = NetworkConfig(**fields)
    try:
        config.model(spec.outputs)
    except NNError as error:
        raise ConfigError(path, kind, f"an architecture that fits its input ({error})"
                          ) from None
    return config


def check_sizes(fields: Mapping[str, Any], dataset: str, path: str) -> None:
    """``train_size`` within the training split, and ``batch_size`` within what it uses."""
    available = len(load_dataset(dataset, fields.get("data_dir", "")).x_train)
    if fields["train_size"] > available:
        raise ConfigError(f"{path}.train_size", fields["train_size"],
                          f"an integer in [0, {available}] (the training examples of "
                          f"{dataset}; 0: all)")
    used = fields["train_size"] or available
    if fields["batch_size"] > used:
        raise ConfigError(f"{path}.batch_size", fields["batch_size"],
                          f"an integer in [1, {used}] (the training examples used)")


def _cnn_fields(get, path: str) -> dict:
    channels = get("channels")
    if not (isinstance(channels, list) and channels):
        raise ConfigError(f"{path}.channels", channels, "a non-empty list of integers >= 1")
    channels = tuple(validate.integer(c, f"{path}.channels[{i}]", 1)
                     for i, c in enumerate(channels))
    kernel = get("kernel")
    kernels = kernel if isinstance(kernel, list) else [kernel] * len(channels)
    if len(kernels) != len(channels):
        raise ConfigError(f"{path}.kernel", kernel,
                          f"an integer or a list of {len(channels)} (one per channel entry)")
    padding = get("padding")
    if not (padding in ("VALID", "SAME") or (isinstance(padding, int)
                                             and not isinstance(padding, bool) and padding >= 0)):
        raise ConfigError(f"{path}.padding", padding, '"VALID", "SAME" or an integer >= 0')
    return {"channels": channels,
            "kernel": tuple(validate.integer(k, f"{path}.kernel[{i}]", 1)
                            for i, k in enumerate(kernels)),
            "stride": validate.integer(get("stride"), f"{path}.stride", 1),
            "padding": padding,
            "pool": validate.integer(get("pool"), f"{path}.pool", 1)}


def data_dir(raw: Any, path: str, dataset: str) -> str:
    """The folder of a ``data_dir`` field, holding every file of ``dataset``; a
    :class:`ConfigError` naming the first missing file and where the dataset is published."""
    wanted = f"a folder holding {datasets.files_wanted(dataset)}"
    if not isinstance(raw, str) or not raw:
        raise ConfigError(path, raw, wanted)
    missing = datasets.missing_file(raw, dataset)
    if missing:
        raise ConfigError(path, raw, f"{wanted}; missing {missing}")
    return str(Path(raw).expanduser())


@functools.cache
def load_dataset(name: str, data_dir: str = "") -> datasets.Dataset:
    """The dataset ``name`` (from ``data_dir`` where it is read from files), read once."""
    if name == "mnist1d":
        return datasets.mnist1d()
    if name == "digits":
        return datasets.digits()
    if name in ("mnist", "fashion-mnist"):
        return datasets.idx_images(data_dir, name)
    if name in datasets.CIFAR:
        return datasets.cifar(data_dir, name)
    return datasets.tabular(name)


# --------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------


def _quality(problem: str) -> str:
    """The score a problem is judged by: R² for regression, else accuracy."""
    return "r2" if problem == "regression" else "accuracy"


def _metric(problem: str) -> str:
    """The primary metric: the validation split's score (settings are chosen on it; the
    test split's is only reported)."""
    return f"valid_{_quality(problem)}"


def chunked_means(sums, arrays: tuple[jax.Array, ...], chunk: int) -> tuple[jax.Array, ...]:
    """The means over the examples (the leading axis of ``arrays``) of what
    ``sums(*arrays, mask)`` adds up, a tuple of sums over the examples where ``mask`` holds:
    in one batch if there are at most ``chunk`` examples, else in chunks (``lax.map``), each
    rematerialized so that a gradient through it stays small."""
    n = arrays[0].shape[0]
    if n <= chunk:
        return tuple(total / n for total in sums(*arrays, jnp.ones(n, bool)))
    pad = -n % chunk
    def chunks(a):
        a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
        return a.reshape(-1, chunk, *a.shape[1:])
    totals = jax.lax.map(jax.checkpoint(lambda c: sums(*c)),
                         (*map(chunks, arrays), chunks(jnp.ones(n, bool))))
    return tuple(jnp.sum(total) / n for total in totals)


@dataclass(frozen=True)
class NetworkProgram:
    """What a network's compiled program reads, and nothing else (see
    :class:`~optbench.tasks.base.Program`): the model (with stand-ins for DATA_KNOBS), the
    kind of problem, the batch drawn per step and the static switches."""

    per_step_metric: ClassVar[bool] = False
    maximize: ClassVar[bool] = True
    model: models.Sequential
    problem: str  # "classification", "binary" or "regression"
    batch: int  # examples per gradient; 0: the whole training split
    random: bool  # draws per step: rows, dropout masks or augmentation
    augment: bool
    flip: bool  # augmentation mirrors images (clothes, not digits)
    clip: bool  # clip each gradient to the global norm in args
    # L2 on the kernels (not the biases): ½·args["weight_decay"]·Σ‖w‖² joins every loss
    # (DeepOBS's regularizer, in its training objective and its reported losses)
    weight_decay: bool = False
    augmentation: str = "affine"  # augment.augment, or "deepobs-cifar": augment.deepobs_cifar
    # how convolutions are differentiated (functional.derivative_form): a field, under which
    # the program traces, so a program compiled under one form is never reused under another
    conv_derivatives: str = ""
    curvature: Curvature | None = None  # what record points measure of train_loss's Hessian

    @property
    def metric(self) -> str:
        return _metric(self.problem)

    @property
    def loss_name(self) -> str:
        return {"classification": "softmax_cross_entropy", "binary": "binary_cross_entropy",
                "regression": "mse"}[self.problem]

    def init(self, args, key: jax.Array, start_index: jax.Array):
        """The model's initial parameters, kernels times the task's weight scale."""
        params = self.model.init(key, args["x"].dtype)
        return tuple({**p, "w": p["w"] * jnp.asarray(args["weight_scale"], p["w"].dtype)}
                     if "w" in p else p for p in params)

    def _loss(self, params, x, y, key=None, train=False, dropout=None) -> jax.Array:
        out = self.model.apply(params, x, key=key, train=train, dropout=dropout)
        return losses.get(self.loss_name)(out, y)

    def _penalty(self, args, params) -> jax.Array:
        """The L2 term ½·weight_decay·Σ‖w‖² over the kernels, or 0 without weight decay."""
        if not self.weight_decay:
            return jnp.zeros(())
        kernels = [params[i]["w"] for i in self.model.weighted_layers()]
        return 0.5 * args["weight_decay"] * sum(jnp.sum(w**2) for w in kernels)

    def loss_and_grad(self, args, params, key: jax.Array, step: jax.Array):
        with functional.derivatives_as(self.conv_derivatives):
            return self._loss_and_grad(args, params, key, step)

    def _loss_and_grad(self, args, params, key: jax.Array, step: jax.Array):
        x, y = args["x"], args["y"]
        k_rows, k_drop, k_aug = jax.random.split(jax.random.fold_in(key, step), 3) \
            if self.random else (None, None, None)
        if self.batch:
            rows = jax.random.randint(k_rows, (self.batch,), 0, x.shape[0])
            x, y = x[rows], y[rows]
        if self.augment:
            x = (augment.deepobs_cifar(k_aug, x) if self.augmentation == "deepobs-cifar"
                 else augment.augment(k_aug, x, flip=self.flip))
        value, grads = jax.value_and_grad(
            lambda p: self._loss(p, x, y, k_drop, True, args["dropout"])
            + self._penalty(args, p))(params)
        if self.clip:
            grads, _ = optax.clip_by_global_norm(args["clip_global_norm"]).update(
                grads, optax.EmptyState())
        return value, grads

    def _eval_chunk(self) -> int:
        """Examples per chunk when evaluating a split: about EVAL_ELEMENTS activations of
        the widest layer per run."""
        widest = max(math.prod(shape) for shape in self.model.shapes())
        return max(1, EVAL_ELEMENTS // widest)

    def _split_sums(self, params, x, y, mask) -> tuple[jax.Array, jax.Array]:
        """Summed loss and score (correct predictions, or squared error for regression) of
        the examples of a batch where ``mask`` is true."""
        out = self.model.apply(params, x)
        loss_fn = losses.get(self.loss_name)
        loss = jax.vmap(lambda o, t: loss_fn(o[None], t[None]))(out, y)
        if self.problem == "regression":
            score = (out.reshape(y.shape) - y) ** 2
        elif self.problem == "binary":
            score = ((out.reshape(y.shape) > 0) == (y > 0)).astype(out.dtype)
        else:
            score = (jnp.argmax(out, axis=-1) == y).astype(out.dtype)
        return jnp.sum(jnp.where(mask, loss, 0)), jnp.sum(jnp.where(mask, score, 0))

    def _split_means(self, params, x, y) -> tuple[jax.Array, jax.Array]:
        """Mean loss and mean score over a split (in chunks if it is large)."""
        return chunked_means(functools.partial(self._split_sums, params), (x, y),
                             self._eval_chunk())

    def train_loss(self, args, params) -> jax.Array:
        """The mean loss over the training split, without dropout, plus any L2 term (the
        loss-landscape slices' function; equal to :meth:`evaluate`'s ``train_loss``)."""
        return self.split_loss(args, params, "train")

    def split_loss(self, args, params, split: str) -> jax.Array:
        """The mean loss over ``split`` ("train", "valid" or "test"), without dropout, plus any
        L2 term; equal to :meth:`evaluate`'s ``<split>_loss``."""
        suffix = "" if split == "train" else f"_{split}"
        with functional.derivatives_as(self.conv_derivatives):
            loss = self._split_means(params, args[f"x{suffix}"], args[f"y{suffix}"])[0]
        return loss + self._penalty(args, params)

    def evaluate(self, args, params) -> dict[str, jax.Array]:
        with functional.derivatives_as(self.conv_derivatives):
            return self._evaluate(args, params)

    def _evaluate(self, args, params) -> dict[str, jax.Array]:
        def objective(p):
            loss, score = self._split_means(p, args["x"], args["y"])
            return loss + self._penalty(args, p), score

        (train_loss, _), grads = jax.value_and_grad(objective, has_aux=True)(params)
        penalty = self._penalty(args, params)
        held_out = {}
        for split in ("valid", "test"):
            x, y = args[f"x_{split}"], args[f"y_{split}"]
            loss, score = self._split_means(params, x, y)
            loss = loss + penalty
            if self.problem == "regression":  # score: the mean squared error
                score = 1.0 - score / jnp.mean((y - jnp.mean(y)) ** 2)
            held_out |= {f"{split}_loss": loss, f"{split}_{_quality(self.problem)}": score}
        layers = {f"grad_norm_layer{k + 1}": optax.tree.norm(grads[i])
                  for k, i in enumerate(self.model.weighted_layers())}
        return {"train_loss": train_loss, **held_out, "grad_norm": optax.tree.norm(grads),
                **layers}

    def project(self, args, params):
        return params


@dataclass(frozen=True, eq=False)
class NetworkTask(FromConfig):
    """A network trained on a dataset; see the module docstring for batches and metrics."""

    maximize: ClassVar[bool] = NetworkProgram.maximize
    config: NetworkConfig
    data: datasets.Dataset
    model: models.Sequential  # with stand-ins for DATA_KNOBS (see task_of)
    n_starts: int = 1

    @property
    def metric(self) -> str:
        return _metric(self.data.problem)

    def _x(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), *self.model.input_shape)

    @property
    def n_train(self) -> int:
        """The training examples used: ``train_size`` of them, or all."""
        return self.config.train_size or len(self.data.x_train)

    def args(self, gradient_source: str) -> dict[str, np.ndarray]:
        n, c = self.n_train, self.config
        return {"x": self._x(self.data.x_train[:n]), "y": self.data.y_train[:n],
                "x_valid": self._x(self.data.x_valid), "y_valid": self.data.y_valid,
                "x_test": self._x(self.data.x_test), "y_test": self.data.y_test,
                **{knob: np.float64(getattr(c, knob)) for knob in DATA_KNOBS}}

    def batch_size(self, gradient_source: str) -> int:
        """The examples of one gradient: all for GD, one for SGD, else ``batch_size``."""
        return examples_per_gradient(gradient_source, self.n_train, self.config.batch_size)

    def program(self, gradient_source: str) -> NetworkProgram:
        c, size = self.config, self.batch_size(gradient_source)
        batch = 0 if size >= self.n_train else size
        return NetworkProgram(
            model=self.model, problem=self.data.problem, batch=batch,
            random=bool(batch) or c.dropout > 0 or c.augment, augment=c.augment,
            flip=c.augment and self.data.name == "fashion-mnist",  # no mirrored digits
            clip=c.clip_global_norm > 0,
            conv_derivatives=functional.derivative_form() if c.spec.model == "cnn" else "",
            curvature=curvature_of(c.sharpness, c.hessian_trace))

    def describe(self) -> dict:
        c = self.config
        return {"task": self.name, "kind": c.kind, "dataset": self.data.name,
                "model": c.spec.model, "activation": c.activation, "initializer": c.initializer,
                "depth": c.depth if c.spec.model == "mlp" else len(c.channels),
                "width": c.width, "dropout": c.dropout, "weight_scale": c.weight_scale,
                "batch_size": c.batch_size, "augment": c.augment,
                "clip_global_norm": c.clip_global_norm,
                "n_train": self.n_train}


def task_of(config: NetworkConfig) -> NetworkTask:
    """The task of ``config``: its model carries stand-ins for the knobs that are program
    data (:data:`DATA_KNOBS`), so that tasks differing only in them share one program."""
    data = load_dataset(config.spec.dataset, config.data_dir)
    stand_ins = replace(config, dropout=STAND_IN_DROPOUT if config.dropout > 0 else 0.0,
                        weight_scale=1.0)
    return NetworkTask(config, data, stand_ins.model(data.outputs))


def build(configs: Sequence[NetworkConfig]) -> list[NetworkTask]:
    return [task_of(c) for c in configs]


# the knobs a table may list to stand for one task per value (lists of lists for channels
# and kernel would be ambiguous: a CNN's layers are one list)
SWEEPABLE = ("activation", "initializer", "depth", "width", "dropout", "weight_scale",
             "batch_size", "clip_global_norm", "train_size", "augment")

for _kind, _spec in KINDS.items():
    registry.register(registry.TaskKind(
        name=_kind, description=_spec.description,
        parse=functools.partial(parse, _kind), build=build, sweepable=SWEEPABLE,
        fields=functools.partial(field_defaults, _kind), landscape_figures=True))
