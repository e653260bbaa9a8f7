"""DeepOBS's test problems (Schneider, Balles & Hennig 2019, "DeepOBS: a deep learning
optimizer benchmark suite", and the test problems of github.com/fsschneider/DeepOBS) under
DeepOBS's own names.

| kind | data (train / valid / test) | model | L2 | batch, budget |
|---|---|---|---|---|
| quadratic_deep | 1000 / 1000 / 1000 draws, N(0, 0.6² I) | 100-D quadratic | - | 128, 100 ep. |
| mnist_logreg | MNIST IDX, 55000 / 5000 / 10000 | linear, zero init | - | 128, 50 epochs |
| mnist_mlp, fmnist_mlp | (Fashion-)MNIST IDX | 1000-500-100 MLP | - | 128, 100 epochs |
| mnist_2c2d, fmnist_2c2d | (Fashion-)MNIST IDX | 2 conv, 2 dense | - | 128, 100 epochs |
| cifar10_3c3d | CIFAR-10 python, 45000 / 5000 / 10000 | 3 conv, 3 dense | 0.002 | 128, 100 epochs |
| cifar100_3c3d | CIFAR-100 python | 3 conv, 3 dense | 0.002 | 128, 350 epochs |
| cifar100_allcnnc | CIFAR-100 python | All-CNN-C | 0.0005 | 256, 350 epochs |

Architectures, initializers, bias constants, dropout, L2 factor and batch size are
DeepOBS's (its TensorFlow test problems); the budget is DeepOBS's ``num_epochs``
(``deepobs.config.DEFAULT_TEST_PROBLEMS_SETTINGS``; cifar100_3c3d's, which is not there,
from the paper), shown in steps by ``optbench list tasks`` and set per task in the example
``deepobs-small``. The L2 term ``½·weight_decay·Σ‖w‖²`` over the kernels joins the training
loss and the reported losses, as DeepOBS's runner adds its regularizer to both. CIFAR images
are DeepOBS's 0-255 pixels, standardized per image by the model's first layer, and its
training augmentation (random crop of the 36×36 padded image, flip, brightness, saturation,
contrast) is drawn per batch (``augment = false`` turns it off).

Where optbench differs from DeepOBS, by design: batches are drawn with replacement from the
step's key (DeepOBS shuffles per epoch); the validation split is held out of the training
files (see :mod:`optbench.nn.datasets`), where DeepOBS 1.1 has none; the primary metric is
the validation split's (accuracy; quadratic_deep's loss), the test split's beside it.
TensorFlow's Xavier-normal draw is truncated without rescaling where jax's is rescaled, so
the 3c3d and All-CNN-C conv kernels have variance 2/(fan_in + fan_out) here and about 0.77
of it there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optbench import validate
from optbench.nn import datasets, functional
from optbench.nn.models import (
    Activation,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Pool,
    Sequential,
    Standardize,
)
from optbench.tasks import network, registry
from optbench.tasks.base import FromConfig, examples_per_gradient
from optbench.validate import ConfigError

# --------------------------------------------------------------------------------------
# quadratic_deep: drawn as DeepOBS draws it
# --------------------------------------------------------------------------------------

QUADRATIC_DIM = 100
QUADRATIC_POINTS = 1000  # per split
QUADRATIC_NOISE = 0.6  # standard deviation of each coordinate of a data point
QUADRATIC_SEEDS = {"train": 42, "test": 43, "valid": 44}  # valid: optbench's own split


def haar_rotation(rng: np.random.RandomState, dim: int) -> np.ndarray:
    """A rotation in SO(dim), Haar-distributed, by Diaconis & Shahshahani's subgroup
    algorithm in DeepOBS's draw order: one uniform angle for SO(2), then for each
    d = 2 ... dim - 1 a standard normal vector of d + 1 coordinates, whose direction v
    places SO(d) in SO(d + 1) by the reflection across e₁ - v; the result negated."""
    angle = 2 * np.pi * rng.uniform()
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    for d in range(2, dim):
        v = rng.normal(size=(d + 1, 1))
        v /= np.sqrt(v.T @ v)
        e = np.zeros((d + 1, 1))
        e[0] = 1.0
        u = (e - v) / np.sqrt((e - v).T @ (e - v))
        block = np.eye(d + 1)
        block[1:, 1:] = rotation
        rotation = block - 2 * u @ (u.T @ block)
    return -rotation


def quadratic_deep_hessian() -> tuple[np.ndarray, np.ndarray]:
    """``(eigenvalues, Q)`` of quadratic_deep, from a fresh ``RandomState(42)``: 90
    eigenvalues from U(0, 1), then 10 from U(30, 60), then the rotation R from the same
    stream; ``Q = Rᵀ diag(eigenvalues) R``. (DeepOBS's generator is module-level, so this is
    its first instance in a process.)"""
    rng = np.random.RandomState(42)
    eigenvalues = np.concatenate((rng.uniform(0.0, 1.0, 90), rng.uniform(30.0, 60.0, 10)))
    rotation = haar_rotation(rng, QUADRATIC_DIM)
    return eigenvalues, rotation.T @ np.diag(eigenvalues) @ rotation


def quadratic_points(split: str) -> np.ndarray:
    """The 1000 float32 data points of ``split`` ("train", "valid" or "test")."""
    rng = np.random.RandomState(QUADRATIC_SEEDS[split])
    return np.float32(rng.normal(0.0, QUADRATIC_NOISE, (QUADRATIC_POINTS, QUADRATIC_DIM)))


def quadratic_loss(hessian: jax.Array, theta: jax.Array, x: jax.Array) -> jax.Array:
    """The batch mean of ½ (θ - x)ᵀ Q (θ - x) over the rows x."""
    d = theta - x
    return 0.5 * jnp.mean(jnp.einsum("ni,ij,nj->n", d, hessian, d))


@dataclass(frozen=True)
class QuadraticProgram:
    """quadratic_deep's compiled part: θ starts at 1; ``batch`` rows per step (0: all)."""

    per_step_metric: ClassVar[bool] = False
    maximize: ClassVar[bool] = False
    metric: ClassVar[str] = "valid_loss"
    batch: int

    def init(self, args, key: jax.Array, start_index: jax.Array):
        return jnp.ones(args["hessian"].shape[0], args["hessian"].dtype)

    def loss_and_grad(self, args, params, key: jax.Array, step: jax.Array):
        x = args["x"]
        if self.batch:
            x = x[jax.random.randint(jax.random.fold_in(key, step), (self.batch,), 0,
                                     x.shape[0])]
        return jax.value_and_grad(quadratic_loss, argnums=1)(args["hessian"], params, x)

    def train_loss(self, args, params) -> jax.Array:
        return quadratic_loss(args["hessian"], params, args["x"])

    def evaluate(self, args, params) -> dict[str, jax.Array]:
        train, grad = jax.value_and_grad(self.train_loss, argnums=1)(args, params)
        return {"train_loss": train, "grad_norm": jnp.linalg.norm(grad),
                **{f"{split}_loss": quadratic_loss(args["hessian"], params, args[f"x_{split}"])
                   for split in ("valid", "test")}}

    def project(self, args, params):
        return params


