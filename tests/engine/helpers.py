"""Test helpers for the engine."""

import sys
import textwrap

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


HELD = '''
import pathlib, sys, time
from optbench.store import ResultStore
gate, after = pathlib.Path(sys.argv[1]), int(sys.argv[2])
write_block = ResultStore.write_block
def held(self, *args, **kwargs):  # the sweep waits after its `after`-th block for the gate
    write_block(self, *args, **kwargs)
    held.blocks += 1
    while held.blocks == after and not gate.exists():
        time.sleep(0.01)
held.blocks = 0
ResultStore.write_block = held
'''


def held_sweep(gate, after: int, then: str, *argv: str) -> list[str]:
    """A command running ``then`` (Python, given ``argv`` as ``sys.argv[3:]``) in a process
    whose sweep stops after its ``after``-th stored block until the file ``gate`` exists:
    a test interrupts it there, however fast its blocks run."""
    return [sys.executable, "-c", HELD + textwrap.dedent(then), str(gate), str(after), *argv]
