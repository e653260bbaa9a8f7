"""optbench: optimizer and loss-landscape benchmarking on JAX.

The test surfaces live in the top-level package ``landscapes`` (installed with optbench);
``optbench.landscapes`` is the same module.
"""

import sys
from pathlib import Path

import landscapes
from optbench import optimizers

sys.modules[f"{__name__}.landscapes"] = landscapes

__version__ = "0.1.0"


def sweep(config, directory: str | Path | None = None, **options) -> Path:
    """Run a sweep given as a dict (the TOML file's structure) or a ``SweepConfig``; returns
    its results folder. Options as :func:`optbench.engine.run_sweep` (``force``, ``quiet``,
    ``yes``, ``results_root``)."""
    from optbench.engine import run_sweep

    return run_sweep(config, directory, **options)


__all__ = ["landscapes", "optimizers", "sweep", "__version__"]
