"""optbench: optimizer and loss-landscape benchmarking on JAX.

The test surfaces are :mod:`optbench.landscapes` (kept in the repository's top-level folder
``landscapes/`` and installed under ``optbench``, so no top-level ``landscapes`` package is
installed next to the unrelated PyPI project of that name).
"""

import importlib
import importlib.abc
import importlib.util
import sys
from pathlib import Path


class _CheckoutLandscapes(importlib.abc.MetaPathFinder):
    """From a source checkout (its root first on ``sys.path``, e.g. ``PYTHONPATH=.``),
    ``optbench/`` has no ``landscapes``, which an install maps in from the root's
    ``landscapes/``: find that folder under its installed name, so the checkout imports as
    it stands (on first use, like an installed package)."""

    def __init__(self, source: Path):
        self.source = source

    def find_spec(self, name, path, target=None):
        if name != f"{__name__}.landscapes":
            return None
        return importlib.util.spec_from_file_location(
            name, self.source, submodule_search_locations=[str(self.source.parent)])


def _checkout_landscapes() -> Path | None:
    """The root's ``landscapes/__init__.py`` when this is a checkout, else None."""
    package = Path(__file__).parent
    source = package.parent / "landscapes" / "__init__.py"
    if (package / "landscapes").is_dir() or not source.is_file():
        return None  # an installed package, or not a checkout
    return source


if (_source := _checkout_landscapes()) is not None:
    sys.meta_path.append(_CheckoutLandscapes(_source))

__version__ = "0.1.0"


def __getattr__(name: str):
    """``optbench.landscapes`` and ``optbench.optimizers`` import on first use (they load
    JAX), so that commands which need neither, such as ``optbench --help``, start fast."""
    if name in ("landscapes", "optimizers"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sweep(config, directory: str | Path | None = None, **options) -> Path:
    """Run a sweep given as a dict (the TOML file's structure) or a ``SweepConfig`` and
    write its convergence tables; returns its results folder. Options as
    :func:`optbench.engine.run_sweep` (``force``, ``quiet``, ``yes``, ``results_root``)."""
    import jax

    from optbench.analysis import write_finished_tables
    from optbench.engine import run_sweep

    directory = run_sweep(config, directory, **options)
    if jax.process_index() == 0:  # the process that writes the results
        write_finished_tables(directory)
    return directory


# the digest of the sources as imported, which names derived results kept on disk
# (optbench.memo: an edit after this point is not filed under the new code's name)
from optbench import memo as _memo  # noqa: E402, F401

__all__ = ["landscapes", "optimizers", "sweep", "__version__"]
