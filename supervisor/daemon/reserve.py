"""Spare file descriptors for when there are none left.

superd opens a few descriptors on ``/dev/null`` at start and keeps them. Out
of descriptors (EMFILE), the one task that must go on — the shutdown reading
``/proc``, the control socket refusing a client cleanly — releases one, does
its work, and takes it back when it can.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

#: How many descriptors are kept in reserve.
SPARE = 2


class Reserve:
    def __init__(self, count: int = SPARE) -> None:
        self._fds: list[int] = []
        self.count = count
        self.refill()

    def refill(self) -> None:
        """Take back what was released, as far as descriptors allow."""
        while len(self._fds) < self.count:
            try:
                self._fds.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                return

    @contextlib.contextmanager
    def spare(self) -> Iterator[None]:
        """One descriptor freed for the body, taken back after it."""
        if self._fds:
            os.close(self._fds.pop())
        try:
            yield
        finally:
            self.refill()

    def release_all(self) -> None:
        """Every reserved descriptor freed for good (superd is ending)."""
        while self._fds:
            os.close(self._fds.pop())
