"""The task registry: each task kind parses its own ``[[tasks]]`` fields and builds its tasks,
so that a new kind plugs in without touching the engine or the config parser's core."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optbench.tasks.base import Task
from optbench.validate import ConfigError

DEFAULT_KIND = "surface"
CURVATURE_KEYS = ("sharpness", "hessian_trace")  # [[tasks]] keys asking for curvature


@dataclass(frozen=True)
class TaskKind:
    """A kind of task: how a ``[[tasks]]`` table becomes a config, and configs become tasks.

    ``parse(raw, path)`` validates a table (without its ``kind`` key) into a frozen config with
    a ``name`` field and ``to_dict()``, raising :class:`~optbench.validate.ConfigError` at
    ``path``. ``build(configs)`` turns every config of this kind in a sweep into tasks, in
    order; seeing them together lets a kind share programs between its tasks. A table may
    give a list of values for each field in ``sweepable``: it stands for one task per
    combination (see :func:`expand`). ``fields()`` gives each field a table accepts, in order,
    with its default (a :class:`Rule` where the default is worded or there is none), taken from
    where the kind's parser reads its defaults: ``optbench list tasks KIND`` shows them.
    """

    name: str
    description: str | Callable[[], str]  # a callable where it costs work (counting a model)
    parse: Callable[[Mapping[str, Any], str], Any]
    build: Callable[[Sequence[Any]], list[Task]]
    sweepable: tuple[str, ...] = ()
    fields: Callable[[], Mapping[str, Any]] | None = None
    # the targets of a task of this kind that sets none, where the sweep's (surface units,
    # 1e-1 ... 1e-8) would mislead: e.g. a gap whose noise reaches below the small ones
    default_targets: tuple[float, ...] | None = None
    # its programs are networks with split_loss(args, params, split) and train_loss(args,
    # params), parameters in layers: the report's loss-landscape figures (slices, PCA paths,
    # linear interpolation) apply to its tasks with kept parameters
    landscape_figures: bool = False

    def about(self) -> str:
        """The one-line description (``optbench list tasks``)."""
        return self.description() if callable(self.description) else self.description


class Rule(str):
    """A field's default in words: how it follows from other fields, or that there is none."""


REQUIRED = Rule("required")


def described(names: Sequence[str], defaults: Mapping[str, Any],
              rules: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Each field of ``names``, in order, with its rule from ``rules`` or else its default
    from ``defaults`` (:data:`REQUIRED` where neither has it)."""
    rules = rules or {}
    return {f: Rule(rules[f]) if f in rules else defaults.get(f, REQUIRED) for f in names}


def literal_defaults(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults of ``fields`` that are values (not :class:`Rule` s), for a parser."""
    return {f: v for f, v in fields.items() if not isinstance(v, Rule)}


_KINDS: dict[str, TaskKind] = {}


def register(kind: TaskKind) -> TaskKind:
    if kind.name in _KINDS:
        raise ValueError(f"task kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def names() -> tuple[str, ...]:
    _load_builtin_kinds()
    return tuple(_KINDS)


def get(name: str, path: str = "kind") -> TaskKind:
    """The kind ``name``; a :class:`ConfigError` at ``path`` listing the kinds otherwise."""
    _load_builtin_kinds()
    if not isinstance(name, str) or name not in _KINDS:
        raise ConfigError(path, name, f"one of {', '.join(_KINDS)}")
    return _KINDS[name]


def expand(raw: Any) -> list[Any]:
    """A ``[[tasks]]`` table with lists in its kind's ``sweepable`` fields as one table per
    combination, each named ``<name>-<value>-...`` after the values that vary (a number
    with its field's name, e.g. ``mnist1d-mlp-tanh-dropout0.5``); other tables as they
    are."""
    if not isinstance(raw, Mapping):
        return [raw]
    kind = get(raw.get("kind", DEFAULT_KIND), "kind")
    swept = [f for f in kind.sweepable if isinstance(raw.get(f), list) and raw[f]
             and all(isinstance(v, str | int | float) for v in raw[f])]
    if not swept:
        return [raw]
    base = raw.get("name", kind.name)
    tables = []
    for values in itertools.product(*(raw[f] for f in swept)):
        parts = [v if isinstance(v, str) else f"{f}{v}" for f, v in zip(swept, values,
                                                                       strict=True)]
        tables.append({**raw, **dict(zip(swept, values, strict=True)),
                       "name": "-".join([str(base), *map(str, parts)])})
    return tables


def parse(raw: Any, path: str) -> Any:
    """A ``[[tasks]]`` table -> its kind's config (``kind = "surface"`` by default)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "a table")
    kind = get(raw.get("kind", DEFAULT_KIND), f"{path}.kind")
    asked = [key for key in CURVATURE_KEYS if key in raw]
    if asked and not measures_curvature(kind):
        takers = ", ".join(k for k, v in _KINDS.items() if measures_curvature(v))
        raise ConfigError(f"{path}.{asked[0]}", raw[asked[0]],
                          f"only on kinds with a training loss to measure (kind {kind.name} "
                          f"has none): {takers}")
    return kind.parse({k: v for k, v in raw.items() if k != "kind"}, path)


def measures_curvature(kind: TaskKind) -> bool:
    """Whether ``kind`` takes ``sharpness`` and ``hessian_trace`` (see
    :mod:`optbench.tasks.curvature`)."""
    return kind.fields is not None and set(CURVATURE_KEYS) <= set(kind.fields())


def build(configs: Sequence[Any]) -> list[Task]:
    """Every task of a sweep, in config order; each kind builds its own configs together."""
    tasks: list[Task | None] = [None] * len(configs)
    for kind_name in dict.fromkeys(config.kind for config in configs):
        positions = [i for i, c in enumerate(configs) if c.kind == kind_name]
        built = get(kind_name).build([configs[i] for i in positions])
        for i, task in zip(positions, built, strict=True):
            tasks[i] = task
    return tasks


def _load_builtin_kinds() -> None:
    """Import every module of :mod:`optbench.tasks` (on first use, not at import): each
    registers the kinds it defines, so a new kind is a new module and nothing else."""
    import importlib
    import pkgutil

    import optbench.tasks as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
