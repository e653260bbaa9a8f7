"""optbench: optimizer and loss-landscape benchmarking on JAX.

The test surfaces are :mod:`optbench.landscapes` (kept in the repository's top-level folder
``landscapes/`` and installed under ``optbench``, so no top-level ``landscapes`` package is
installed next to the unrelated PyPI project of that name).
"""

import importlib.util
import sys
from pathlib import Path


def _load_checkout_landscapes() -> None:
    """From a source checkout (its root first on ``sys.path``, e.g. ``PYTHONPATH=.``),
    ``optbench/`` has no ``landscapes``, which an install maps in from the root's
    ``landscapes/``: load that folder under its installed name, so the checkout imports as
    it stands."""
    package = Path(__file__).parent
    source = package.parent / "landscapes" / "__init__.py"
    if (package / "landscapes").is_dir() or not source.is_file():
        return  # an installed package, or not a checkout
    spec = importlib.util.spec_from_file_location(
        f"{__name__}.landscapes", source, submodule_search_locations=[str(source.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


if f"{__name__}.landscapes" not in sys.modules:
    _load_checkout_landscapes()

from optbench import landscapes, optimizers  # noqa: E402

__version__ = "0.1.0"


def sweep(config, directory: str | Path | None = None, **options) -> Path:
    """Run a sweep given as a dict (the TOML file's structure) or a ``SweepConfig``; returns
    its results folder. Options as :func:`optbench.engine.run_sweep` (``force``, ``quiet``,
    ``yes``, ``results_root``)."""
    from optbench.engine import run_sweep

    return run_sweep(config, directory, **options)


__all__ = ["landscapes", "optimizers", "sweep", "__version__"]
