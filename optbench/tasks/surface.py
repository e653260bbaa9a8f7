"""Synthetic surfaces from :mod:`optbench.landscapes` as tasks, with a gradient-noise model.

The noise model makes GD, SGD and mini-batch SGD differ on a surface the way they differ on
data: each sample's gradient is the true gradient plus Gaussian noise of scale ``noise``, so
one sample (SGD) sees scale ``noise``, a batch of ``batch_size`` samples sees
``noise / sqrt(batch_size)``, and the full batch (GD) sees the exact gradient.

Resolution: the value returned with each gradient is the exact objective, so surfaces are
scored at every step (``per_step_metric``). The noise scale, ``f_min``, the domain, the starts
and *which* surface runs are program arguments: the surfaces of one dimension in a sweep form a
family that one program serves, switching on the surface's index (an unbatched ``lax.switch``,
so only the chosen branch runs). A family none of whose surfaces has noise compiles no noise
code at all.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optbench import landscapes
from optbench.tasks import registry
from optbench.tasks.curvature import Curvature, curvature_of
from optbench.validate import UNKNOWN_KEY, ConfigError, boolean, integer, name, number, table


@dataclass(frozen=True)
class SurfaceConfig:
    """One ``[[tasks]]`` table of kind ``surface``."""

    kind: ClassVar[str] = "surface"
    landscape: str
    dim: int
    params: Mapping[str, Any] = field(default_factory=dict)
    start: str | tuple[tuple[float, ...], ...] = "default"  # "default", "random" or points
    starts: int = 1  # how many random starts (with start = "random")
    noise: float = 0.0  # per-sample gradient noise scale
    batch_size: int = 16  # samples per mini-batch (for the noise model)
    sharpness: bool = False  # record the top Hessian eigenvalue of f (exact, see curvature)
    hessian_trace: bool = False  # record Hutchinson's estimate of its trace
    name: str = ""

    @property
    def n_starts(self) -> int:
        if self.start == "random":
            return self.starts
        return 1 if self.start == "default" else len(self.start)

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


def field_defaults() -> dict[str, Any]:
    """Each field, in the config's order, with the dataclass's default or its rule in words
    (``optbench list tasks surface``)."""
    return registry.described(
        [f.name for f in fields(SurfaceConfig)],
        {f.name: f.default for f in fields(SurfaceConfig) if f.default is not MISSING},
        {"landscape": "required: a name from optbench list landscapes",
         "dim": "the landscape's default",
         "params": "the landscape's (optbench list landscapes)",
         "name": "<landscape>-<dim>d"})


_DEFAULTS = registry.literal_defaults(field_defaults())  # what parse fills in


def parse(raw: Mapping[str, Any], path: str) -> SurfaceConfig:
    table(raw, path, field_defaults())
    get = {**_DEFAULTS, **raw}.get
    landscape = raw.get("landscape")
    if landscape not in landscapes.names():
        raise ConfigError(f"{path}.landscape", landscape,
                          f"one of {', '.join(landscapes.names())}")
    params = table(raw.get("params", {}), f"{path}.params", None)
    try:
        surface = landscapes.get(landscape, raw.get("dim"), **params)
    except landscapes.LandscapeError as error:
        found = error.found if error.found is not landscapes.base.UNKNOWN else UNKNOWN_KEY
        raise ConfigError(f"{path}.{error.field}", found, error.allowed) from None
    start = _start(get("start"), f"{path}.start", surface.dim)
    n_random = integer(get("starts"), f"{path}.starts", 1)
    if n_random > 1 and start != "random":
        raise ConfigError(f"{path}.starts", n_random, '1 unless start = "random"')
    return SurfaceConfig(
        landscape=landscape,
        dim=surface.dim,
        params=dict(surface.params),
        start=start,
        starts=n_random,
        noise=number(get("noise"), f"{path}.noise", low=0.0),
        batch_size=integer(get("batch_size"), f"{path}.batch_size", 1),
        sharpness=boolean(get("sharpness"), f"{path}.sharpness"),
        hessian_trace=boolean(get("hessian_trace"), f"{path}.hessian_trace"),
        name=name(raw.get("name", f"{landscape}-{surface.dim}d"), f"{path}.name"),
    )


def _start(raw: Any, path: str, dim: int):
    if raw in ("default", "random"):
        return raw
    points = [raw] if (isinstance(raw, list) and raw
                       and all(isinstance(v, int | float) for v in raw)) else raw
    if (isinstance(points, list) and points and all(isinstance(p, list) for p in points)
            and all(len(p) == dim for p in points)):
        return tuple(tuple(number(v, f"{path}[{i}]") for v in p) for i, p in enumerate(points))
    raise ConfigError(path, raw, f'"default", "random", a point of {dim} numbers, '
                                 "or a list of such points")


def _identity(surface: landscapes.Landscape) -> tuple:
    return surface.name, surface.dim, tuple(sorted(surface.params.items()))


@functools.cache
def _surface(identity: tuple) -> landscapes.Landscape:
    name, dim, params = identity
    return landscapes.get(name, dim, **dict(params))


@dataclass(frozen=True)
class SurfaceProgram:
    """What a surface's compiled program reads (see :class:`~optbench.tasks.base.Program`):
    the surfaces of its family, by identity (name, dimension, parameters). Which of them
    runs, ``f_min``, the noise scale and the starts are in ``args``."""

    metric: ClassVar[str] = "f_gap"
    maximize: ClassVar[bool] = False
    per_step_metric: ClassVar[bool] = True
    family: tuple[tuple, ...]  # the identities of the surfaces sharing the program
    curvature: Curvature | None = None  # what record points measure of f's Hessian
    noisy: bool | None = None  # whether gradients get noise; None: as args' scale says
    confined: bool = False  # whether some surface of the family keeps its runs in its domain

    @property
    def dim(self) -> int:
        return self.family[0][1]

    def value(self, args, params: jax.Array) -> jax.Array:
        """f(params) - f_min, on whichever surface of the family ``args`` names."""
        branches = [_surface(identity).fn for identity in self.family]
        f = branches[0](params) if len(branches) == 1 else jax.lax.switch(
            args["index"], branches, params)
        return f - args["f_min"]

    @property
    def _noise_cases(self) -> tuple[bool, ...]:
        return (False, True) if self.noisy is None else (self.noisy,)

    def members(self) -> tuple[SurfaceProgram, ...]:
        """One program per surface of the family and noise (each computing only its own
        surface, drawing noise or not), for the engine to choose among once per run
        (``member_index``) instead of in every step."""
        return tuple(replace(self, family=(identity,), noisy=noisy,
                             confined=confined(_surface(identity)))
                     for identity in self.family for noisy in self._noise_cases)

    def member_index(self, args) -> jax.Array:
        if self.noisy is not None:
            return args["index"]
        return 2 * args["index"] + (args["noise"] > 0)

    def train_loss(self, args, params: jax.Array) -> jax.Array:
        """The noise-free objective, whose Hessian the curvature metrics measure."""
        return self.value(args, params)

    def init(self, args, key: jax.Array, start_index: jax.Array) -> jax.Array:
        """A fixed start, or a uniform draw from the domain keyed by (seed, start index).

        The uniform numbers are drawn in float32 whatever the run's precision, so that float32
        and float64 sweeps with the same seeds start from the same points (to float32
        rounding)."""
        low, high = args["low"], args["high"]
        u = jax.random.uniform(jax.random.fold_in(key, start_index), (self.dim,), jnp.float32)
        drawn = low + u.astype(low.dtype) * (high - low)
        fixed = jnp.take(args["starts"], start_index, axis=0, mode="clip")
        return jnp.where(args["random"], drawn, fixed)

    def loss_and_grad(self, args, params: jax.Array, key: jax.Array, step: jax.Array
                      ) -> tuple[jax.Array, jax.Array]:
        """The exact f - f_min and the gradient plus noise of the source's scale (in args).

        The scale is the same for every run of a block, so the ``lax.cond`` stays a branch
        under ``vmap``: noise-free blocks (GD) skip drawing random numbers, which costs more
        than a 2-D surface's gradient."""
        value, grad = jax.value_and_grad(self.value, argnums=1)(args, params)

        def add_noise(g):
            normal = jax.random.normal(jax.random.fold_in(key, step), g.shape, g.dtype)
            return g + args["noise"] * normal

        if self.noisy is None:
            return value, jax.lax.cond(args["noise"] > 0, add_noise, lambda g: g, grad)
        return value, add_noise(grad) if self.noisy else grad

    def evaluate(self, args, params: jax.Array) -> dict[str, jax.Array]:
        return {"f_gap": self.value(args, params)}

    def project(self, args, params: jax.Array) -> jax.Array:
        """Each update clipped to the domain on a surface whose f_min is the minimum there
        (``args["confined"]``): beyond it McCormick falls without bound, and f - f_min
        would count a run that left as one better than the optimum."""
        if not self.confined:
            return params
        return jnp.where(args["confined"], jnp.clip(params, args["low"], args["high"]), params)


