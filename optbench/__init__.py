"""optbench: optimizer and loss-landscape benchmarking on JAX.

The test surfaces are :mod:`optbench.landscapes` (kept in the repository's top-level folder
``landscapes/`` and installed under ``optbench``, so no top-level ``landscapes`` package is
installed next to the unrelated PyPI project of that name).
"""

from pathlib import Path

from optbench import landscapes, optimizers

__version__ = "0.1.0"


def sweep(config, directory: str | Path | None = None, **options) -> Path:
    """Run a sweep given as a dict (the TOML file's structure) or a ``SweepConfig``; returns
    its results folder. Options as :func:`optbench.engine.run_sweep` (``force``, ``quiet``,
    ``yes``, ``results_root``)."""
    from optbench.engine import run_sweep

    return run_sweep(config, directory, **options)


__all__ = ["landscapes", "optimizers", "sweep", "__version__"]
