"""Tasks: what an optimizer is run on. A task owns its parameters, data, loss, how it produces
gradients (exact, one noisy sample, or a mini-batch) and what it records; see
:class:`optbench.tasks.base.Task`. Task kinds are registered in :mod:`optbench.tasks.registry`.
"""

from optbench.tasks import registry
from optbench.tasks.base import GRADIENT_SOURCES, Task
from optbench.tasks.surface import SurfaceConfig, SurfaceTask

__all__ = ["GRADIENT_SOURCES", "SurfaceConfig", "SurfaceTask", "Task", "registry"]
