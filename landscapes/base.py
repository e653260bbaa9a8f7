"""The `Landscape` record, surface parameters and the registry that builds landscapes by name."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optbench.errors import OptbenchError

Array = Any  # a jax or numpy array
SurfaceFn = Callable[[Array], Array]
Box = tuple[np.ndarray, np.ndarray]
Window = tuple[tuple[float, float], tuple[float, float]]

KINDS: tuple[str, ...] = ("convex", "valley", "multimodal", "saddle", "plateau")


@dataclasses.dataclass(frozen=True, eq=False)
class Landscape:
    """One test surface at a fixed dimension, with everything needed to benchmark on it.

    `fn` is a pure `jax.numpy` function that reduces over the last axis, so it takes a point of
    shape `(dim,)` (giving a scalar) or a grid of shape `(..., dim)`. It closes over its
    constants only, so it can be passed to `jax.jit`, `jax.vmap` and `jax.grad` directly.
    """

    name: str
    kind: str
    dim: int
    fn: SurfaceFn
    f_min: float  # the global minimum over `minimum_over`; -inf when unbounded below
    minimizers: tuple[np.ndarray, ...]  # every global minimizer there; () when unbounded below
    bounded: bool  # False when f is unbounded below (saddles)
    domain: Box  # (lower, upper): the box where starts are drawn and searches run
    window: Window  # ((xlo, xhi), (ylo, yhi)) to plot coordinates 1 and 2 (dim 1: only x)
    dims: tuple[int, int | None]  # supported dimensions (min_dim, max_dim); None: no upper limit
    start: np.ndarray  # a default start inside `domain`, away from every minimizer
    params: dict[str, Any]  # the surface parameters actually used
    description: str
    # where `f_min` and `minimizers` are taken: "R^dim" (the whole space, most surfaces) or
    # "domain" (the box only: McCormick is unbounded below on R^2, Branin has infinitely
    # many global minimizers on R^2)
    minimum_over: str = "R^dim"

    def __call__(self, x: Array) -> Array:
        """Evaluates the surface; same as `self.fn(x)`."""
        return self.fn(x)

    def float32_resolution(self) -> float:
        """How finely float32 resolves f - f_min near the global minimizers: the largest
        difference between f in float32 and in float64 at float32 points on and within 1e-5
        of each, and at least the rounding of f_min itself (eps |f_min|). Gaps below it are
        rounding: Goldstein-Price's terms near its minimum 3 are tens, so it resolves only
        about 1e-5. 0 where f is unbounded below (scored against 0, the saddle value)."""
        return _float32_resolution(self.name, self.dim, tuple(sorted(self.params.items())))


@functools.cache  # per surface and process: it compiles f twice
def _float32_resolution(name: str, dim: int, params: tuple) -> float:
    surface = get(name, dim, **dict(params))
    if not surface.bounded:
        return 0.0
    offsets = np.outer([0.0, 1e-7, -1e-7, 1e-6, -1e-6, 1e-5, -1e-5], np.linspace(1.0, -0.5, dim))
    points = np.concatenate([m + offsets for m in surface.minimizers]).astype(np.float32)
    f = jax.jit(surface.fn)  # compiled, as the engine evaluates it (and faster than op by op)
    single = np.asarray(f(jnp.asarray(points)), float)
    with jax.enable_x64(True):
        double = np.asarray(f(jnp.asarray(points, jnp.float64)))
    eps = float(np.finfo(np.float32).eps)
    return max(eps * abs(surface.f_min), float(np.max(np.abs(single - double))))


class Parts(NamedTuple):
    """What a surface builder returns: the dimension-dependent pieces of a `Landscape`."""

    fn: SurfaceFn
    f_min: float
    minimizers: tuple[np.ndarray, ...]
    domain: Box
    window: Window
    start: np.ndarray
    bounded: bool = True
    minimum_over: str = "R^dim"  # or "domain": see Landscape.minimum_over


@dataclasses.dataclass(frozen=True)
class Param:
    """A surface parameter: its default, how to convert a given value, and the allowed values."""

    default: Any
    convert: Callable[[Any], Any]
    check: Callable[[Any], bool]
    allowed: str  # shown in error messages, e.g. "a finite number >= 1"


def _finite_at_least_one(value: float) -> bool:
    return math.isfinite(value) and value >= 1.0


CONDITION_NUMBER = Param(100.0, float, _finite_at_least_one, "a finite number >= 1")
SEED = Param(0, operator.index, lambda value: value >= 0, "an integer >= 0")


Builder = Callable[..., Parts]


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered surface: metadata plus the builder `build(dim, **params) -> Parts`."""

    name: str
    kind: str
    description: str
    dims: tuple[int, int | None]
    default_dim: int
    params: Mapping[str, Param]
    build: Builder


UNKNOWN = object()  # ``found`` of a LandscapeError about a parameter that does not exist


class LandscapeError(OptbenchError, ValueError):
    """A bad landscape name, kind, dim or parameter. ``field`` ("name", "kind", "dim" or
    "params.<key>"), ``found`` and ``allowed`` say which, so that callers (the sweep config)
    can re-address the error without parsing its message."""

    def __init__(self, field: str, found: Any, allowed: str, message: str):
        self.field, self.found, self.allowed = field, found, allowed
        super().__init__(message)


_REGISTRY: dict[str, Entry] = {}


