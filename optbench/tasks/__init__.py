"""Tasks: what an optimizer is run on. A task owns its loss, its starts and how it produces
gradients (exact, one noisy sample, or a mini-batch); see :class:`optbench.tasks.base.Task`."""

from optbench.tasks.base import GRADIENT_SOURCES, Task
from optbench.tasks.surface import SurfaceTask

__all__ = ["GRADIENT_SOURCES", "SurfaceTask", "Task"]
