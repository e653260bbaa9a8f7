"""The sweep engine: config -> compiled vmap+scan programs, shared between blocks -> store."""

from optbench.engine.run import (
    PROGRAMS,
    BlockResult,
    Outcome,
    RunSettings,
    make_run,
    record_schedule,
    run_block,
)
from optbench.engine.sweep import Interrupted, SweepTooLarge, run_sweep

__all__ = ["PROGRAMS", "BlockResult", "Interrupted", "Outcome", "RunSettings", "SweepTooLarge",
           "make_run", "record_schedule", "run_block", "run_sweep"]
