"""optbench's errors. Everything a user can fix (a bad config, option, file or folder) raises
an :class:`OptbenchError`, which the command line prints as one line with exit code 2; any
other exception is a bug and keeps its traceback."""


class OptbenchError(Exception):
    """A problem with the user's input or files; ``str()`` is the one-line message."""


class Interrupted(OptbenchError):
    """The user stopped a command (Ctrl-C); the command line says so in one line, exit 130."""
