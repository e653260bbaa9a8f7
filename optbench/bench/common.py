"""What every ``optbench bench`` benchmark shares: the device, the header, timing, the
machine's memory bandwidth and the report (a table printed and written as JSON).

Every comparison is a ratio of timings taken in the same process, interleaved and best-of-N:
these machines are shared and noisy, and noise only ever adds time.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from optbench.errors import OptbenchError

DEVICE_KINDS = ("cpu", "gpu")


class DeviceUnavailable(OptbenchError):
    """``--device`` names a kind of device that JAX does not see."""


def select_device(kind: str | None) -> jax.Device:
    """The first device of ``kind`` (``cpu`` or ``gpu``; ``None``: JAX's default)."""
    if kind is None:
        return jax.devices()[0]
    if kind not in DEVICE_KINDS:
        raise DeviceUnavailable(f"--device: found {kind!r}; allowed {', '.join(DEVICE_KINDS)}")
    try:
        return jax.devices(kind)[0]
    except RuntimeError:
        seen = ", ".join(sorted({f"{d.platform} ({d.device_kind})" for d in jax.devices()}))
        raise DeviceUnavailable(f"--device {kind}: no such device; JAX sees {seen}") from None


def versions() -> dict[str, str]:
    """Versions of everything a benchmark compares (torch only where installed)."""
    found = {"python": platform.python_version()}
    for name in ("optbench", "jax", "jaxlib", "optax", "numpy", "torch"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def header(device: jax.Device) -> str:
    """One line naming the device kind and the versions."""
    return (f"device: {device.platform} ({device.device_kind}); "
            + ", ".join(f"{k} {v}" for k, v in versions().items()))


def best_seconds(call: Callable[[], Any], repeats: int, number: int = 1) -> float:
    """The fastest of ``repeats`` timings of ``number`` calls, per call. ``call`` must
    block until its work is done."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - started) / number)
    return best


def interleaved_best(calls: dict[str, Callable[[], Any]], repeats: int, number: int = 1
                     ) -> dict[str, float]:
    """:func:`best_seconds` of each call, the calls taking turns round by round (each round
    starting one call later), so that drifts in the machine's speed and the order hit
    them alike."""
    best = dict.fromkeys(calls, float("inf"))
    order = list(calls)
    for round_ in range(repeats):
        shift = round_ % len(order)
        for name in order[shift:] + order[:shift]:
            best[name] = min(best[name], best_seconds(calls[name], 1, number))
    return best


def bandwidth_probe(device: jax.Device, n: int) -> Callable[[], Any]:
    """A call that performs ``a = b + c`` on ``n`` float32 (12 bytes moved per element) and
    waits for it: the memory-bound operation an optimizer update is measured against. On
    CPU numpy writes into ``a`` in place (a fresh output would measure page faults); on an
    accelerator a jitted add runs on the device."""
    if device.platform == "cpu":
        b = np.full(n, 1.0, np.float32)
        c = np.full(n, 2.0, np.float32)
        a = np.empty_like(b)
        return lambda: np.add(b, c, out=a)
    b = jax.device_put(np.full(n, 1.0, np.float32), device)
    c = jax.device_put(np.full(n, 2.0, np.float32), device)
    add = jax.jit(lambda x, y: x + y)
    jax.block_until_ready(add(b, c))
    return lambda: jax.block_until_ready(add(b, c))


def memory_bandwidth(device: jax.Device, n: int, repeats: int = 5) -> float:
    """The machine's memory bandwidth in bytes/s, measured now with :func:`bandwidth_probe`."""
    return 3 * 4 * n / best_seconds(bandwidth_probe(device, n), repeats, number=3)


def against(measured: float, target: float, at_most: bool) -> str:
    """``measured`` against its ``target`` as a note reads it: "target ≤ 2: met" where the
    measure must stay at or under the target (``at_most``), "target ≥ 0.8: missed" where it
    must reach it."""
    met = measured <= target if at_most else measured >= target
    return f"target {'≤' if at_most else '≥'} {target:g}: {'met' if met else 'missed'}"


@dataclass
class Report:
    """One benchmark's result: a title, its table, notes (skips and their reasons, how it
    was measured) and the figures that belong to no row."""

    name: str
    title: str
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        lines = [f"## bench {self.name}: {self.title}", "",
                 self.table.to_markdown(index=False, floatfmt=".3g")]
        lines += [""] + self.notes if self.notes else []
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "notes": self.notes,
                "figures": self.figures,
                "rows": json.loads(self.table.to_json(orient="records"))}


def write_json(path: str | Path, device: jax.Device, reports: list[Report]) -> Path:
    """All reports of a run as one JSON file, with the device and versions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "device": {"platform": device.platform, "kind": device.device_kind,
                   "count": jax.device_count(device.platform)},
        "versions": versions(),
        "benchmarks": [r.to_dict() for r in reports],
    }, indent=2))
    return path
