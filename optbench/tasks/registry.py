"""The task registry: each task kind parses its own ``[[tasks]]`` fields and builds its tasks,
so that a new kind plugs in without touching the engine or the config parser's core."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optbench.tasks.base import Task
from optbench.validate import ConfigError

DEFAULT_KIND = "surface"


@dataclass(frozen=True)
class TaskKind:
    """A kind of task: how a ``[[tasks]]`` table becomes a config, and configs become tasks.

    ``parse(raw, path)`` validates a table (without its ``kind`` key) into a frozen config with
    a ``name`` field and ``to_dict()``, raising :class:`~optbench.validate.ConfigError` at
    ``path``. ``build(configs)`` turns every config of this kind in a sweep into tasks, in
    order; seeing them together lets a kind share programs between its tasks.
    """

    name: str
    description: str
    parse: Callable[[Mapping[str, Any], str], Any]
    build: Callable[[Sequence[Any]], list[Task]]


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


def parse(raw: Any, path: str) -> Any:
    """A ``[[tasks]]`` table -> its kind's config (``kind = "surface"`` by default)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "a table")
    kind = get(raw.get("kind", DEFAULT_KIND), f"{path}.kind")
    return kind.parse({k: v for k, v in raw.items() if k != "kind"}, path)


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
    """Import the modules that register the shipped kinds (on first use, not at import)."""
    import optbench.tasks.network  # noqa: F401
    import optbench.tasks.surface  # noqa: F401  (registered first, by optbench.tasks itself)
    from optbench.gallery import tasks as _gallery_tasks  # noqa: F401
