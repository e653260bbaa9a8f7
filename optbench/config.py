"""Sweep configuration: TOML (or a plain dict) validated into typed, frozen objects.

Every error names the source, the field path, what was found and what is allowed, in one
line, e.g. ``lr.toml: optimizers.adam.learning_rate.logspace: found [1, 2]; allowed
[lo, hi, n] (exponents of 10 and a count >= 1)``. Unknown keys are errors.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

import landscapes
from optbench import optimizers
from optbench.errors import OptbenchError

DEFAULT_TARGETS = tuple(10.0**-k for k in range(1, 9))  # COCO's ladder 1e-1 ... 1e-8
MAX_SEED = 2**31 - 1  # seeds are int32 on the device
MAX_SEEDS = 10**6  # a seed count above this is surely a typo
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


UNKNOWN_KEY = object()  # ``found`` of an error about a key that is not allowed at all


class ConfigError(OptbenchError, ValueError):
    """A configuration error at a field path; ``str()`` is the one-line message."""

    def __init__(self, path: str, found: Any, allowed: str, source: str = "config"):
        self.path, self.found, self.allowed, self.source = path, found, allowed, source
        what = "unknown key" if found is UNKNOWN_KEY else f"found {found!r}"
        super().__init__(f"{source}: {path}: {what}; allowed {allowed}")

    def with_source(self, source: str) -> ConfigError:
        return ConfigError(self.path, self.found, self.allowed, source)


@dataclass(frozen=True)
class TaskConfig:
    """One synthetic-surface task."""

    landscape: str
    dim: int
    params: Mapping[str, Any] = field(default_factory=dict)
    start: str | tuple[tuple[float, ...], ...] = "default"  # "default", "random" or points
    starts: int = 1  # how many random starts (with start = "random")
    noise: float = 0.0  # per-sample gradient noise scale
    batch_size: int = 16  # samples per mini-batch (for the noise model)
    name: str = ""


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer and the grid of each hyperparameter (defaults fill the rest)."""

    label: str
    optimizer: str
    grid: Mapping[str, tuple[float, ...]]


@dataclass(frozen=True)
class SweepConfig:
    name: str
    tasks: tuple[TaskConfig, ...]
    optimizers: tuple[OptimizerConfig, ...]
    seeds: tuple[int, ...] = (0,)
    steps: int = 1000
    record_every: int = 10
    targets: tuple[float, ...] = DEFAULT_TARGETS
    float64: bool = False
    divergence_threshold: float = 1e10
    max_memory_mb: float = 512.0

    def to_dict(self) -> dict:
        """The normalized config in the structure of the TOML file, every default spelled
        out: ``meta.json`` stores it, the hash covers it, and ``parse`` reads it back."""
        data = asdict(self)
        data["optimizers"] = {o.label: {"optimizer": o.optimizer, **{k: list(v) for k, v in
                                                                   o.grid.items()}}
                              for o in self.optimizers}
        return json.loads(json.dumps(data))

    def digest(self) -> str:
        """A hash of the normalized config: equal configs share it, whatever their spelling.
        ``max_memory_mb`` is left out: it changes how runs are chunked, not their results."""
        data = {k: v for k, v in self.to_dict().items() if k != "max_memory_mb"}
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def optimizer_steps(self) -> int:
        """Total optimizer steps the sweep would run."""
        runs_per_task = sum(math.prod(len(v) for v in o.grid.values()) for o in self.optimizers)
        starts = sum(t.starts if t.start == "random" else
                     (1 if t.start == "default" else len(t.start)) for t in self.tasks)
        return runs_per_task * starts * len(self.seeds) * self.steps


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


def example_names() -> tuple[str, ...]:
    """The example configs shipped inside the package."""
    folder = resources.files("optbench") / "examples"
    return tuple(sorted(p.name.removesuffix(".toml") for p in folder.iterdir()
                        if p.name.endswith(".toml")))


def example(name: str) -> SweepConfig:
    """A shipped example config by name (``optbench sweep --example NAME``)."""
    if name not in example_names():
        raise ConfigError("--example", name, f"one of {', '.join(example_names())}",
                          "optbench sweep")
    with resources.as_file(resources.files("optbench") / "examples" / f"{name}.toml") as path:
        return load(path)


