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
import itertools
import json
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from optbench import optimizers, validate
from optbench.optimizers import optax_adapter
from optbench.optimizers.schedule import LR_DECAY, LR_DECAY_RANGE
from optbench.tasks import registry as task_registry
from optbench.validate import DISTRIBUTIONS, UNKNOWN_KEY, ConfigError  # noqa: F401

DEFAULT_TARGETS = tuple(10.0**-k for k in range(1, 9))  # COCO's ladder 1e-1 ... 1e-8
MAX_SEED = 2**31 - 1  # seeds are int32 on the device
MAX_SEEDS = 10**6  # a seed count above this is surely a typo
SEARCHES = ("grid", "random", "quasirandom")  # an optimizer table's `search`
SEARCH_KEYS = ("search", "trials", "search_seed")
MAX_TRIALS = validate.MAX_GRID  # settings in one search: more is surely a typo


@dataclass(frozen=True)
class Distribution:
    """A searched hyperparameter's distribution: ``kind`` (one of ``DISTRIBUTIONS``) on
    [low, high]; ``one_minus_loguniform``'s value is 1 - x, x log-uniform (beta-like)."""

    kind: str
    low: float
    high: float

    @property
    def bounds(self) -> tuple[float, float]:
        """The least and greatest value it gives."""
        if self.kind == "one_minus_loguniform":
            return 1.0 - self.high, 1.0 - self.low
        return self.low, self.high

    def contains(self, value: float) -> bool:
        low, high = self.bounds
        return low <= value <= high

    def quantile(self, u: np.ndarray) -> np.ndarray:
        """The values at ``u`` in [0, 1) (the inverse CDF): uniform points map to samples."""
        if self.kind == "uniform":
            values = self.low + u * (self.high - self.low)
        else:
            log_low = np.log(self.low)
            x = np.exp(log_low + u * (np.log(self.high) - log_low))
            values = 1.0 - x if self.kind == "one_minus_loguniform" else x
        return np.clip(values, *self.bounds)  # rounding stays inside

    def to_dict(self) -> dict[str, list[float]]:
        return {self.kind: [self.low, self.high]}


@dataclass(frozen=True)
class Search:
    """A random or quasirandom search: ``trials`` settings of the hyperparameters in
    ``space`` drawn with ``seed`` (the same seed, the same settings)."""

    method: str  # "random" or "quasirandom"
    trials: int
    seed: int = 0
    space: Mapping[str, Distribution] = field(default_factory=dict)

    def sample(self) -> dict[str, tuple[float, ...]]:
        """Each searched hyperparameter's value in each trial. The unit cube's axes go to
        the hyperparameters in name order, which the digest's sorted keys fix too."""
        names = sorted(self.space)
        points = unit_cube(self.method, self.trials, len(names), self.seed)
        return {name: tuple(float(v) for v in self.space[name].quantile(points[:, k]))
                for k, name in enumerate(names)}

    def to_dict(self) -> dict[str, Any]:
        """Its keys in the optimizer's table (the distributions are the hyperparameters')."""
        return {"search": self.method, "trials": self.trials, "search_seed": self.seed}


