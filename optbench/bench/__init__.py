"""``optbench bench``: head-to-heads measured in one process and one run, as ratios.

A registry of benchmarks, each a function ``(device, quick) -> Report``:

- ``update``: one optimizer step against optax and torch.optim, and the memory bandwidth;
- ``sweep``: the engine against optax under the same vmap/scan, a Python loop and torch;
- ``compile``: the default sweep with an empty and with a filled persistent compile cache;
- ``seeds``: N seeds of the MNIST-1D MLP under vmap against the same runs one at a time;
- ``commands``: the commands a user waits on (``run``, ``table``, ``report``, ``--help``),
  each a new process, against their targets.

Compile time is kept out of every timed region and reported on its own.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from optbench.errors import OptbenchError

if TYPE_CHECKING:
    from optbench.bench.common import Report

# name -> its function, imported when it runs (so that the command line lists the names
# without loading JAX)
BENCHMARKS: dict[str, str] = {
    "update": "optbench.bench.update:bench_update",
    "sweep": "optbench.bench.sweep:bench_sweep",
    "compile": "optbench.bench.compile:bench_compile",
    "seeds": "optbench.bench.seeds:bench_seeds",
    "commands": "optbench.bench.commands:bench_commands",
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
    from optbench.bench.common import header, select_device, write_json

    target = select_device(device)
    echo(f"optbench bench {' '.join(which)}: {header(target)}")
    reports = []
    for name in chosen:
        report = pkgutil.resolve_name(BENCHMARKS[name])(target, quick=quick)
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


__all__ = ["BENCHMARKS", "names", "run"]
