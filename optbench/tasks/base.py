"""The task interface: what the sweep engine runs an optimizer on.

One shape serves synthetic surfaces and data-driven tasks alike. Parameters are any pytree;
a task's data and every number that may differ between tasks sharing a program (the noise
scale, ``f_min``, which surface) live in :meth:`Task.args`, which the engine passes to the
compiled program as an argument, so that tasks differing only in data share one program.

Scoring resolution: a task whose ``per_step_metric`` is true (a surface: the value returned
with the gradient is the exact objective) is scored at every step, so steps-to-target and the
divergence step are exact to the step. Other tasks (networks, whose batch loss is noisy) are
scored on :meth:`Task.evaluate` at the record points only.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar, Protocol

import jax

Params = Any  # a pytree of arrays
Args = Any  # a pytree of numpy arrays and scalars

GRADIENT_SOURCES = ("full batch", "one sample", "mini-batch", "any")


class Task(Protocol):
    """Something to optimize, with everything the engine needs to run and score a run.

    ``gradient_source`` is an optimizer's ``spec.gradient``: GD asks for the full-batch
    gradient, SGD for one sample's, mini-batch SGD for a batch's; optimizers that do not say
    ("any") get the mini-batch gradient, as in ordinary training.
    """

    kind: ClassVar[str]  # the registry kind, e.g. "surface"
    name: str  # unique within a sweep, e.g. "rosenbrock-2d"
    n_starts: int  # starting points per seed
    metric: str  # the primary metric: a key of evaluate()'s dict
    maximize: bool  # targets are then "reach >= t", and the best is the largest
    per_step_metric: bool  # loss_and_grad's value is the exact primary metric

    def program_key(self, gradient_source: str) -> Hashable:
        """Everything that changes the compiled program (shapes, static choices). Tasks with
        equal keys trace to the same program given each other's :meth:`args`."""
        ...

    def args(self, gradient_source: str) -> Args:
        """The program's runtime data: datasets and numbers, as numpy arrays."""
        ...

    def init(self, args: Args, key: jax.Array, start_index: jax.Array) -> Params:
        """The starting parameters of one run (``key`` is the run's seed key)."""
        ...

    def loss_and_grad(self, args: Args, params: Params, key: jax.Array, step: jax.Array,
                      gradient_source: str) -> tuple[jax.Array, Params]:
        """The loss and gradient of the batch for ``step``: full batch for "full batch" (GD),
        one example for "one sample" (SGD), a mini-batch otherwise. ``key`` is the run's key
        for its whole stream of batches: draw step ``step``'s from
        ``jax.random.fold_in(key, step)``, and only where randomness is needed (deriving a key
        costs more than a small task's gradient)."""
        ...

    def evaluate(self, args: Args, params: Params) -> dict[str, jax.Array]:
        """Scalar metrics at a record point; includes ``metric``."""
        ...

    def project(self, args: Args, params: Params) -> Params:
        """Back onto the feasible set after each update (identity if unconstrained)."""
        ...

    def describe(self) -> dict:
        """Plain-data columns identifying the task in result tables."""
        ...