def register(
    name: str,
    kind: str,
    description: str,
    *,
    dims: tuple[int, int | None] = (2, 2),
    default_dim: int = 2,
    params: Mapping[str, Param] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator that adds a surface builder to the registry under `name`."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")

    def decorator(build: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"landscape {name!r} is already registered")
        entry = Entry(name, kind, description, dims, default_dim, dict(params or {}), build)
        _REGISTRY[name] = entry
        return build

    return decorator


def names(kind: str | None = None) -> tuple[str, ...]:
    """Sorted names of the registered surfaces, optionally only those of one `kind`."""
    if kind is not None and kind not in KINDS:
        raise LandscapeError("kind", kind, ", ".join(KINDS),
                             f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return tuple(sorted(n for n, e in _REGISTRY.items() if kind is None or e.kind == kind))


def defined_in(name: str) -> str:
    """The module whose builder registered the surface `name` (optbench's, or a user's)."""
    return _lookup(name).build.__module__


def parameters(name: str) -> Mapping[str, Param]:
    """The parameters the surface `name` accepts (in a sweep: its task's `params` table)."""
    return _lookup(name).params


def get(name: str, dim: int | None = None, **params: Any) -> Landscape:
    """Builds the surface `name` at dimension `dim` (default: the surface's default) with `params`.

    Raises:
      ValueError: for an unknown name, an unsupported `dim` or an unknown or invalid parameter.
    """
    entry = _lookup(name)
    dim = _check_dim(entry, entry.default_dim if dim is None else dim)
    used = _check_params(entry, params)
    parts = entry.build(dim, **used)
    return Landscape(
        name=entry.name,
        kind=entry.kind,
        dim=dim,
        fn=_with_shape_check(parts.fn, entry, dim),
        f_min=float(parts.f_min),
        minimizers=tuple(_frozen(m) for m in parts.minimizers),
        bounded=parts.bounded,
        domain=(_frozen(parts.domain[0]), _frozen(parts.domain[1])),
        window=parts.window,
        dims=entry.dims,
        start=_frozen(parts.start),
        params=used,
        description=entry.description,
        minimum_over=parts.minimum_over,
    )


def _lookup(name: str) -> Entry:
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise LandscapeError("name", name, ", ".join(names()),
                         f"unknown landscape {name!r}{hint}; valid names: {', '.join(names())}")


def _allowed_dims(dims: tuple[int, int | None]) -> str:
    low, high = dims
    if high is None:
        return f"dim >= {low}"
    return f"dim == {low}" if low == high else f"{low} <= dim <= {high}"


def _check_dim(entry: Entry, dim: Any) -> int:
    allowed = _allowed_dims(entry.dims)
    bad = LandscapeError("dim", dim, allowed,
                         f"dim={dim!r} is not supported by {entry.name!r}; allowed: {allowed}")
    if isinstance(dim, bool):
        raise bad
    try:
        dim = operator.index(dim)
    except TypeError:
        raise bad from None
    low, high = entry.dims
    if dim < low or (high is not None and dim > high):
        raise bad
    return dim


def _check_params(entry: Entry, given: Mapping[str, Any]) -> dict[str, Any]:
    """Returns every parameter of `entry`, converted and checked; defaults fill the gaps."""
    for key in given:
        if key not in entry.params:
            allowed = ", ".join(sorted(entry.params)) or "none"
            raise LandscapeError(
                f"params.{key}", UNKNOWN, f"parameters {allowed}",
                f"unknown parameter {key!r} for {entry.name!r}; allowed parameters: {allowed}")
    used = {}
    for key, param in entry.params.items():
        raw = given.get(key, param.default)
        bad = LandscapeError(f"params.{key}", raw, param.allowed,
                             f"{key}={raw!r} is invalid for {entry.name!r}; "
                             f"allowed: {param.allowed}")
        if isinstance(raw, bool):
            raise bad
        try:
            value = param.convert(raw)
        except (TypeError, ValueError):
            raise bad from None
        if not param.check(value):
            raise bad
        used[key] = value
    return used


def _frozen(values: Any) -> np.ndarray:
    """A read-only float64 copy, so that a shared `Landscape` cannot be mutated by accident."""
    out = np.array(values, dtype=np.float64)
    out.setflags(write=False)
    return out


def _with_shape_check(fn: SurfaceFn, entry: Entry, dim: int) -> SurfaceFn:
    """Wraps `fn` to promote integer inputs and reject a last axis that is not `dim`.

    The check reads only the static shape, so it costs nothing under `jax.jit`.
    """

    def checked(x: Array) -> Array:
        x = as_float(x)
        if x.ndim == 0 or x.shape[-1] != dim:
            raise ValueError(
                f"{entry.name!r} with dim={dim} expects an array of shape (..., {dim}), "
                f"got {x.shape}"
            )
        return fn(x)

    checked.__name__ = entry.name
    checked.__doc__ = entry.description
    return checked


def as_float(x: Array) -> jnp.ndarray:
    """`x` as a jax array, promoting integer or bool inputs to the default float dtype."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def const(values: Any, like: jnp.ndarray) -> jnp.ndarray:
    """A numpy constant cast to the dtype of `like`, so results follow the input precision."""
    return jnp.asarray(values, dtype=like.dtype)


def box(low: float | tuple[float, ...], high: float | tuple[float, ...], dim: int) -> Box:
    """The box `[low, high]` in `dim` dimensions, from scalars or per-coordinate tuples."""
    lower = np.broadcast_to(np.asarray(low, dtype=np.float64), (dim,))
    upper = np.broadcast_to(np.asarray(high, dtype=np.float64), (dim,))
    return lower.copy(), upper.copy()
