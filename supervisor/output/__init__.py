"""Program output: the pipes superd reads, where the bytes go, and who watches.

Capture (non-blocking pipe readers), sinks (log files with rotation, the
console, null), per-stream rings for ``tail`` and the followers of ``tail -f``.
Nothing here blocks the loop or grows without bound.
"""

from .capture import PASSTHROUGH
from .follow import MAX_FOLLOWERS
from .outputs import Outputs, captured
from .streams import MAX_TAIL_LINES

__all__ = ["MAX_FOLLOWERS", "MAX_TAIL_LINES", "Outputs", "PASSTHROUGH", "captured"]
