"""The task interface: a small, fixed set of pure functions the sweep engine calls."""

from __future__ import annotations

from typing import Protocol

import jax

GRADIENT_SOURCES = ("full batch", "one sample", "mini-batch", "any")


class Task(Protocol):
    """Something to minimise, with everything the engine needs to run and score a run.

    ``gradient_source`` is an optimizer's ``spec.gradient``: GD asks for the full-batch
    gradient, SGD for one sample's, mini-batch SGD for a batch's; optimizers that do not say
    ("any") get the mini-batch gradient, as in ordinary training.
    """

    name: str  # unique within a sweep, e.g. "rosenbrock-2d"
    dim: int  # number of parameters
    f_min: float  # the optimum, so that results are reported as f - f_min

    def start(self, key: jax.Array, start_index: jax.Array) -> jax.Array:
        """The starting parameters of run ``start_index`` (``key`` is the run's seed key)."""
        ...

    def loss(self, params: jax.Array) -> jax.Array:
        """The exact objective, recorded and scored."""
        ...

    def gradient(
        self, params: jax.Array, key: jax.Array, gradient_source: str
    ) -> tuple[jax.Array, jax.Array]:
        """``(loss(params), gradient)`` where the gradient comes from ``gradient_source``."""
        ...

    def describe(self) -> dict:
        """Plain-data columns identifying the task in result tables."""
        ...
