"""The sweep engine: config -> one jitted vmap+scan program per (optimizer, task) block."""

from optbench.engine.run import BlockResult, Outcome, RunSettings, make_run, run_block
from optbench.engine.sweep import SweepTooLarge, run_sweep

__all__ = ["BlockResult", "Outcome", "RunSettings", "SweepTooLarge", "make_run", "run_block",
           "run_sweep"]