def unit_cube(method: str, n: int, dims: int, seed: int) -> np.ndarray:
    """``n`` seeded points in [0, 1)^dims: a scrambled Halton sequence (quasirandom: low
    discrepancy, spread evenly for any ``n``) or independent uniform draws (random)."""
    rng = np.random.default_rng(seed)
    if method == "random":
        return rng.random((n, dims))
    from scipy.stats import qmc  # only a quasirandom search pays for importing scipy.stats

    return qmc.Halton(dims, scramble=True, rng=rng).random(n)


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer and the values of each hyperparameter (defaults fill the rest): a
    grid's axes, whose Cartesian product runs, or with a ``search`` its trials column by
    column (equal lengths, zipped).

    ``optimizer`` is a registry name or a factory ``module:function`` (``optax:lion`` for
    ``optax = "lion"``); a factory's ``options`` (flags, integers) are compiled in."""

    label: str
    optimizer: str
    grid: Mapping[str, tuple[float, ...]]
    options: Mapping[str, bool | int] = field(default_factory=dict)
    search: Search | None = None

    @property
    def spec(self) -> optimizers.OptimizerSpec:
        """The optimizer this entry runs."""
        return optimizers.resolve(self.optimizer, self.options)

    def settings(self) -> list[tuple[float, ...]]:
        """The hyperparameter combinations its block runs, each in the order of ``grid``:
        the grid's product, or the search's trials."""
        columns = self.grid.values()
        return list(zip(*columns, strict=True) if self.search else itertools.product(*columns))

    def hyperparameters(self) -> dict[str, Any]:
        """Each hyperparameter as its table spells it: a grid's list of values, or in a
        search its distribution or fixed number."""
        if self.search is None:
            return {k: list(v) for k, v in self.grid.items()}
        space = self.search.space
        return {k: space[k].to_dict() if k in space else v[0] for k, v in self.grid.items()}

    def to_dict(self) -> dict[str, Any]:
        """Its ``[optimizers.LABEL]`` table, normalized."""
        search = self.search.to_dict() if self.search else {}
        return {"optimizer": self.optimizer, **self.options, **search,
                **self.hyperparameters()}


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
            data["grids"] = {label: o.hyperparameters() for label, o in self.grids.items()}
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
    # float32 matrix products: "highest" computes them in float32 (as the CPU does), "high"
    # and "default" let a GPU use faster, less exact ones (bf16x3; TF32 or bf16)
    matmul_precision: str = "highest"
    # "step": a surface's steps to target and divergence exact to the step (its loss is the
    # score); "record": scored at the record points only, resolved to the record interval
    scoring: str = "step"
    # where a block whose optimizers share one program (a bundle) chooses its update rule and
    # surface: "step", inside every step; "run", once per run around the step loop (more to
    # compile, no conditionals in the loop); "auto": "run" on a GPU or TPU, "step" on a CPU
    branching: str = "auto"
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
        data["optimizers"] = {o.label: o.to_dict() for o in self.optimizers}
        return json.loads(json.dumps(data))

    def digest(self) -> str:
        """A hash of the normalized config: equal configs share it, whatever their spelling.
        Settings that change how a sweep runs or what copies it writes, not its results,
        are left out."""
        data = {k: v for k, v in self.to_dict().items() if k not in _NOT_HASHED
                and not (k in _HASHED_UNLESS_DEFAULT and v == _default(k))}
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def plan(self, task_name: str) -> TaskPlan:
        """The settings of ``task_name``'s blocks, every field resolved (its own, else its
        kind's default targets, else the sweep's)."""
        task = {t.name: t for t in self.tasks}[task_name]
        own = dict(zip((t.name for t in self.tasks), self._plans, strict=True))[task_name]
        kind_targets = task_registry.get(task.kind).default_targets
        return TaskPlan(
            steps=self.steps if own.steps is None else own.steps,
            record_every=self.record_every if own.record_every is None else own.record_every,
            targets=(own.targets if own.targets is not None else kind_targets or self.targets),
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
        return sum(len(o.settings()) * t.n_starts * len(self.seeds) * self.plan(t.name).steps
                   for o, t in self.blocks())


MATMUL_PRECISIONS = ("highest", "high", "default")  # jax.default_matmul_precision's
SCORINGS = ("step", "record")
BRANCHINGS = ("auto", "step", "run")
# fields added after stores were written: at their default they leave the hash as it was
_HASHED_UNLESS_DEFAULT = ("matmul_precision", "scoring")
_NOT_HASHED = ("max_memory_mb", "csv", "compile_cache", "keep_params", "branching")


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


_SWEEP_KEYS = {f.name for f in fields(SweepConfig)} - {"plans"}  # plans: from task tables
MAX_STEPS = 2**31 - 1  # the engine counts steps (record, hit and divergence steps) in int32


def _sweep(raw: Mapping[str, Any]) -> SweepConfig:
    validate.table(raw, "(top level)", _SWEEP_KEYS)
    sweep_name = raw.get("name", "sweep")
    if not isinstance(sweep_name, str) or not validate.NAME.match(sweep_name):
        raise ConfigError("name", sweep_name, "letters, digits, '_', '.', '-' (a folder name)")
    steps = validate.integer(raw.get("steps", _default("steps")), "steps", 1, MAX_STEPS)
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
        matmul_precision=validate.choice(
            raw.get("matmul_precision", _default("matmul_precision")), "matmul_precision",
            MATMUL_PRECISIONS),
        scoring=validate.choice(raw.get("scoring", _default("scoring")), "scoring", SCORINGS),
        branching=validate.choice(raw.get("branching", _default("branching")), "branching",
                                  BRANCHINGS),
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
        steps = validate.integer(steps, f"{path}.steps", 1, MAX_STEPS)
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
                                f"{path}.{label}", in_task=True)
        _check_fixed(out[label], by_label[label], override, f"{path}.{label}")
    return out


