"""``optbench bench``: head-to-heads measured in one process and one run, as ratios.

A registry of benchmarks, each a function ``(device, quick) -> Report``:

- ``update``: one optimizer step against optax and torch.optim, and the memory bandwidth;
- ``sweep``: the engine against optax under the same vmap/scan, a Python loop and torch;
- ``compile``: the default sweep with an empty and with a filled persistent compile cache;
- ``seeds``: N seeds of the MNIST-1D MLP under vmap against the same runs one at a time.

Compile time is kept out of every timed region and reported on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from optbench.bench.common import (
    DeviceUnavailable,
    Report,
    header,
    select_device,
    write_json,
)
from optbench.bench.compile import bench_compile
from optbench.bench.seeds import bench_seeds
from optbench.bench.sweep import bench_sweep
from optbench.bench.update import bench_update
from optbench.errors import OptbenchError

BENCHMARKS: dict[str, Callable[..., Report]] = {
    "update": bench_update,
    "sweep": bench_sweep,
    "compile": bench_compile,
    "seeds": bench_seeds,
}


def names() -> tuple[str, ...]:
    """The registered benchmarks, in the order ``bench all`` runs them."""
    return tuple(BENCHMARKS)


def run(which: Sequence[str], device: str | None = None, quick: bool = False,
        json_path: str | Path | None = None, echo: Callable[[str], None] = print
        ) -> list[Report]:
    """Run the benchmarks ``which`` (names, or ``["all"]``) on ``device`` (``cpu``/``gpu``),
    printing the header and each table as it finishes; write them all to ``json_path``."""
    chosen = names() if "all" in which else tuple(which)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        raise OptbenchError(f"bench: found {unknown[0]!r}; allowed all, {', '.join(names())}")
    if json_path is not None:
        _check_writable(Path(json_path))
    target = select_device(device)
    echo(f"optbench bench {' '.join(which)}: {header(target)}")
    reports = []
    for name in chosen:
        report = BENCHMARKS[name](target, quick=quick)
        echo("\n" + report.text())
        reports.append(report)
    if json_path is not None:
        echo(f"\nwritten: {write_json(json_path, target, reports)}")
    return reports


def _check_writable(path: Path) -> None:
    """Fail before the benchmarks run, not after, where the JSON file cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):
            pass
    except OSError as error:
        raise OptbenchError(f"--json: found {str(path)!r}; allowed a writable file "
                            f"({error.strerror})") from None


__all__ = ["BENCHMARKS", "DeviceUnavailable", "Report", "bench_compile", "bench_seeds",
           "bench_sweep",
           "bench_update", "names", "run"]
