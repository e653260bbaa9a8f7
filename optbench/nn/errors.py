"""The error of a network that cannot be built."""

from optbench.errors import OptbenchError


class NNError(OptbenchError, ValueError):
    """An architecture or dataset problem, in one line naming the layer or path at fault."""
