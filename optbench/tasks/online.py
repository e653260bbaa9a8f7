"""Online task kinds (used by the gallery): objectives that change with the step, and a
feasible set.

* ``online-linear``: the online linear losses of Reddi, Kale & Kumar (2018),
  ``f_t(x) = c_t * sum(x)`` with ``c_t`` cycling through ``coefficients``, on a box onto which
  every update is projected (projected online methods).
* ``moving-target``: ``f_t(x) = |x - c_t|^2 / 2`` whose minimum ``c_t`` jumps from ``before``
  to ``after`` at ``jump_step``: a non-stationary objective on which an optimizer must forget.

Both depend on the step through :meth:`loss_and_grad`'s ``step`` (0-based: the papers' ``t``
is ``step + 1``). Their loss at a step is not the score, so they are scored on
:meth:`evaluate` at the record points (``per_step_metric = False``), against the objective
that defines success: the average loss for the online task, the final loss for the moving one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optbench.tasks import registry
from optbench.validate import ConfigError, integer, name, number, table


def _point(raw: Any, path: str, dim: int) -> tuple[float, ...]:
    """A point of ``dim`` numbers; a single number is broadcast to every coordinate."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return (number(raw, path),) * dim
    if isinstance(raw, list) and len(raw) == dim:
        return tuple(number(v, f"{path}[{i}]") for i, v in enumerate(raw))
    raise ConfigError(path, raw, f"a number or a list of {dim} numbers (dim = {dim})")


# --------------------------------------------------------------------------------------
# online-linear
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnlineLinearConfig:
    """One ``[[tasks]]`` table of kind ``online-linear``."""

    kind: ClassVar[str] = "online-linear"
    coefficients: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]  # one (low, high) per coordinate
    start: tuple[float, ...]
    name: str = "online-linear"

    n_starts: ClassVar[int] = 1

    @property
    def dim(self) -> int:
        return len(self.bounds)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "coefficients": list(self.coefficients), "dim": self.dim,
                "bounds": [list(b) for b in self.bounds], "start": list(self.start),
                "name": self.name}


def _bounds(raw: Any, path: str, dim: int, task: str) -> tuple[tuple[float, float], ...]:
    """The feasible box: one ``[low, high]`` pair for every coordinate, or one per coordinate.
    A list of pairs of another length has no feasible set for ``dim``: an error naming the
    task and the dimension."""
    def pair(p: Any, where: str) -> tuple[float, float]:
        if not (isinstance(p, list) and len(p) == 2):
            raise ConfigError(where, p, "[low, high] with low < high")
        low, high = number(p[0], f"{where}[0]"), number(p[1], f"{where}[1]")
        if not low < high:
            raise ConfigError(where, p, "[low, high] with low < high")
        return low, high

    if isinstance(raw, list) and raw and all(isinstance(v, list) for v in raw):
        if len(raw) != dim:
            raise ConfigError(path, raw, f"one [low, high] pair, or {dim} (one per coordinate): "
                                         f"task {task!r} has no feasible set for dim = {dim}")
        return tuple(pair(p, f"{path}[{i}]") for i, p in enumerate(raw))
    return (pair(raw, path),) * dim


# the fields of a table, in order, with their defaults (what optbench list tasks shows)
ONLINE_LINEAR_FIELDS = {
    "coefficients": registry.Rule("required: a non-empty list of numbers"),
    "dim": 1,
    "bounds": [-1.0, 1.0],
    "start": registry.Rule("the centre of bounds"),
    "name": "online-linear",
}


