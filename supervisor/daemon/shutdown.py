"""The shutdown: stop every process in the plan's phases inside the deadline,
then whatever descendants are left; a second request kills what is left.

The plan (phases by priority and dependencies, each phase's share of
``shutdown_timeout``) is pure (:mod:`supervisor.core.shutdown`); this module
carries it out on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Optional, Sequence

from .kill import send_all, terminate
from .procfs import descendants
from ..core import shutdown as plan
from ..core.dependencies import instance_graph
from ..core.states import DaemonState, ProcessState
from ..core.stopping import KILL_GRACE

log = logging.getLogger("superd")

#: How long leftover descendants get between SIGTERM and SIGKILL at most.
LEFTOVER_GRACE = 2.0
#: After SIGQUIT superd exits within this many seconds, whatever is stuck.
QUIT_LIMIT = KILL_GRACE + 1.0


class Leftovers:
    """Every descendant still alive after the phases, as one target of :func:`terminate`."""

    name = "leftover processes"
    sig = signal.SIGTERM
    killed = False

    def __init__(self, wait: float) -> None:
        self.wait = wait

    def alive(self) -> bool:
        return bool(descendants())

    def signal(self, sig: int) -> None:
        left = descendants()
        if sig != signal.SIGCONT:
            log.info("sending %s to %d leftover process%s: %s", signal.Signals(sig).name, len(left),
                     "es" * (len(left) != 1), _some(left))
        send_all(left, sig)

    def kill(self) -> None:
        self.killed = True
        left = descendants()
        log.warning("sending SIGKILL to %d leftover process%s: %s", len(left), "es" * (len(left) != 1), _some(left))
        send_all(left, signal.SIGKILL)


class Shutdown:
    """One supervisor's shutdown: requested once, escalated by a second request."""

    def __init__(self, supervisor: "Supervisor") -> None:
        self.sv = supervisor
        self.task: Optional[asyncio.Task] = None
        self.escalated = False
        self._quitting = False

    @property
    def requested(self) -> bool:
        return self.task is not None

    def request(self, reason: str, sig: Optional[int] = None) -> None:
        """Graceful shutdown; asked again while shutting down, SIGKILL what is left."""
        sv = self.sv
        if self.task is not None:
            if not self.escalated:
                log.warning("%s during shutdown: killing what is left", reason)
                self.escalate()
            return
        log.info("%s: shutting down (timeout %gs)", reason, sv.config.daemon.shutdown_timeout)
        sv.set_state(DaemonState.SHUTTING_DOWN)
        sv.notifier.send(
            STOPPING=1,
            STATUS=f"shutting down: {reason}",
            EXTEND_TIMEOUT_USEC=int((sv.config.daemon.shutdown_timeout + 5) * 1e6),
        )
        self.task = asyncio.ensure_future(self._run(sig))

    def quit_now(self, reason: str = "SIGQUIT") -> None:
        """Immediate shutdown: SIGKILL everything, exit (within ``QUIT_LIMIT``
        whatever happens)."""
        log.warning("%s: killing everything now", reason)
        if self.task is None:
            self.sv.set_state(DaemonState.SHUTTING_DOWN)
            self.sv.notifier.send(STOPPING=1, STATUS=f"killing everything: {reason}")
            self.task = asyncio.ensure_future(self._run(None))
        self.escalate()
        if not self._quitting:
            self._quitting = True
            asyncio.get_running_loop().call_later(QUIT_LIMIT, self._give_up)

    def escalate(self) -> None:
        """SIGKILL everything; each part on its own, so that one failing (out
        of descriptors, say) does not spare the rest."""
        self.escalated = True
        for process in self.sv.processes.values():
            try:
                if process.pid is not None and process.pgid is not None and process.active:
                    # Only while the leader lives is its pgid surely still its group.
                    self.sv.runtime.send(process.pgid, signal.SIGKILL, True)
                process.kill()
            except Exception:  # noqa: BLE001 - the next process must still be killed
                log.exception("%s: cannot kill it", process.name)
        self._kill_the_rest()

    def _kill_the_rest(self) -> None:
        """SIGKILL every descendant, with a spare descriptor for reading /proc."""
        with self.sv.reserve.spare():
            for step in (self._kill_tracked, lambda: send_all(descendants(), signal.SIGKILL)):
                try:
                    step()
                except Exception:  # noqa: BLE001
                    log.exception("killing what is left failed")

    def _kill_tracked(self) -> None:
        if self.sv.runtime.tracker is not None:
            self.sv.runtime.tracker.kill_everything()

    def _give_up(self) -> None:
        """SIGQUIT's promise: superd exits, even if stopping could not finish."""
        if not self.sv.finished:
            log.error("the shutdown did not finish %gs after SIGQUIT: exiting now", QUIT_LIMIT)
            self.sv.exit_code = self.sv.exit_code or 1
            self.sv.finish()

    async def _run(self, sig: Optional[int]) -> None:
        sv = self.sv
        try:
            await self._stop_everything(sig)
        except Exception:
            log.exception("shutdown failed; killing what is left")
            sv.exit_code = 1
            self._kill_the_rest()
        finally:
            if sv.single:
                (process,) = sv.processes.values()
                sv.exit_code = process.exit_code()
            sv.reaper.reap()  # stragglers
            log.info("superd exits with code %d", sv.exit_code)
            sv.finish()

    async def _stop_everything(self, sig: Optional[int]) -> None:
        sv = self.sv
        timeout = sv.config.daemon.shutdown_timeout
        started = time.monotonic()
        end = started + timeout - plan.reserve(timeout)  # when the phases must be over

        # A reload may still be rearranging sv.processes: work on a snapshot.
        processes = dict(sv.processes)
        for process in processes.values():
            if process.state is ProcessState.BACKOFF:
                process.stop()

        phases = plan.plan(
            (plan.StopItem(p.name, p.config.program.priority, p.config.stop_time())
             for p in processes.values() if p.active),
            instance_graph(processes.values(), sv.members),
        )
        for index, phase in enumerate(phases):
            now = time.monotonic()
            later = [ph.want for ph in phases[index + 1:]]
            budget = 0.0 if self.escalated else plan.phase_budget(phase.want, later, end - now)
            members = [processes[name] for name in phase.names]
            log.info("stopping %s (priority %d, up to %.2fs)", _some(phase.names), phase.priority, budget)
            for process in members:
                process.stop(budget, sig)
            limit = min(end - now, budget + KILL_GRACE)
            if not await sv.wait_for(lambda: not any(p.active for p in members), max(0.0, limit)):
                stuck = [p.name for p in members if p.active]
                log.error("still not gone after SIGKILL: %s", _some(stuck))

        deadline = started + timeout
        hooks = getattr(sv, "hooks", None)
        if hooks is not None and hooks.running and not self.escalated:  # after_stop hooks of what stopped
            await sv.wait_for(lambda: not hooks.running, max(0.0, (deadline - time.monotonic()) * 0.5))
        with sv.reserve.spare():  # /proc must be readable even with no descriptor left
            if descendants():
                grace = 0.0 if self.escalated else min(LEFTOVER_GRACE, (deadline - time.monotonic()) * 0.5)
                await terminate([Leftovers(max(0.0, grace))], lambda: self.escalated,
                                kill_grace=max(0.05, deadline - time.monotonic()))


def _some(items: Sequence[object], limit: int = 10) -> str:
    """The first ``limit`` items and how many more: a log line stays a line
    with 10,000 programs."""
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