def confined(surface: landscapes.Landscape) -> bool:
    """Whether runs on ``surface`` stay in its domain: where its minimum is taken there."""
    return surface.minimum_over == "domain"


@dataclass(frozen=True, eq=False)
class SurfaceTask:
    """A landscape, its starts, and the scale of per-sample gradient noise.

    ``family`` lists the surfaces of this dimension that share the compiled program (by
    default just this one); ``surface`` must be among them.
    """

    kind: ClassVar[str] = "surface"
    metric: ClassVar[str] = SurfaceProgram.metric
    maximize: ClassVar[bool] = SurfaceProgram.maximize

    surface: landscapes.Landscape
    starts: np.ndarray | None = None  # (K, dim) fixed starts; None: random in the domain
    n_random_starts: int = 1
    noise: float = 0.0
    batch_size: int = 1
    label: str = ""
    family: tuple[landscapes.Landscape, ...] = ()
    curvature: Curvature | None = None
    noisy_family: bool = False  # whether any surface of the family gets gradient noise

    @property
    def name(self) -> str:
        return self.label or f"{self.surface.name}-{self.surface.dim}d"

    @property
    def dim(self) -> int:
        return self.surface.dim

    @property
    def f_min(self) -> float:
        """The minimum; 0 (the saddle value) for surfaces unbounded below, so that their
        ``f - f_min`` is f itself and reaching a target means getting below it."""
        return self.surface.f_min if self.surface.bounded else 0.0

    @property
    def n_starts(self) -> int:
        return self.n_random_starts if self.starts is None else len(self.starts)

    def program(self, gradient_source: str) -> SurfaceProgram:
        """The family's program: one that draws no noise where no surface of the family has
        any (the noise branch costs about a third of a surface program's compile time and a
        conditional in every step), else one whose noise scale is data."""
        noisy = None if self.noise > 0 or self.noisy_family else False
        family = self.family or (self.surface,)
        return SurfaceProgram(tuple(_identity(s) for s in family), self.curvature, noisy,
                              any(map(confined, family)))

    def args(self, gradient_source: str) -> dict[str, np.ndarray]:
        low, high = self.surface.domain
        index = self.program(gradient_source).family.index(_identity(self.surface))
        return {
            "index": np.int32(index),
            "f_min": np.float64(self.f_min),
            "noise": np.float64(self.noise_scale(gradient_source)),
            "low": np.asarray(low), "high": np.asarray(high),
            "starts": (np.zeros((1, self.dim)) if self.starts is None
                       else np.asarray(self.starts, float)),
            "random": np.bool_(self.starts is None),
            "confined": np.bool_(confined(self.surface)),
        }

    def noise_scale(self, gradient_source: str) -> float:
        """The standard deviation of the gradient noise seen by ``gradient_source``."""
        if gradient_source == "full batch":
            return 0.0
        if gradient_source == "one sample":
            return self.noise
        return self.noise / math.sqrt(self.batch_size)

    def describe(self) -> dict:
        return {"task": self.name, "kind": self.kind, "landscape": self.surface.name,
                "dim": self.dim, "noise": self.noise, "batch_size": self.batch_size,
                "bounded": self.surface.bounded}