@dataclass(frozen=True, eq=False)
class QuadraticTask(FromConfig):
    """quadratic_deep (see the module docstring)."""

    maximize: ClassVar[bool] = False
    metric: ClassVar[str] = QuadraticProgram.metric
    n_starts: ClassVar[int] = 1
    config: DeepOBSConfig

    def batch_size(self, gradient_source: str) -> int:
        return examples_per_gradient(gradient_source, QUADRATIC_POINTS, self.config.batch_size)

    def program(self, gradient_source: str) -> QuadraticProgram:
        size = self.batch_size(gradient_source)
        return QuadraticProgram(batch=0 if size >= QUADRATIC_POINTS else size)

    def args(self, gradient_source: str) -> dict[str, np.ndarray]:
        return {"hessian": _hessian(), "x": quadratic_points("train"),
                "x_valid": quadratic_points("valid"), "x_test": quadratic_points("test")}

    def describe(self) -> dict:
        return {"task": self.name, "kind": self.kind, "dataset": "quadratic",
                "model": "quadratic", "batch_size": self.config.batch_size,
                "n_train": QUADRATIC_POINTS}


@functools.cache
def _hessian() -> np.ndarray:
    hessian = np.float32(quadratic_deep_hessian()[1])  # DeepOBS's, a float32 constant
    hessian.setflags(write=False)
    return hessian


