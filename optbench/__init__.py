"""optbench: optimizer and loss-landscape benchmarking on JAX.

The test surfaces live in the top-level package ``landscapes`` (installed with optbench);
``optbench.landscapes`` is the same module.
"""

import sys

import landscapes
from optbench import optimizers

sys.modules[f"{__name__}.landscapes"] = landscapes

__version__ = "0.1.0"

__all__ = ["landscapes", "optimizers", "__version__"]
