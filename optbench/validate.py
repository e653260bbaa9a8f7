"""Validation of plain-data config fields, with one-line errors that name the field path.

Every error names the source, the field path, what was found and what is allowed, e.g.
``lr.toml: optimizers.adam.learning_rate.logspace: found [1, 2]; allowed [lo, hi, n]
(exponents of 10 and a count >= 1)``. The sweep config and every task kind's parser use these
validators, so all config errors read alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from optbench.errors import OptbenchError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_GRID = 10**5  # values in one hyperparameter's grid: more is surely a typo
# a search's distributions: a hyperparameter's value is x, or 1 - x for a beta-like one
DISTRIBUTIONS = ("uniform", "loguniform", "one_minus_loguniform")
_SUPPORTS = {"uniform": "finite bounds lo < hi",
             "loguniform": "bounds 0 < lo < hi",
             "one_minus_loguniform": "bounds 0 < lo < hi < 1 (the value is 1 - x, x "
                                     "log-uniform in [lo, hi])"}
UNKNOWN_KEY = object()  # ``found`` of an error about a key that is not allowed at all


class ConfigError(OptbenchError, ValueError):
    """A configuration error at a field path; ``str()`` is the one-line message."""

    def __init__(self, path: str, found: Any, allowed: str, source: str = "config"):
        self.path, self.found, self.allowed, self.source = path, found, allowed, source
        what = "unknown key" if found is UNKNOWN_KEY else f"found {found!r}"
        super().__init__(f"{_printable(source)}: {_printable(path)}: {what}; allowed {allowed}")

    def with_source(self, source: str) -> ConfigError:
        return ConfigError(self.path, self.found, self.allowed, source)


def _printable(text: str) -> str:
    """``text`` with line breaks and other control characters escaped: one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def table(raw: Any, path: str, keys: Iterable[str] | None) -> Mapping[str, Any]:
    """``raw`` as a table whose keys are all in ``keys`` (any keys when ``None``)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "a table")
    if keys is not None:
        keys = set(keys)
        for key in raw:
            if key not in keys:
                raise ConfigError(f"{path}.{key}" if path != "(top level)" else key,
                                  UNKNOWN_KEY, f"keys {', '.join(sorted(keys))}")
    return raw


def integer(raw: Any, path: str, low: int, high: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low or (high and raw > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ConfigError(path, raw, allowed)
    return raw


def number(raw: Any, path: str, low: float = -math.inf, low_open: bool = False,
           high: float = math.inf) -> float:
    ok = isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)
    if ok and (raw > low if low_open else raw >= low) and raw <= high:
        return float(raw)
    bounds = []
    if low != -math.inf:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high != math.inf:
        bounds.append(f"<= {high:g}")
    raise ConfigError(path, raw, "a finite number" + (" " + " and ".join(bounds) if bounds
                                                      else ""))


def boolean(raw: Any, path: str) -> bool:
    if not isinstance(raw, bool):
        raise ConfigError(path, raw, "true or false")
    return raw


def choice(raw: Any, path: str, options: Iterable[str]) -> str:
    options = tuple(options)
    if raw not in options:
        raise ConfigError(path, raw, f"one of {', '.join(options)}")
    return raw


def name(raw: Any, path: str) -> str:
    """A label usable in a folder name and a block key: no ``__``."""
    if not isinstance(raw, str) or not NAME.match(raw) or "__" in raw:
        raise ConfigError(path, raw, "letters, digits, '_', '.', '-' without '__'")
    return raw


def unique(values, path: str, what: str) -> None:
    if len(set(values)) != len(values):
        raise ConfigError(path, list(values), what)


def grid(raw: Any, path: str) -> tuple[float, ...]:
    """A number, a list of numbers, {logspace = [lo, hi, n]} or {linspace = [lo, hi, n]}."""
    if isinstance(raw, Mapping):
        table(raw, path, {"logspace", "linspace"})
        if len(raw) != 1:
            raise ConfigError(path, dict(raw), "exactly one of logspace or linspace")
        (kind, spec), = raw.items()
        allowed = ("[lo, hi, n] (exponents of 10 and a count >= 1)" if kind == "logspace"
                   else "[lo, hi, n] (bounds and a count >= 1)")
        if not (isinstance(spec, list) and len(spec) == 3):
            raise ConfigError(f"{path}.{kind}", spec, allowed)
        lo = number(spec[0], f"{path}.{kind}[0]")
        hi = number(spec[1], f"{path}.{kind}[1]")
        n = integer(spec[2], f"{path}.{kind}[2]", 1, MAX_GRID)
        with np.errstate(over="ignore"):
            values = np.logspace(lo, hi, n) if kind == "logspace" else np.linspace(lo, hi, n)
        if not np.isfinite(values).all():
            raise ConfigError(f"{path}.{kind}", spec, f"{allowed}, giving finite values")
        values = tuple(float(v) for v in values)
        unique(values, f"{path}.{kind}", "lo != hi when n > 1 (distinct values)")
        return values
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(path, raw, "a non-empty list of numbers")
        values = tuple(number(v, f"{path}[{i}]") for i, v in enumerate(raw))
        unique(values, path, "distinct values")
        return values
    return (number(raw, path),)


def distribution(raw: Any, path: str) -> tuple[str, float, float]:
    """A search's ``{uniform | loguniform | one_minus_loguniform = [lo, hi]}`` as (kind, lo,
    hi), its bounds valid for the kind."""
    table(raw, path, DISTRIBUTIONS)
    if len(raw) != 1:
        raise ConfigError(path, dict(raw), f"exactly one of {', '.join(DISTRIBUTIONS)}")
    (kind, spec), = raw.items()
    where, allowed = f"{path}.{kind}", f"[lo, hi] with {_SUPPORTS[kind]}"
    if not (isinstance(spec, list) and len(spec) == 2):
        raise ConfigError(where, spec, allowed)
    lo, hi = (number(v, f"{where}[{i}]") for i, v in enumerate(spec))
    if not (lo < hi and math.isfinite(hi - lo)) or (kind != "uniform" and lo <= 0) or (
            kind == "one_minus_loguniform" and hi >= 1):
        raise ConfigError(where, spec, allowed)
    return kind, lo, hi