# --------------------------------------------------------------------------------------
# The networks, as DeepOBS builds them
# --------------------------------------------------------------------------------------

_MNIST_SHAPE, _CIFAR_SHAPE = (28, 28, 1), (32, 32, 3)


def logreg(outputs: int = 10) -> Sequential:
    """Multinomial logistic regression on the 784 pixels, weights and biases at zero."""
    return Sequential((Flatten(), Dense(outputs)), _MNIST_SHAPE, "zeros")


def mlp(outputs: int = 10) -> Sequential:
    """784-1000-500-100-outputs, ReLU; kernels from N(0, 0.03²) cut at ±2σ, biases 0."""
    hidden = [layer for width in (1000, 500, 100) for layer in (Dense(width),
                                                               Activation("relu"))]
    return Sequential((Flatten(), *hidden, Dense(outputs)), _MNIST_SHAPE,
                      "truncated_normal(0.03)")


def two_conv_two_dense(outputs: int = 10) -> Sequential:
    """2c2d: two 5×5 "same" convs (32, 64) each with ReLU and a 2×2 max-pool, a 1024-unit
    ReLU layer, outputs; kernels from N(0, 0.05²) cut at ±2σ, biases 0.05."""
    def conv(features):
        return [Conv(features, 5, padding="SAME", bias=0.05), Activation("relu"),
                Pool("max", 2, 2, "SAME")]
    return Sequential((*conv(32), *conv(64), Flatten(), Dense(1024, bias=0.05),
                       Activation("relu"), Dense(outputs, bias=0.05)), _MNIST_SHAPE,
                      "truncated_normal(0.05)")


def three_conv_three_dense(outputs: int) -> Sequential:
    """3c3d: convs 64 (5×5 valid), 96 (3×3 valid), 128 (3×3 same), each with ReLU and a
    3×3 stride-2 "same" max-pool; dense 512, 256 (ReLU), outputs. Conv kernels
    Xavier-normal, dense kernels Xavier-uniform, biases 0."""
    def conv(features, window, padding):
        return [Conv(features, window, padding=padding), Activation("relu"),
                Pool("max", 3, 2, "SAME")]
    def dense(features):
        return Dense(features, initializer="xavier_uniform")
    return Sequential((Standardize(), *conv(64, 5, "VALID"), *conv(96, 3, "VALID"),
                       *conv(128, 3, "SAME"), Flatten(), dense(512), Activation("relu"),
                       dense(256), Activation("relu"), dense(outputs)), _CIFAR_SHAPE,
                      "xavier_normal")


def all_cnn_c(outputs: int = 100) -> Sequential:
    """All-CNN-C (Springenberg et al. 2015) as DeepOBS has it: dropout 0.2 on the input;
    three 3×3 convs of 96 (the third stride 2), dropout 0.5; three of 192 (the third
    stride 2), dropout 0.5; a 3×3 valid conv of 192, 1×1 convs of 192 and ``outputs``, all
    with ReLU, then the spatial mean. Kernels Xavier-normal, biases 0.1."""
    def conv(features, window=3, stride=1, padding="SAME"):
        return [Conv(features, window, stride, padding, bias=0.1), Activation("relu")]
    def dropout(rate):
        return Dropout(rate, tunable=False)
    return Sequential((Standardize(), dropout(0.2), *conv(96), *conv(96), *conv(96, stride=2),
                       dropout(0.5), *conv(192), *conv(192), *conv(192, stride=2),
                       dropout(0.5), *conv(192, padding="VALID"), *conv(192, 1),
                       *conv(outputs, 1), GlobalAvgPool()), _CIFAR_SHAPE, "xavier_normal")


@dataclass(frozen=True)
class Problem:
    """What DeepOBS fixes for one test problem."""

    dataset: str  # a dataset of optbench.nn.datasets, or "quadratic"
    model: Callable[[], Sequential] | None
    batch_size: int
    epochs: int
    weight_decay: float
    what: str

    @property
    def cifar(self) -> bool:
        return self.dataset in datasets.CIFAR


