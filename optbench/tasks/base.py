"""The task interface: what the sweep engine runs an optimizer on.

One shape serves synthetic surfaces and data-driven tasks alike. Parameters are any pytree.
A task is split in two: its :class:`Program` (the code the engine compiles, a hashable value
that is the compile cache's key) and its data, :meth:`Task.args`: the datasets and every
number that may differ between tasks sharing a program (the noise scale, ``f_min``, which
surface), passed to the compiled program as an argument, so that tasks differing only in
data share one program.

Scoring resolution: a task whose ``per_step_metric`` is true (a surface: the value returned
with the gradient is the exact objective) is scored at every step, so steps-to-target and the
divergence step are exact to the step. Other tasks (networks, whose batch loss is noisy) are
scored on :meth:`Program.evaluate` at the record points only.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import jax

Params = Any  # a pytree of arrays
Args = Any  # a pytree of numpy arrays and scalars

GRADIENT_SOURCES = ("full batch", "one sample", "mini-batch", "any")


def examples_per_gradient(gradient_source: str, n_train: int, batch_size: int) -> int:
    """The training examples one gradient from ``gradient_source`` uses: all ``n_train`` for
    GD ("full batch"), one for SGD ("one sample"), else ``batch_size``."""
    return {"full batch": n_train, "one sample": 1}.get(gradient_source, batch_size)


class Program(Protocol):
    """The traced part of a task: everything its compiled code reads, as a hashable value.

    The engine traces only a program's methods and caches compiled programs by the program's
    value (with the shapes of its arguments), so two tasks with equal programs run the same
    code by construction: whatever the code could read differently is a field, and a field
    that differs makes the programs unequal. Everything else (datasets, numbers) comes in
    ``args``, the program's runtime data. Programs are frozen dataclasses compared by value.

    A program may also measure curvature at record points (``sharpness = true``): it then has
    a field ``curvature`` (a :class:`~optbench.tasks.curvature.Curvature`, None when off) and
    a method ``train_loss(args, params)``, the scalar whose Hessian is measured; the engine
    carries the eigenvectors from one record point to the next.

    A program serving several variants that a runtime argument chooses among (a family of
    surfaces) may list them: ``members()``, one program per variant, and
    ``member_index(args)``, the one ``args`` runs (an unbatched integer), so that the engine
    can choose once per run rather than in every step (``branching = "run"``).
    """

    metric: str  # the primary metric: a key of evaluate()'s dict
    maximize: bool  # targets are then "reach >= t", and the best is the largest
    per_step_metric: bool  # loss_and_grad's value is the exact primary metric

    def init(self, args: Args, key: jax.Array, start_index: jax.Array) -> Params:
        """The starting parameters of one run (``key`` is the run's seed key)."""
        ...

    def loss_and_grad(self, args: Args, params: Params, key: jax.Array, step: jax.Array
                      ) -> tuple[jax.Array, Params]:
        """The loss and gradient of the batch for ``step``, from the gradient source the
        program was made for: the full batch (GD), one example (SGD) or a mini-batch.
        ``key`` is the run's key for its whole stream of batches: draw step ``step``'s from
        ``jax.random.fold_in(key, step)``, and only where randomness is needed (deriving a
        key costs more than a small task's gradient)."""
        ...

    def evaluate(self, args: Args, params: Params) -> dict[str, jax.Array]:
        """Scalar metrics at a record point; includes ``metric``."""
        ...

    def project(self, args: Args, params: Params) -> Params:
        """Back onto the feasible set after each update (identity if unconstrained)."""
        ...


class FromConfig:
    """A task whose ``kind`` and ``name`` are its ``config`` table's (a mixin of the task
    dataclasses that parse a ``[[tasks]]`` table into a ``config`` field)."""

    config: Any

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def name(self) -> str:
        return self.config.name


class Task(Protocol):
    """Something to optimize: its compiled part (:meth:`program`), its data and its name.

    ``gradient_source`` is an optimizer's ``spec.gradient``: GD asks for the full-batch
    gradient, SGD for one sample's, mini-batch SGD for a batch's; optimizers that do not say
    ("any") get the mini-batch gradient, as in ordinary training.
    """

    kind: ClassVar[str]  # the registry kind, e.g. "surface"
    name: str  # unique within a sweep, e.g. "rosenbrock-2d"
    n_starts: int  # starting points per seed
    metric: str  # the primary metric (every program of the task has it)
    maximize: bool

    def program(self, gradient_source: str) -> Program:
        """The compiled part for ``gradient_source``: tasks with equal programs share one
        compilation, given each other's :meth:`args`."""
        ...

    def args(self, gradient_source: str) -> Args:
        """The program's runtime data: datasets and numbers, as numpy arrays."""
        ...

    def describe(self) -> dict:
        """Plain-data columns identifying the task in result tables."""
        ...
