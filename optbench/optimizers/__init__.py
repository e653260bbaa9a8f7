"""Pure-function optimizers whose hyperparameters are data, each matched to optax.

Each optimizer is available three ways:

* as pure functions ``init(params, hparams)`` / ``update(grads, state, params, hparams)``
  through the registry: ``get("adam").init``, ``get("adam").update``;
* as an ``optax.GradientTransformation`` from a factory named after it: ``adam(1e-3)``;
* with its optax counterpart: ``get("adam").optax_counterpart(learning_rate=1e-3)``.

Any optax optimizer or user factory runs in a sweep too: ``resolve("optax:lion")`` (see
:mod:`optbench.optimizers.optax_adapter`).
"""

from __future__ import annotations

from optbench.optimizers.adadelta import adadelta
from optbench.optimizers.adagrad import adagrad
from optbench.optimizers.adam import adam
from optbench.optimizers.base import (
    HParams,
    OptimizerSpec,
    PureOptimizer,
    Range,
    as_gradient_transformation,
)
from optbench.optimizers.registry import (
    get,
    hyperparameter_defaults,
    hyperparameter_names,
    hyperparameters,
    names,
    resolve,
)
from optbench.optimizers.rmsprop import rmsprop
from optbench.optimizers.sgd import gd, minibatch, momentum, nesterov, sgd

__all__ = [
    "HParams",
    "OptimizerSpec",
    "PureOptimizer",
    "Range",
    "adadelta",
    "adagrad",
    "adam",
    "as_gradient_transformation",
    "gd",
    "get",
    "hyperparameter_defaults",
    "hyperparameter_names",
    "hyperparameters",
    "minibatch",
    "momentum",
    "names",
    "nesterov",
    "resolve",
    "rmsprop",
    "sgd",
]
