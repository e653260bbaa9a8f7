"""Test helpers for the engine."""

from optbench.tasks import registry
from optbench.tasks.surface import SurfaceTask


def surface_task(**fields) -> SurfaceTask:
    """A surface task from the fields of a ``[[tasks]]`` table, as a sweep would build it."""
    return registry.build([registry.parse(fields, "tasks[0]")])[0]
