"""Sweep configuration: TOML (or a plain dict) validated into typed, frozen objects.

Every error names the source, the field path, what was found and what is allowed, in one
line (see :mod:`optbench.validate`). Unknown keys are errors. Each ``[[tasks]]`` table is
parsed by its kind (``kind = "surface"`` by default; :mod:`optbench.tasks.registry`); it may
also set its own ``steps``, ``record_every``, ``targets``, ``optimizers`` and ``grids`` (a
:class:`TaskPlan`), so that one sweep gives a network and a surface each a fitting budget,
and each task its own hyperparameters (``optbench sweep --best-of``).
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from optbench import optimizers, validate
from optbench.optimizers import optax_adapter
from optbench.optimizers.schedule import LR_DECAY, LR_DECAY_RANGE
from optbench.tasks import registry as task_registry
from optbench.validate import UNKNOWN_KEY, ConfigError  # noqa: F401  (re-exported)

DEFAULT_TARGETS = tuple(10.0**-k for k in range(1, 9))  # COCO's ladder 1e-1 ... 1e-8
MAX_SEED = 2**31 - 1  # seeds are int32 on the device
MAX_SEEDS = 10**6  # a seed count above this is surely a typo


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer and the grid of each hyperparameter (defaults fill the rest).

    ``optimizer`` is a registry name or a factory ``module:function`` (``optax:lion`` for
    ``optax = "lion"``); a factory's ``options`` (flags, integers) are compiled in."""

    label: str
    optimizer: str
    grid: Mapping[str, tuple[float, ...]]
    options: Mapping[str, bool | int] = field(default_factory=dict)

    @property
    def spec(self) -> optimizers.OptimizerSpec:
        """The optimizer this entry runs."""
        return optimizers.resolve(self.optimizer, self.options)


@dataclass(frozen=True)
class TaskPlan:
    """What a ``[[tasks]]`` table sets for its own blocks in place of the sweep's settings
    (``None``: the sweep's): the step budget, the record interval, the targets (a network's
    are accuracies, a surface's gaps f - f*), and the optimizer labels that run on it."""

    steps: int | None = None
    record_every: int | None = None
    targets: tuple[float, ...] | None = None
    optimizers: tuple[str, ...] | None = None
    # an optimizer's grids on this task, in place of the sweep's (same hyperparameters)
    grids: Mapping[str, OptimizerConfig] | None = None

    def to_dict(self) -> dict:
        """The keys that were set, as the ``[[tasks]]`` table spells them."""
        data = {k: list(v) if isinstance(v, tuple) else v
                for k, v in asdict(self).items() if v is not None and k != "grids"}
        if self.grids:
            data["grids"] = {label: {k: list(v) for k, v in o.grid.items()}
                             for label, o in self.grids.items()}
        return data