def _check_fixed(own: OptimizerConfig, sweeps: OptimizerConfig, override: Mapping[str, Any],
                 path: str) -> None:
    """A task's number for a hyperparameter its optimizer searches lies in the searched
    range: the task fixes it where the search would have looked."""
    space = sweeps.search.space if sweeps.search else {}
    for name in override:
        fixed = name in space and name not in own.search.space
        if fixed and not space[name].contains(own.grid[name][0]):
            low, high = space[name].bounds
            raise ConfigError(f"{path}.{name}", override[name],
                              f"a value in the searched range [{low:g}, {high:g}]")


def _keep_params(raw: Any) -> bool | str:
    if isinstance(raw, bool) or raw == "best":
        return raw
    raise ConfigError("keep_params", raw, 'true, false or "best" (also the parameter path of '
                                          "each block's best setting)")


def _compile_cache(raw: Any) -> bool | str:
    if isinstance(raw, bool) or (isinstance(raw, str) and raw):
        return raw
    raise ConfigError("compile_cache", raw, "true, false or a folder path")


def _optimizer(label: str, raw: Any, path: str | None = None, in_task: bool = False
               ) -> OptimizerConfig:
    """An ``[optimizers.LABEL]`` table (``in_task``: merged with a task's ``grids.LABEL``)."""
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
        return _factory_optimizer(label, path, "optax", raw, in_task)
    registry_name = raw.get("optimizer", label)
    if isinstance(registry_name, str) and optax_adapter.is_factory_path(registry_name):
        return _factory_optimizer(label, path, "optimizer", raw, in_task)
    if registry_name not in optimizers.names():
        where = f"{path}.optimizer" if "optimizer" in raw else path
        raise ConfigError(where, registry_name, f"one of {', '.join(optimizers.names())}, "
                          "optax = NAME, or a factory 'module:function'")
    spec = optimizers.get(registry_name)
    validate.table(raw, path, set(spec.defaults) | {"optimizer", LR_DECAY, *SEARCH_KEYS})
    search = _search(raw, path)
    values = {name: _values(raw.get(name, default), f"{path}.{name}", search, spec.ranges[name])
              for name, default in spec.defaults.items()}
    return _configured(label, registry_name, path, search,
                       {**values, **_lr_decay(raw, path, search)}, {}, in_task)


def _search(raw: Mapping[str, Any], path: str) -> Search | None:
    """The table's search (its space still empty), or None for a grid (the default)."""
    method = validate.choice(raw.get("search", "grid"), f"{path}.search", SEARCHES)
    if method == "grid":
        for key in SEARCH_KEYS[1:]:
            if key in raw:
                raise ConfigError(f"{path}.{key}", raw[key],
                                  'only in a search: search = "random" or "quasirandom"')
        return None
    return Search(method, validate.integer(raw.get("trials"), f"{path}.trials", 1, MAX_TRIALS),
                  validate.integer(raw.get("search_seed", 0), f"{path}.search_seed", 0,
                                   MAX_SEED))