def parse_online_linear(raw: Mapping[str, Any], path: str) -> OnlineLinearConfig:
    table(raw, path, ONLINE_LINEAR_FIELDS)
    get = {**registry.literal_defaults(ONLINE_LINEAR_FIELDS), **raw}.get
    task = name(get("name"), f"{path}.name")
    coefficients = raw.get("coefficients")
    if not (isinstance(coefficients, list) and coefficients):
        raise ConfigError(f"{path}.coefficients", coefficients,
                          "a non-empty list of numbers (c_t cycles through them)")
    coefficients = tuple(number(c, f"{path}.coefficients[{i}]")
                         for i, c in enumerate(coefficients))
    dim = integer(get("dim"), f"{path}.dim", 1)
    bounds = _bounds(get("bounds"), f"{path}.bounds", dim, task)
    centre = tuple((low + high) / 2 for low, high in bounds)
    start = _point(raw.get("start", list(centre)), f"{path}.start", dim)
    for i, (x, (low, high)) in enumerate(zip(start, bounds, strict=True)):
        if not low <= x <= high:
            raise ConfigError(f"{path}.start", list(start),
                              f"a point in the feasible box (coordinate {i}: [{low:g}, {high:g}])")
    return OnlineLinearConfig(coefficients, bounds, start, task)


@dataclass(frozen=True)
class OnlineLinearProgram:
    """``f_t(x) = c_t * sum(x)`` on a box, ``c_t = coefficients[step mod period]``.

    Scored on the average loss ``F(x) = mean(c) * sum(x)`` over one period: its gap
    ``F(x) - min_box F`` is ``f_gap``; ``x_mean`` is the mean coordinate. Everything it reads
    is in ``args``, so it has no fields.
    """

    metric: ClassVar[str] = "f_gap"
    maximize: ClassVar[bool] = False
    per_step_metric: ClassVar[bool] = False

    def init(self, args, key: jax.Array, start_index: jax.Array) -> jax.Array:
        return args["start"]

    def loss_and_grad(self, args, params: jax.Array, key: jax.Array, step: jax.Array
                      ) -> tuple[jax.Array, jax.Array]:
        coefficients = args["coefficients"]
        c = coefficients[step % coefficients.shape[0]]
        return c * jnp.sum(params), jnp.full_like(params, c)

    def evaluate(self, args, params: jax.Array) -> dict[str, jax.Array]:
        gap = args["mean"] * jnp.sum(params - args["best"])
        return {"f_gap": gap, "x_mean": jnp.mean(params)}

    def project(self, args, params: jax.Array) -> jax.Array:
        return jnp.clip(params, args["low"], args["high"])


@dataclass(frozen=True, eq=False)
class _ConfigTask:
    """A gallery task: its config, whose data are all the program reads."""

    n_starts: ClassVar[int] = 1
    kind: ClassVar[str]
    config: Any

    @property
    def name(self) -> str:
        return self.config.name

    def describe(self) -> dict:
        return {"task": self.name, "kind": self.kind, "dim": self.config.dim}


@dataclass(frozen=True, eq=False)
class OnlineLinearTask(_ConfigTask):
    """An :class:`OnlineLinearProgram` with its coefficients, box and start."""

    kind: ClassVar[str] = "online-linear"
    metric: ClassVar[str] = OnlineLinearProgram.metric
    maximize: ClassVar[bool] = OnlineLinearProgram.maximize

    def program(self, gradient_source: str) -> OnlineLinearProgram:
        return OnlineLinearProgram()

    def args(self, gradient_source: str) -> dict[str, np.ndarray]:
        low, high = np.asarray(self.config.bounds, float).T
        mean = float(np.mean(self.config.coefficients))
        return {"coefficients": np.asarray(self.config.coefficients, float),
                "mean": np.float64(mean), "low": low, "high": high,
                "best": np.where(mean > 0, low, high), "start": np.asarray(self.config.start)}


# --------------------------------------------------------------------------------------
# moving-target
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MovingTargetConfig:
    """One ``[[tasks]]`` table of kind ``moving-target``."""

    kind: ClassVar[str] = "moving-target"
    before: tuple[float, ...]
    after: tuple[float, ...]
    jump_step: int
    start: tuple[float, ...]
    name: str = "moving-target"

    n_starts: ClassVar[int] = 1

    @property
    def dim(self) -> int:
        return len(self.before)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "dim": self.dim, "before": list(self.before),
                "after": list(self.after), "jump_step": self.jump_step,
                "start": list(self.start), "name": self.name}