PLAN_KEYS = tuple(f.name for f in fields(TaskPlan))


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep. ``tasks`` holds each task kind's own config (e.g.
    :class:`optbench.tasks.SurfaceConfig`); ``record_every = None`` records on a log-linear
    schedule of at most ``max_records`` points."""

    name: str
    tasks: tuple[Any, ...]
    optimizers: tuple[OptimizerConfig, ...]
    seeds: tuple[int, ...] = (0,)
    steps: int = 1000
    record_every: int | None = None
    max_records: int = 200
    targets: tuple[float, ...] = DEFAULT_TARGETS
    float64: bool = False
    divergence_threshold: float = 1e10
    max_memory_mb: float = 512.0
    csv: bool = False  # CSV copies of curves and trajectories beside the parquet files
    compile_cache: bool | str = True  # JAX's persistent cache: the user cache folder, a
    # folder, or false (see optbench.engine.run.use_compilation_cache)
    # true: each run's final parameters (params/<block>.npz); "best": those, and the path of
    # parameters at the record points of the block's best setting (params/<block>.path.npz)
    keep_params: bool | str = False
    plans: tuple[TaskPlan, ...] = ()  # one per task (none: every task uses the sweep's)

    def to_dict(self) -> dict:
        """The normalized config in the structure of the TOML file, every default spelled
        out: ``meta.json`` stores it, the hash covers it, and ``parse`` reads it back."""
        data = asdict(self)
        del data["plans"]  # written into each task's table
        data["tasks"] = [{**t.to_dict(), **p.to_dict()}
                         for t, p in zip(self.tasks, self._plans, strict=True)]
        data["optimizers"] = {o.label: {"optimizer": o.optimizer, **o.options,
                                        **{k: list(v) for k, v in o.grid.items()}}
                              for o in self.optimizers}
        return json.loads(json.dumps(data))

    def digest(self) -> str:
        """A hash of the normalized config: equal configs share it, whatever their spelling.
        Settings that change how a sweep runs or what copies it writes, not its results,
        are left out."""
        data = {k: v for k, v in self.to_dict().items() if k not in _NOT_HASHED}
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def plan(self, task_name: str) -> TaskPlan:
        """The settings of ``task_name``'s blocks, every field resolved (its own or the
        sweep's)."""
        own = dict(zip((t.name for t in self.tasks), self._plans, strict=True))[task_name]
        return TaskPlan(
            steps=self.steps if own.steps is None else own.steps,
            record_every=self.record_every if own.record_every is None else own.record_every,
            targets=self.targets if own.targets is None else own.targets,
            optimizers=(tuple(o.label for o in self.optimizers) if own.optimizers is None
                        else own.optimizers),
            grids=own.grids or {})

    @property
    def _plans(self) -> tuple[TaskPlan, ...]:
        return self.plans or (TaskPlan(),) * len(self.tasks)

    def blocks(self) -> list[tuple[OptimizerConfig, Any]]:
        """The (optimizer, task config) pairs the sweep runs, task by task; an optimizer
        with its grids on that task where the task's table sets them."""
        pairs = []
        for t in self.tasks:
            plan = self.plan(t.name)
            pairs += [(plan.grids.get(o.label, o), t) for o in self.optimizers
                      if o.label in plan.optimizers]
        return pairs

    def optimizer_steps(self) -> int:
        """Total optimizer steps the sweep would run."""
        return sum(math.prod(len(v) for v in o.grid.values()) * t.n_starts * len(self.seeds)
                   * self.plan(t.name).steps for o, t in self.blocks())


_NOT_HASHED = ("max_memory_mb", "csv", "compile_cache", "keep_params")


def _default(field_name: str) -> Any:
    """The dataclass default of a SweepConfig field: defaults are spelled once, above."""
    (found,) = (f for f in fields(SweepConfig) if f.name == field_name)
    assert found.default is not MISSING
    return found.default


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
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("(file)", str(path), "an existing TOML file", str(path)) from None
    except IsADirectoryError:
        raise ConfigError("(file)", "a folder", "a TOML file", str(path)) from None
    except PermissionError:
        raise ConfigError("(file)", "not readable (permission denied)", "a readable TOML file",
                          str(path)) from None
    except UnicodeDecodeError as error:
        raise ConfigError("(file)", f"bytes that are not UTF-8 at byte {error.start}",
                          "a UTF-8 TOML file", str(path)) from None
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


_SWEEP_KEYS = {f.name for f in fields(SweepConfig)}


