"""The errors superd's commands raise; the control handlers map each to a code.

Kept apart so that the core, the daemon and the handlers share them without
importing one another.
"""

from __future__ import annotations


class NoSuchName(LookupError):
    """A name matched no program, instance or group."""


class SpawnError(Exception):
    """The command could not be started at all (missing, not executable, ...).

    ``exit_code`` is what a shell would report: 127 not found, 126 not executable.
    """

    def __init__(self, message: str, exit_code: int = 127) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Refused(Exception):
    """A request that cannot be carried out now (single-program mode, still starting)."""


class ShuttingDown(Refused):
    """superd is shutting down and takes no new work."""

    def __init__(self, message: str = "superd is shutting down") -> None:
        super().__init__(message)


class InvalidRequest(ValueError):
    """A request's parameters are wrong; nothing was done."""


class Failed(Exception):
    """The request was tried and failed (a file could not be read, ...)."""


class NotRunning(Failed):
    """The request needs a running process (writing to its stdin)."""


class NoStdin(Failed):
    """The process has no stdin pipe (no ``stdin = true``), or closed it."""