PROBLEMS: dict[str, Problem] = {
    "quadratic_deep": Problem("quadratic", None, 128, 100, 0.0,
                              "100-D noisy quadratic, deep-learning eigenvalues"),
    "mnist_logreg": Problem("mnist", logreg, 128, 50, 0.0, "MNIST, logistic regression"),
    "mnist_mlp": Problem("mnist", mlp, 128, 100, 0.0, "MNIST, 4-layer MLP"),
    "mnist_2c2d": Problem("mnist", two_conv_two_dense, 128, 100, 0.0, "MNIST, 2 conv + 2 dense"),
    "fmnist_mlp": Problem("fashion-mnist", mlp, 128, 100, 0.0, "Fashion-MNIST, 4-layer MLP"),
    "fmnist_2c2d": Problem("fashion-mnist", two_conv_two_dense, 128, 100, 0.0,
                           "Fashion-MNIST, 2 conv + 2 dense"),
    "cifar10_3c3d": Problem("cifar10", functools.partial(three_conv_three_dense, 10), 128,
                            100, 0.002, "CIFAR-10, 3 conv + 3 dense"),
    "cifar100_3c3d": Problem("cifar100", functools.partial(three_conv_three_dense, 100), 128,
                             350, 0.002, "CIFAR-100, 3 conv + 3 dense"),
    "cifar100_allcnnc": Problem("cifar100", all_cnn_c, 256, 350, 0.0005,
                                "CIFAR-100, All-CNN-C"),
}
# the training examples per epoch (optbench's training split), for the budget in steps
TRAIN_EXAMPLES = {"quadratic": QUADRATIC_POINTS, "mnist": 55000, "fashion-mnist": 55000,
                  "cifar10": 45000, "cifar100": 45000}


def parameter_count(kind: str) -> int:
    """The number of trained parameters of ``kind`` (shapes only, nothing allocated)."""
    model = PROBLEMS[kind].model
    return QUADRATIC_DIM if model is None else model().parameter_count()


def budget_steps(kind: str, batch_size: int | None = None) -> int:
    """DeepOBS's budget of ``kind`` in steps: its epochs of optbench's training split, each
    ``train // batch_size`` steps (DeepOBS drops the last partial batch)."""
    problem = PROBLEMS[kind]
    return problem.epochs * (TRAIN_EXAMPLES[problem.dataset] // (batch_size
                                                                 or problem.batch_size))


def description(kind: str) -> str:
    problem = PROBLEMS[kind]
    decay = f", L2 {problem.weight_decay:g}" if problem.weight_decay else ""
    return (f"DeepOBS {kind}: {problem.what}; {parameter_count(kind):,} parameters; batch "
            f"{problem.batch_size}{decay}; budget {problem.epochs} epochs = "
            f"{budget_steps(kind):,} steps")


# --------------------------------------------------------------------------------------
# Configs and tasks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeepOBSConfig:
    """One ``[[tasks]]`` table of a DeepOBS kind; unset fields take DeepOBS's values."""

    # the knobs of network.DATA_KNOBS, which DeepOBS fixes (All-CNN-C's dropout is its own)
    dropout: ClassVar[float] = 0.0
    weight_scale: ClassVar[float] = 1.0
    clip_global_norm: ClassVar[float] = 0.0
    n_starts: ClassVar[int] = 1
    kind: str
    name: str
    batch_size: int
    weight_decay: float = 0.0
    augment: bool = False
    train_size: int = 0
    data_dir: str = ""

    @property
    def problem(self) -> Problem:
        return PROBLEMS[self.kind]

    def to_dict(self) -> dict:
        data = asdict(self)
        return {"kind": self.kind, **{k: data[k] for k in _fields_of(self.kind)}}


def _fields_of(kind: str) -> list[str]:
    """The fields a table of ``kind`` accepts, in order."""
    problem = PROBLEMS[kind]
    if problem.dataset == "quadratic":
        return ["name", "batch_size"]
    return ["name", "batch_size", *(["weight_decay"] if problem.weight_decay else []),
            *(["augment"] if problem.cifar else []), "train_size", "data_dir"]