def _sweep(raw: Mapping[str, Any]) -> SweepConfig:
    validate.table(raw, "(top level)", _SWEEP_KEYS)
    sweep_name = raw.get("name", "sweep")
    if not isinstance(sweep_name, str) or not validate.NAME.match(sweep_name):
        raise ConfigError("name", sweep_name, "letters, digits, '_', '.', '-' (a folder name)")
    steps = validate.integer(raw.get("steps", _default("steps")), "steps", 1)
    record_every = raw.get("record_every", _default("record_every"))
    if record_every is not None:
        record_every = validate.integer(record_every, "record_every", 1, steps)
    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, list):
        seeds = tuple(validate.integer(s, f"seeds[{i}]", 0, MAX_SEED)
                      for i, s in enumerate(seeds_raw))
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError("seeds", seeds_raw, "a non-empty list of distinct integers >= 0")
    else:
        seeds = tuple(range(validate.integer(seeds_raw, "seeds", 1, MAX_SEEDS)))
    targets = _targets(raw.get("targets", list(_default("targets"))), "targets")
    tasks_raw = raw.get("tasks")
    if not isinstance(tasks_raw, list) or not tasks_raw:
        raise ConfigError("tasks", tasks_raw, "a non-empty list of tables ([[tasks]])")
    # (index of the table in the file, the table or one it stands for)
    tables = [(i, table) for i, t in enumerate(tasks_raw) for table in _expanded(t, i)]
    tasks = tuple(parse_task(t, f"tasks[{i}]") for i, t in tables)
    validate.unique([t.name.lower() for t in tasks], "tasks",
                    "distinct task names, ignoring case (set `name` to tell them apart)")
    optimizers_raw = raw.get("optimizers")
    if not isinstance(optimizers_raw, Mapping) or not optimizers_raw:
        raise ConfigError("optimizers", optimizers_raw,
                          f"a table of optimizers, e.g. [optimizers.adam]; names: "
                          f"{', '.join(optimizers.names())}")
    opts = tuple(_optimizer(label, o) for label, o in optimizers_raw.items())
    validate.unique([o.label.lower() for o in opts], "optimizers",
                    "distinct labels, ignoring case")
    plans = tuple(_plan(t, f"tasks[{i}]", opts, optimizers_raw) for i, t in tables)
    return SweepConfig(
        name=sweep_name,
        tasks=tasks,
        optimizers=opts,
        seeds=seeds,
        steps=steps,
        record_every=record_every,
        max_records=validate.integer(raw.get("max_records", _default("max_records")),
                                     "max_records", 2, 100_000),
        targets=targets,
        float64=validate.boolean(raw.get("float64", _default("float64")), "float64"),
        divergence_threshold=validate.number(
            raw.get("divergence_threshold", _default("divergence_threshold")),
            "divergence_threshold", low=0.0, low_open=True),
        max_memory_mb=validate.number(raw.get("max_memory_mb", _default("max_memory_mb")),
                                      "max_memory_mb", low=1.0),
        csv=validate.boolean(raw.get("csv", _default("csv")), "csv"),
        compile_cache=_compile_cache(raw.get("compile_cache", _default("compile_cache"))),
        keep_params=_keep_params(raw.get("keep_params", _default("keep_params"))),
        plans=plans if any(p != TaskPlan() for p in plans) else (),
    )


def _expanded(raw: Any, index: int) -> list[Any]:
    """``tasks[index]`` as the tables it stands for (lists in a network's knobs)."""
    try:
        return task_registry.expand(raw)
    except ConfigError as error:  # an unknown kind
        raise ConfigError(f"tasks[{index}].{error.path}", error.found, error.allowed) from None


def parse_task(raw: Any, path: str) -> Any:
    """A ``[[tasks]]`` table's kind config (its plan keys aside); a stored sweep's task is
    rebuilt from it without its optimizers' code."""
    own = raw
    if isinstance(raw, Mapping):
        own = {k: v for k, v in raw.items() if k not in PLAN_KEYS}
    try:
        return task_registry.parse(own, path)
    except ConfigError as error:
        if error.found is not UNKNOWN_KEY:
            raise
        raise ConfigError(error.path, UNKNOWN_KEY, f"{error.allowed}; and in any task "
                                                   f"{', '.join(PLAN_KEYS)}") from None


