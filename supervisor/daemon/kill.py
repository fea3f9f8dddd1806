"""Sending signals, and "signal, wait, SIGKILL" for processes that are not
(or no longer) superd's supervised children.

The one place that ignores a process already gone: every ``kill`` superd
makes goes through :func:`send` or :func:`send_group`. Supervised processes
are stopped by their state machine (:class:`supervisor.core.stopping.Stop`);
what a killed superd left running (crash recovery) and whatever descendants
outlive the shutdown's phases are ended by :func:`terminate`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Awaitable, Callable, Iterable, Iterator, Optional, Protocol, Sequence

from ..core.process import signal_name
from ..core.stopping import KILL_GRACE, NO_CONT_AFTER, POLL_MAX, POLL_MIN

log = logging.getLogger("superd")


def send(pid: int, sig: int) -> bool:
    """``sig`` to ``pid``; False when it is gone (or not ours to signal)."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError as exc:  # a descendant that changed its user
        log.debug("cannot send %s to pid %d: %s", signal_name(sig), pid, exc)
        return False


def send_group(pgid: Optional[int], sig: int) -> bool:
    """``sig`` to process group ``pgid``; False when it is empty."""
    if pgid is None:
        return False
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        log.debug("cannot send %s to group %d: %s", signal_name(sig), pgid, exc)
        return False


def send_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        send(pid, sig)


def group_alive(pgid: Optional[int]) -> bool:
    if pgid is None:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def poll_delays() -> Iterator[float]:
    """How often to look at something no event announces: 5 ms doubling to 100 ms."""
    delay = POLL_MIN
    while True:
        yield delay
        delay = min(delay * 2, POLL_MAX)


async def poll_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` for at most ``timeout`` seconds; used only while
    something is being stopped, never while superd is idle."""
    deadline = time.monotonic() + max(0.0, timeout)
    for delay in poll_delays():
        if condition():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(delay, left))
    return False  # pragma: no cover - poll_delays never ends


def wait_blocking(condition: Callable[[], bool], timeout: float) -> bool:
    """The same, blocking: only for the very end of superd (the loop is done)."""
    deadline = time.monotonic() + timeout
    for delay in poll_delays():
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, 0.05))
    return False  # pragma: no cover


class Target(Protocol):
    """Something to end: one leftover run, or all leftover descendants."""

    name: str
    sig: int        # the signal that asks it to end
    wait: float     # how long it gets before SIGKILL
    killed: bool

    def alive(self) -> bool: ...
    def signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


async def terminate(targets: Sequence[Target], hurry: Callable[[], bool] = lambda: False, *,
                    kill_grace: float = KILL_GRACE, label: str = "",
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> list[Target]:
    """Ask every target to end at once (its signal, then SIGCONT unless the
    signal is a job-control one), SIGKILL each at its own deadline (or when
    ``hurry()``), give up ``kill_grace`` after the last SIGKILL. Returns
    those still alive then. ``label`` starts the log lines."""
    start = time.monotonic()
    deadlines = {id(t): start + t.wait for t in targets}
    for target in targets:
        target.signal(target.sig)
        if target.sig not in NO_CONT_AFTER:
            target.signal(signal.SIGCONT)
    give_up: Optional[float] = None
    for delay in poll_delays():
        live = [t for t in targets if t.alive()]
        if not live:
            return []
        now = time.monotonic()
        for target in live:
            if not target.killed and (now >= deadlines[id(target)] or hurry()):
                log.warning("%s%s still alive after %gs: SIGKILL", label, target.name, round(now - start, 2))
                target.kill()
        if all(t.killed for t in live):
            give_up = give_up or now + kill_grace
            if now >= give_up:
                return live
        await sleep(delay)
    return []  # pragma: no cover
