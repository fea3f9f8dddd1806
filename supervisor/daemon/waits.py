"""What waits for a state change: a request's ``wait``, a dependent that is
blocked on its dependencies, sd_notify's STATUS line.

Nothing polls: every state change schedules one look at the end of the
event-loop turn, however many changes the turn made.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

from ..core.states import ProcessState


class Waits:
    def __init__(self, sv: "Supervisor") -> None:
        self.sv = sv
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future]] = []
        self._scheduled = False

    def schedule(self) -> None:
        """Look at the waiters (and waiting dependents) once this loop turn ends."""
        if not self._scheduled and self.sv.loop is not None:
            self._scheduled = True
            self.sv.loop.call_soon(self._check)

    def _check(self) -> None:
        self._scheduled = False
        sv = self.sv
        blocked = sv.runtime.blocked
        for process in list(blocked):
            if process.waiting_for and process.state is ProcessState.STARTING and process.pid is None:
                process.dependencies_changed()
            else:
                blocked.discard(process)
        if self._waiters:
            still = []
            for predicate, future in self._waiters:
                if future.done():
                    continue
                if predicate():
                    future.set_result(True)
                else:
                    still.append((predicate, future))
            self._waiters = still
        if sv.notifier.enabled:
            sv.notifier.send(STATUS=sv.summary())

    async def wait_for(self, predicate: Callable[[], bool], timeout: Optional[float] = None) -> bool:
        """Wait until ``predicate()`` holds after a state change; False at the timeout."""
        if predicate():
            return True
        if timeout is not None and timeout <= 0:
            return False
        future = self.sv.loop.create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return predicate()
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)
        return True