def _targets(raw: Any, path: str) -> tuple[float, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(path, raw, "a non-empty list of positive numbers")
    return tuple(sorted({validate.number(t, f"{path}[{i}]", low=0.0, low_open=True)
                         for i, t in enumerate(raw)}, reverse=True))


def _plan(raw: Mapping[str, Any], path: str, opts: tuple[OptimizerConfig, ...],
          optimizers_raw: Mapping[str, Any]) -> TaskPlan:
    """A ``[[tasks]]`` table's own steps, record_every, targets, optimizers and grids."""
    labels = [o.label for o in opts]
    steps = raw.get("steps")
    if steps is not None:
        steps = validate.integer(steps, f"{path}.steps", 1)
    record_every = raw.get("record_every")
    if record_every is not None:
        record_every = validate.integer(record_every, f"{path}.record_every", 1, steps)
    targets = raw.get("targets")
    if targets is not None:
        targets = _targets(targets, f"{path}.targets")
    chosen = raw.get("optimizers")
    if chosen is not None:
        if not (isinstance(chosen, list) and chosen and all(c in labels for c in chosen)
                and len(set(chosen)) == len(chosen)):
            raise ConfigError(f"{path}.optimizers", chosen,
                              f"a list of distinct labels of [optimizers]: {', '.join(labels)}")
        chosen = tuple(chosen)
    grids = raw.get("grids")
    if grids is not None:
        grids = _grids(grids, f"{path}.grids", opts, optimizers_raw)
    return TaskPlan(steps, record_every, targets, chosen, grids)


def _grids(raw: Any, path: str, opts: tuple[OptimizerConfig, ...],
           optimizers_raw: Mapping[str, Any]) -> dict[str, OptimizerConfig]:
    """A task's own grids: per optimizer label, values for hyperparameters of its grid,
    validated as in its ``[optimizers.LABEL]`` table."""
    by_label = {o.label: o for o in opts}
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(path, raw, "a table of optimizer labels, e.g. grids.adam = "
                                     "{ learning_rate = 0.01 }")
    out = {}
    for label, override in raw.items():
        if label not in by_label:
            raise ConfigError(f"{path}.{label}", label,
                              f"a label of [optimizers]: {', '.join(by_label)}")
        validate.table(override, f"{path}.{label}", by_label[label].grid)
        out[label] = _optimizer(label, {**optimizers_raw[label], **override},
                                f"{path}.{label}")
    return out


def _keep_params(raw: Any) -> bool | str:
    if isinstance(raw, bool) or raw == "best":
        return raw
    raise ConfigError("keep_params", raw, 'true, false or "best" (also the parameter path of '
                                          "each block's best setting)")


def _compile_cache(raw: Any) -> bool | str:
    if isinstance(raw, bool) or (isinstance(raw, str) and raw):
        return raw
    raise ConfigError("compile_cache", raw, "true, false or a folder path")


def _optimizer(label: str, raw: Any, path: str | None = None) -> OptimizerConfig:
    path = path or f"optimizers.{label}"
    if not validate.NAME.match(label) or "__" in label:
        raise ConfigError(path, label, "a label of letters, digits, '_', '.', '-' without '__'")
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "a table of hyperparameter grids")
    if "optax" in raw:
        if "optimizer" in raw:
            raise ConfigError(f"{path}.optax", raw["optax"],
                              "either optax = NAME or optimizer = ..., not both")
        if not isinstance(raw["optax"], str) or not raw["optax"]:
            raise ConfigError(f"{path}.optax", raw["optax"], _OPTAX_NAMES)
        return _factory_optimizer(label, path, "optax", raw)
    registry_name = raw.get("optimizer", label)
    if isinstance(registry_name, str) and optax_adapter.is_factory_path(registry_name):
        return _factory_optimizer(label, path, "optimizer", raw)
    if registry_name not in optimizers.names():
        where = f"{path}.optimizer" if "optimizer" in raw else path
        raise ConfigError(where, registry_name, f"one of {', '.join(optimizers.names())}, "
                          "optax = NAME, or a factory 'module:function'")
    spec = optimizers.get(registry_name)
    validate.table(raw, path, set(spec.defaults) | {"optimizer", LR_DECAY})
    hparams = {}
    for hparam, default in spec.defaults.items():
        values = validate.grid(raw.get(hparam, default), f"{path}.{hparam}")
        for value in values:
            if not spec.ranges[hparam].contains(value):
                raise ConfigError(f"{path}.{hparam}", value, f"values in {spec.ranges[hparam]}")
        hparams[hparam] = values
    return OptimizerConfig(label=label, optimizer=registry_name,
                           grid={**hparams, **_lr_decay(raw, path)})


