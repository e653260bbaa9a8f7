"""Test helpers for the engine."""

from optbench.tasks import registry
from optbench.tasks.surface import SurfaceTask


def surface_task(**fields) -> SurfaceTask:
    """A surface task from the fields of a ``[[tasks]]`` table, as a sweep would build it."""
    return registry.build([registry.parse(fields, "tasks[0]")])[0]


def without_timing(runs):
    """A runs table without its measured times (``wall_time``, ``seconds_per_step``,
    ``seconds_to_*``), which differ between two runs of the same sweep."""
    return runs.drop(columns=[c for c in runs if c in ("wall_time", "seconds_per_step")
                              or c.startswith("seconds_to_")])