MOVING_TARGET_FIELDS = {
    "dim": 2,
    "before": 0.0,
    "after": 1.0,
    "jump_step": registry.REQUIRED,
    "start": 0.0,
    "name": "moving-target",
}


def parse_moving_target(raw: Mapping[str, Any], path: str) -> MovingTargetConfig:
    table(raw, path, MOVING_TARGET_FIELDS)
    get = {**registry.literal_defaults(MOVING_TARGET_FIELDS), **raw}.get
    dim = integer(get("dim"), f"{path}.dim", 1)
    return MovingTargetConfig(
        before=_point(get("before"), f"{path}.before", dim),
        after=_point(get("after"), f"{path}.after", dim),
        jump_step=integer(get("jump_step"), f"{path}.jump_step", 1),
        start=_point(get("start"), f"{path}.start", dim),
        name=name(get("name"), f"{path}.name"),
    )


@dataclass(frozen=True)
class MovingTargetProgram:
    """``f_t(x) = |x - c_t|^2 / 2``, ``c_t = before`` for ``step < jump_step``, else ``after``.

    Scored on the final objective: ``f_gap = |x - after|^2 / 2``; ``distance`` is
    ``|x - after|`` and ``distance_before`` is ``|x - before|``. Everything it reads is in
    ``args``, so it has no fields.
    """

    metric: ClassVar[str] = "f_gap"
    maximize: ClassVar[bool] = False
    per_step_metric: ClassVar[bool] = False

    def init(self, args, key: jax.Array, start_index: jax.Array) -> jax.Array:
        return args["start"]

    def loss_and_grad(self, args, params: jax.Array, key: jax.Array, step: jax.Array
                      ) -> tuple[jax.Array, jax.Array]:
        target = jnp.where(step < args["jump_step"], args["before"], args["after"])
        residual = params - target
        return 0.5 * jnp.sum(residual**2), residual

    def evaluate(self, args, params: jax.Array) -> dict[str, jax.Array]:
        return {"f_gap": 0.5 * jnp.sum((params - args["after"]) ** 2),
                "distance": jnp.linalg.norm(params - args["after"]),
                "distance_before": jnp.linalg.norm(params - args["before"])}

    def project(self, args, params: jax.Array) -> jax.Array:
        return params


@dataclass(frozen=True, eq=False)
class MovingTargetTask(_ConfigTask):
    """A :class:`MovingTargetProgram` with its two minima, jump step and start."""

    kind: ClassVar[str] = "moving-target"
    metric: ClassVar[str] = MovingTargetProgram.metric
    maximize: ClassVar[bool] = MovingTargetProgram.maximize

    def program(self, gradient_source: str) -> MovingTargetProgram:
        return MovingTargetProgram()

    def args(self, gradient_source: str) -> dict[str, np.ndarray]:
        c = self.config
        return {"before": np.asarray(c.before), "after": np.asarray(c.after),
                "jump_step": np.int32(c.jump_step), "start": np.asarray(c.start)}


def _build(task_type):
    def build(configs: Sequence[Any]) -> list:
        return [task_type(c) for c in configs]
    return build


ONLINE_LINEAR = registry.register(registry.TaskKind(
    name="online-linear",
    description="f_t(x) = c_t sum(x), c_t cycling through `coefficients`, projected onto a "
                "box (Reddi et al. 2018)",
    parse=parse_online_linear,
    build=_build(OnlineLinearTask),
    fields=lambda: ONLINE_LINEAR_FIELDS,
))

MOVING_TARGET = registry.register(registry.TaskKind(
    name="moving-target",
    description="|x - c_t|^2 / 2 whose minimum jumps from `before` to `after` at `jump_step`",
    parse=parse_moving_target,
    build=_build(MovingTargetTask),
    fields=lambda: MOVING_TARGET_FIELDS,
))