def load(path: str | Path) -> SweepConfig:
    """Read and validate a TOML sweep config; its name defaults to the file's stem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("(file)", str(path), "an existing TOML file", str(path)) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("(syntax)", str(error), "valid TOML", path.name) from None
    raw.setdefault("name", path.stem)
    return parse(raw, source=path.name)


def parse(raw: Mapping[str, Any], source: str = "config") -> SweepConfig:
    """Validate a config given as a dict (the same structure as the TOML file)."""
    try:
        return _sweep(raw)
    except ConfigError as error:
        raise error.with_source(source) from None


_SWEEP_KEYS = {"name", "tasks", "optimizers", "seeds", "steps", "record_every", "targets",
               "float64", "divergence_threshold", "max_memory_mb"}


def _sweep(raw: Mapping[str, Any]) -> SweepConfig:
    _table(raw, "(top level)", _SWEEP_KEYS)
    name = raw.get("name", "sweep")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError("name", name, "letters, digits, '_', '.', '-' (a folder name)")
    steps = _int(raw.get("steps", 1000), "steps", 1)
    record_every = _int(raw.get("record_every", min(10, steps)), "record_every", 1)
    if record_every > steps:
        raise ConfigError("record_every", record_every, f"an integer in [1, steps={steps}]")
    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, list):
        seeds = tuple(_int(s, f"seeds[{i}]", 0, MAX_SEED) for i, s in enumerate(seeds_raw))
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError("seeds", seeds_raw, "a non-empty list of distinct integers >= 0")
    else:
        seeds = tuple(range(_int(seeds_raw, "seeds", 1, MAX_SEEDS)))
    targets_raw = raw.get("targets", list(DEFAULT_TARGETS))
    if not isinstance(targets_raw, list) or not targets_raw:
        raise ConfigError("targets", targets_raw, "a non-empty list of positive numbers")
    targets = tuple(sorted({_float(t, f"targets[{i}]", low=0.0, low_open=True)
                            for i, t in enumerate(targets_raw)}, reverse=True))
    tasks_raw = raw.get("tasks")
    if not isinstance(tasks_raw, list) or not tasks_raw:
        raise ConfigError("tasks", tasks_raw, "a non-empty list of tables ([[tasks]])")
    tasks = tuple(_task(t, f"tasks[{i}]") for i, t in enumerate(tasks_raw))
    _unique([t.name.lower() for t in tasks], "tasks",
            "distinct task names, ignoring case (set `name` to tell them apart)")
    optimizers_raw = raw.get("optimizers")
    if not isinstance(optimizers_raw, Mapping) or not optimizers_raw:
        raise ConfigError("optimizers", optimizers_raw,
                          f"a table of optimizers, e.g. [optimizers.adam]; names: "
                          f"{', '.join(optimizers.names())}")
    opts = tuple(_optimizer(label, o) for label, o in optimizers_raw.items())
    _unique([o.label.lower() for o in opts], "optimizers", "distinct labels, ignoring case")
    float64 = raw.get("float64", False)
    if not isinstance(float64, bool):
        raise ConfigError("float64", float64, "true or false")
    return SweepConfig(
        name=name,
        tasks=tasks,
        optimizers=opts,
        seeds=seeds,
        steps=steps,
        record_every=record_every,
        targets=targets,
        float64=float64,
        divergence_threshold=_float(raw.get("divergence_threshold", 1e10),
                                    "divergence_threshold", low=0.0, low_open=True),
        max_memory_mb=_float(raw.get("max_memory_mb", 512.0), "max_memory_mb", low=1.0),
    )


_TASK_KEYS = {"landscape", "dim", "params", "start", "starts", "noise", "batch_size", "name"}


def _task(raw: Any, path: str) -> TaskConfig:
    _table(raw, path, _TASK_KEYS)
    name = raw.get("landscape")
    if name not in landscapes.names():
        raise ConfigError(f"{path}.landscape", name, f"one of {', '.join(landscapes.names())}")
    params = raw.get("params", {})
    _table(params, f"{path}.params", None)
    try:
        surface = landscapes.get(name, raw.get("dim"), **params)
    except landscapes.LandscapeError as error:
        found = error.found if error.found is not landscapes.base.UNKNOWN else UNKNOWN_KEY
        raise ConfigError(f"{path}.{error.field}", found, error.allowed) from None
    start = _start(raw.get("start", "default"), f"{path}.start", surface)
    n_random = _int(raw.get("starts", 1), f"{path}.starts", 1)
    if n_random > 1 and start != "random":
        raise ConfigError(f"{path}.starts", n_random, '1 unless start = "random"')
    label = raw.get("name", f"{name}-{surface.dim}d")
    if not isinstance(label, str) or not _NAME.match(label) or "__" in label:
        raise ConfigError(f"{path}.name", label, "letters, digits, '_', '.', '-' without '__'")
    return TaskConfig(
        landscape=name,
        dim=surface.dim,
        params=dict(surface.params),
        start=start,
        starts=n_random,
        noise=_float(raw.get("noise", 0.0), f"{path}.noise", low=0.0),
        batch_size=_int(raw.get("batch_size", 16), f"{path}.batch_size", 1),
        name=label,
    )


def _start(raw: Any, path: str, surface: landscapes.Landscape):
    allowed = (f'"default", "random", a point of {surface.dim} numbers, '
               f"or a list of such points")
    if raw in ("default", "random"):
        return raw
    points = raw
    if isinstance(raw, list) and raw and all(isinstance(v, int | float) for v in raw):
        points = [raw]
    if (isinstance(points, list) and points and all(isinstance(p, list) for p in points)
            and all(len(p) == surface.dim for p in points)):
        return tuple(tuple(_float(v, f"{path}[{i}]") for v in p) for i, p in enumerate(points))
    raise ConfigError(path, raw, allowed)


def _optimizer(label: str, raw: Any) -> OptimizerConfig:
    path = f"optimizers.{label}"
    if not _NAME.match(label) or "__" in label:
        raise ConfigError(path, label, "a label of letters, digits, '_', '.', '-' without '__'")
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "a table of hyperparameter grids")
    name = raw.get("optimizer", label)
    if name not in optimizers.names():
        where = f"{path}.optimizer" if "optimizer" in raw else path
        raise ConfigError(where, name, f"one of {', '.join(optimizers.names())}")
    spec = optimizers.get(name)
    _table(raw, path, set(spec.defaults) | {"optimizer"})
    grid = {}
    for hparam, default in spec.defaults.items():
        values = _grid(raw.get(hparam, default), f"{path}.{hparam}")
        for value in values:
            try:
                spec.ranges[hparam].check(hparam, value)
            except ValueError:
                raise ConfigError(f"{path}.{hparam}", value,
                                  f"values in {spec.ranges[hparam]}") from None
        grid[hparam] = values
    return OptimizerConfig(label=label, optimizer=name, grid=grid)


def _grid(raw: Any, path: str) -> tuple[float, ...]:
    """A number, a list of numbers, {logspace = [lo, hi, n]} or {linspace = [lo, hi, n]}."""
    if isinstance(raw, Mapping):
        _table(raw, path, {"logspace", "linspace"})
        if len(raw) != 1:
            raise ConfigError(path, dict(raw), "exactly one of logspace or linspace")
        (kind, spec), = raw.items()
        allowed = ("[lo, hi, n] (exponents of 10 and a count >= 1)" if kind == "logspace"
                   else "[lo, hi, n] (bounds and a count >= 1)")
        if not (isinstance(spec, list) and len(spec) == 3):
            raise ConfigError(f"{path}.{kind}", spec, allowed)
        lo = _float(spec[0], f"{path}.{kind}[0]")
        hi = _float(spec[1], f"{path}.{kind}[1]")
        n = _int(spec[2], f"{path}.{kind}[2]", 1)
        values = np.logspace(lo, hi, n) if kind == "logspace" else np.linspace(lo, hi, n)
        values = tuple(float(v) for v in values)
        _unique(values, f"{path}.{kind}", "lo != hi when n > 1 (distinct values)")
        return values
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(path, raw, "a non-empty list of numbers")
        values = tuple(_float(v, f"{path}[{i}]") for i, v in enumerate(raw))
        _unique(values, path, "distinct values")
        return values
    return (_float(raw, path),)


# --------------------------------------------------------------------------------------
# Small validators
# --------------------------------------------------------------------------------------


def _table(raw: Any, path: str, keys: set[str] | None) -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "a table")
    if keys is not None:
        for key in raw:
            if key not in keys:
                raise ConfigError(f"{path}.{key}" if path != "(top level)" else key,
                                  UNKNOWN_KEY, f"keys {', '.join(sorted(keys))}")


def _int(raw: Any, path: str, low: int, high: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low or (high and raw > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ConfigError(path, raw, allowed)
    return raw


def _float(raw: Any, path: str, low: float = -math.inf, low_open: bool = False) -> float:
    ok = isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)
    if ok and (raw > low if low_open else raw >= low):
        return float(raw)
    bound = "" if low == -math.inf else f" {'>' if low_open else '>='} {low:g}"
    raise ConfigError(path, raw, f"a finite number{bound}")


def _unique(values, path: str, what: str) -> None:
    if len(set(values)) != len(values):
        raise ConfigError(path, list(values), what)
