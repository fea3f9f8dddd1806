"""superd: a process supervisor for Linux.

The import package is ``supervisor``; the daemon is ``superd`` and the
control command ``superctl``.
"""

__version__ = "0.1.0"