def _lr_decay(raw: Mapping[str, Any], path: str) -> dict[str, tuple[float, ...]]:
    """The optional step-size decay ``lr_decay_power`` (lr / t**power; see
    :mod:`optbench.optimizers.schedule`) as a grid; empty when the table has none."""
    if LR_DECAY not in raw:
        return {}
    values = validate.grid(raw[LR_DECAY], f"{path}.{LR_DECAY}")
    for value in values:
        if not LR_DECAY_RANGE.contains(value):
            raise ConfigError(f"{path}.{LR_DECAY}", value, f"values in {LR_DECAY_RANGE}")
    return {LR_DECAY: values}


_OPTAX_NAMES = f"one of optax's optimizers: {', '.join(optax_adapter.optax_names())}"
_FACTORY = "a factory 'module:function' returning an optax.GradientTransformation"


def _factory_optimizer(label: str, path: str, key: str, raw: Mapping[str, Any]
                       ) -> OptimizerConfig:
    """An optax optimizer (``optax = "lion"``) or a user factory (``optimizer =
    "mypkg.opt:make"``): numbers and grids are its swept hyperparameters (data), flags and
    integer-valued arguments its options (compiled in)."""
    factory = f"{optax_adapter.OPTAX_PREFIX}{raw[key]}" if key == "optax" else raw[key]
    try:
        parameters = optax_adapter.parameters(factory)
    except optax_adapter.FactoryError as error:
        allowed = _OPTAX_NAMES if key == "optax" else _FACTORY
        raise ConfigError(f"{path}.{key}", raw[key], f"{allowed} ({error})") from None
    validate.table(raw, path, set(parameters) | {key, LR_DECAY})
    options, grid = {}, {}
    for name, value in raw.items():
        if name in (key, LR_DECAY):
            continue
        where = f"{path}.{name}"
        default = parameters[name].default
        if isinstance(default, bool) or isinstance(value, bool):
            options[name] = validate.boolean(value, where)
        elif optax_adapter.is_option(parameters[name]):
            options[name] = validate.integer(value, where, -(2**63))
        else:
            try:
                grid[name] = validate.grid(value, where)
            except ConfigError as error:
                raise ConfigError(error.path, error.found, f"{error.allowed} ({factory} takes "
                                  f"{name} as data)") from None
    missing = [n for n in optax_adapter.required(factory) if n not in raw]
    if missing:
        raise ConfigError(f"{path}.{missing[0]}", None, f"a number or a grid ({factory} "
                          f"requires {', '.join(missing)})")
    if not grid:
        raise ConfigError(path, dict(raw), f"at least one hyperparameter of {factory} to "
                          f"sweep, e.g. learning_rate; its arguments: {', '.join(parameters)}")
    try:
        optax_adapter.check(factory, options, {k: v[0] for k, v in grid.items()})
    except optax_adapter.FactoryError as error:
        raise ConfigError(f"{path}.{key}", raw[key], f"{_FACTORY} from these "
                          f"arguments ({error})") from None
    return OptimizerConfig(label=label, optimizer=factory,
                           grid={**grid, **_lr_decay(raw, path)}, options=options)