def task_of(config: SurfaceConfig, family: tuple[landscapes.Landscape, ...] = (),
            noisy_family: bool = False) -> SurfaceTask:
    surface = landscapes.get(config.landscape, config.dim, **config.params)
    starts = None if config.start == "random" else np.asarray(
        [surface.start] if config.start == "default" else config.start, float)
    return SurfaceTask(surface, starts=starts, n_random_starts=config.starts,
                       noise=config.noise, batch_size=config.batch_size, label=config.name,
                       family=family, noisy_family=noisy_family,
                       curvature=curvature_of(config.sharpness, config.hessian_trace))


def build(configs: Sequence[SurfaceConfig]) -> list[SurfaceTask]:
    """The surfaces of each dimension form one family, so they share compiled programs."""
    surfaces = [landscapes.get(c.landscape, c.dim, **c.params) for c in configs]
    families: dict[int, dict[tuple, landscapes.Landscape]] = {}
    noisy: set[int] = set()
    for config, surface in zip(configs, surfaces, strict=True):
        families.setdefault(surface.dim, {}).setdefault(_identity(surface), surface)
        if config.noise > 0:
            noisy.add(surface.dim)
    return [task_of(c, tuple(families[s.dim].values()), s.dim in noisy)
            for c, s in zip(configs, surfaces, strict=True)]


SURFACE = registry.register(registry.TaskKind(
    name="surface",
    description="a synthetic landscape (optbench list landscapes) with optional gradient noise",
    parse=parse,
    build=build,
    fields=field_defaults,
))
