"""A small data-driven task for the engine's tests: linear regression with pytree params.

Its dataset is an argument of the program, its gradient comes from a mini-batch drawn for
each step, and it is scored on ``evaluate`` at record points (test loss), as a network is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optbench import validate
from optbench.tasks import registry


@dataclass(frozen=True)
class RegressionConfig:
    kind: ClassVar[str] = "test-regression"
    n_train: int = 64
    features: int = 3
    batch_size: int = 8
    name: str = "regression"

    @property
    def n_starts(self) -> int:
        return 1

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n_train": self.n_train, "features": self.features,
                "batch_size": self.batch_size, "name": self.name}


def fields() -> dict:
    """Each field and its default: the dataclass's, which ``parse`` reads too."""
    return {f.name: f.default for f in dataclasses.fields(RegressionConfig)}


def parse(raw, path: str) -> RegressionConfig:
    validate.table(raw, path, set(fields()))
    get = {**fields(), **raw}.get
    return RegressionConfig(
        n_train=validate.integer(get("n_train"), f"{path}.n_train", 2),
        features=validate.integer(get("features"), f"{path}.features", 1),
        batch_size=validate.integer(get("batch_size"), f"{path}.batch_size", 1),
        name=validate.name(get("name"), f"{path}.name"))


@dataclass(frozen=True)
class RegressionProgram:
    metric: ClassVar[str] = "test_loss"
    maximize: ClassVar[bool] = False
    per_step_metric: ClassVar[bool] = False
    batch: int  # rows per gradient; 0: all

    def init(self, args, key, start_index):
        return {"w": jnp.zeros(args["x"].shape[1], args["x"].dtype),
                "b": jnp.zeros((), args["x"].dtype)}

    @staticmethod
    def loss(params, x, y):
        return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)

    def loss_and_grad(self, args, params, key, step):
        n = args["x"].shape[0]
        rows = (jax.random.randint(jax.random.fold_in(key, step), (self.batch,), 0, n)
                if self.batch else jnp.arange(n))
        return jax.value_and_grad(self.loss)(params, args["x"][rows], args["y"][rows])

    def evaluate(self, args, params):
        return {"train_loss": self.loss(params, args["x"], args["y"]),
                "test_loss": self.loss(params, args["x_test"], args["y_test"])}

    def project(self, args, params):
        return params


@dataclass(frozen=True, eq=False)
class RegressionTask:
    kind: ClassVar[str] = "test-regression"
    metric: ClassVar[str] = RegressionProgram.metric
    maximize: ClassVar[bool] = RegressionProgram.maximize
    config: RegressionConfig
    n_starts: int = 1

    @property
    def name(self) -> str:
        return self.config.name

    def program(self, gradient_source: str) -> RegressionProgram:
        size = {"full batch": self.config.n_train, "one sample": 1}.get(
            gradient_source, self.config.batch_size)
        return RegressionProgram(0 if size >= self.config.n_train else size)

    def args(self, gradient_source: str) -> dict:
        rng = np.random.default_rng(0)
        n, d = self.config.n_train, self.config.features
        w = np.arange(1, d + 1, dtype=float)
        x, x_test = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        return {"x": x, "y": x @ w + 0.5 + 0.1 * rng.normal(size=n),
                "x_test": x_test, "y_test": x_test @ w + 0.5}

    def describe(self) -> dict:
        return {"task": self.name, "kind": self.kind, "n_train": self.config.n_train}


if "test-regression" not in registry.names():
    registry.register(registry.TaskKind(
        name="test-regression", description="linear regression (tests only)", parse=parse,
        build=lambda configs: [RegressionTask(c) for c in configs], fields=fields))