def _defaults(kind: str) -> dict[str, Any]:
    problem = PROBLEMS[kind]
    return {"name": kind, "batch_size": problem.batch_size,
            "weight_decay": problem.weight_decay, "augment": problem.cifar, "train_size": 0}


def field_defaults(kind: str) -> dict[str, Any]:
    """Each field of ``kind`` with its default (``optbench list tasks KIND``)."""
    dataset = PROBLEMS[kind].dataset
    rules = ({} if dataset == "quadratic" else
             {"data_dir": f"required: a folder holding {datasets.files_wanted(dataset)}"})
    return registry.described(_fields_of(kind), _defaults(kind), rules)


def parse(kind: str, raw: Mapping[str, Any], path: str) -> DeepOBSConfig:
    allowed = _fields_of(kind)
    validate.table(raw, path, set(allowed))
    get = {**_defaults(kind), **raw}.get
    dataset = PROBLEMS[kind].dataset
    fields: dict[str, Any] = {
        "kind": kind, "name": validate.name(get("name"), f"{path}.name"),
        "batch_size": validate.integer(get("batch_size"), f"{path}.batch_size", 1)}
    if "weight_decay" in allowed:
        fields["weight_decay"] = validate.number(get("weight_decay"), f"{path}.weight_decay",
                                                 0.0)
    if "augment" in allowed:
        fields["augment"] = validate.boolean(get("augment"), f"{path}.augment")
    if dataset == "quadratic":
        if fields["batch_size"] > QUADRATIC_POINTS:
            raise ConfigError(f"{path}.batch_size", fields["batch_size"],
                              f"an integer in [1, {QUADRATIC_POINTS}] (the training points)")
        return DeepOBSConfig(**fields)
    fields["train_size"] = validate.integer(get("train_size"), f"{path}.train_size", 0)
    fields["data_dir"] = network.data_dir(raw.get("data_dir"), f"{path}.data_dir", dataset)
    network.check_sizes(fields, dataset, path)
    return DeepOBSConfig(**fields)


@dataclass(frozen=True, eq=False)
class DeepOBSNetworkTask(network.NetworkTask):
    """A DeepOBS network: a :class:`~optbench.tasks.network.NetworkTask` whose program adds
    DeepOBS's L2 term and, on CIFAR, its augmentation."""

    def args(self, gradient_source: str) -> dict[str, np.ndarray]:
        return {**super().args(gradient_source),
                "weight_decay": np.float64(self.config.weight_decay)}

    def program(self, gradient_source: str) -> network.NetworkProgram:
        c, size = self.config, self.batch_size(gradient_source)
        batch = 0 if size >= self.n_train else size
        dropout = any(isinstance(layer, Dropout) for layer in self.model.layers)
        convolutional = any(isinstance(layer, Conv) for layer in self.model.layers)
        return network.NetworkProgram(
            model=self.model, problem="classification", batch=batch,
            random=bool(batch) or dropout or c.augment, augment=c.augment, flip=False,
            clip=False, weight_decay=c.weight_decay > 0, augmentation="deepobs-cifar",
            conv_derivatives=functional.derivative_form() if convolutional else "")

    def describe(self) -> dict:
        c = self.config
        return {"task": self.name, "kind": c.kind, "dataset": self.data.name,
                "model": c.kind.split("_", 1)[1], "batch_size": c.batch_size,
                "weight_decay": c.weight_decay, "augment": c.augment, "n_train": self.n_train}


def build(configs: Sequence[DeepOBSConfig]) -> list:
    tasks = []
    for c in configs:
        problem = c.problem
        if problem.model is None:
            tasks.append(QuadraticTask(c))
        else:
            data = network.load_dataset(problem.dataset, c.data_dir)
            tasks.append(DeepOBSNetworkTask(c, data, problem.model()))
    return tasks


SWEEPABLE = ("batch_size", "weight_decay", "augment", "train_size")

for _kind in PROBLEMS:
    registry.register(registry.TaskKind(
        name=_kind, description=functools.partial(description, _kind),
        parse=functools.partial(parse, _kind),
        build=build, sweepable=SWEEPABLE, fields=functools.partial(field_defaults, _kind),
        # quadratic_deep's one vector of parameters has no layers to normalize by filter
        landscape_figures=_kind != "quadratic_deep"))