def _values(raw: Any, path: str, search: Search | None, valid: optimizers.Range | None = None
            ) -> tuple[float, ...] | Distribution:
    """A hyperparameter's grid, or in a search its distribution or fixed number (one
    value); each value in ``valid`` when given."""
    table = isinstance(raw, Mapping)
    if search is None:
        if table and raw.keys() & set(DISTRIBUTIONS):
            raise ConfigError(path, dict(raw), 'a number, a list, logspace or linspace; a '
                              'distribution needs search = "random" or "quasirandom"')
        values = validate.grid(raw, path)
    elif isinstance(raw, list) or (table and raw.keys() & {"logspace", "linspace"}):
        raise ConfigError(path, raw, f"a number or a distribution ({', '.join(DISTRIBUTIONS)}) "
                          f"in a {search.method} search; a list, logspace or linspace is a "
                          'grid: search = "grid"')
    else:
        values = Distribution(*validate.distribution(raw, path)) if table else (
            validate.number(raw, path),)
    ends = values.bounds if isinstance(values, Distribution) else values
    for value in ends:
        if valid is not None and not valid.contains(value):
            raise ConfigError(path, raw if table else value, f"values in {valid}")
    return values


def _configured(label: str, optimizer: str, path: str, search: Search | None,
                values: Mapping[str, tuple[float, ...] | Distribution],
                options: Mapping[str, bool | int], in_task: bool) -> OptimizerConfig:
    """The optimizer's config: its grids, or its search's trials drawn from the
    distributions among ``values`` (a task that fixes them all runs one setting)."""
    if search is None:
        return OptimizerConfig(label, optimizer, dict(values), dict(options))
    space = {k: v for k, v in values.items() if isinstance(v, Distribution)}
    if not space and not in_task:
        raise ConfigError(f"{path}.search", search.method, "a search of at least one "
                          "distribution, e.g. learning_rate = { loguniform = [1e-4, 1e-1] }")
    search = replace(search, space=space)
    trials = search.sample() if space else {}
    n = search.trials if space else 1
    grid = {k: trials[k] if k in space else v * n for k, v in values.items()}
    return OptimizerConfig(label, optimizer, grid, dict(options), search)


def _lr_decay(raw: Mapping[str, Any], path: str, search: Search | None
              ) -> dict[str, tuple[float, ...] | Distribution]:
    """The optional step-size decay ``lr_decay_power`` (lr / t**power; see
    :mod:`optbench.optimizers.schedule`), swept as any hyperparameter; empty when the table
    has none."""
    if LR_DECAY not in raw:
        return {}
    return {LR_DECAY: _values(raw[LR_DECAY], f"{path}.{LR_DECAY}", search, LR_DECAY_RANGE)}


_OPTAX_NAMES = f"one of optax's optimizers: {', '.join(optax_adapter.optax_names())}"
_FACTORY = "a factory 'module:function' returning an optax.GradientTransformation"


def _factory_optimizer(label: str, path: str, key: str, raw: Mapping[str, Any],
                       in_task: bool = False) -> OptimizerConfig:
    """An optax optimizer (``optax = "lion"``) or a user factory (``optimizer =
    "mypkg.opt:make"``): numbers, grids and distributions are its swept hyperparameters
    (data), flags and integer-valued arguments its options (compiled in)."""
    factory = f"{optax_adapter.OPTAX_PREFIX}{raw[key]}" if key == "optax" else raw[key]
    try:
        parameters = optax_adapter.parameters(factory)
    except optax_adapter.FactoryError as error:
        allowed = _OPTAX_NAMES if key == "optax" else _FACTORY
        raise ConfigError(f"{path}.{key}", raw[key], f"{allowed} ({error})") from None
    validate.table(raw, path, set(parameters) | {key, LR_DECAY, *SEARCH_KEYS})
    search = _search(raw, path)
    options, grid = {}, {}
    for name, value in raw.items():
        if name in (key, LR_DECAY, *SEARCH_KEYS):
            continue
        where = f"{path}.{name}"
        default = parameters[name].default
        if isinstance(default, bool) or isinstance(value, bool):
            options[name] = validate.boolean(value, where)
        elif optax_adapter.is_option(parameters[name]):
            options[name] = validate.integer(value, where, -(2**63))
        else:
            try:
                grid[name] = _values(value, where, search)
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
    config = _configured(label, factory, path, search, {**grid, **_lr_decay(raw, path, search)},
                         options, in_task)
    try:
        optax_adapter.check(factory, options, {k: v[0] for k, v in config.grid.items()
                                               if k != LR_DECAY})
    except optax_adapter.FactoryError as error:
        raise ConfigError(f"{path}.{key}", raw[key], f"{_FACTORY} from these "
                          f"arguments ({error})") from None
    return config
