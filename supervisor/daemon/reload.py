"""Reload: re-read the config and apply the difference; an invalid config changes nothing.

Removed instances stop (with their own stop settings), changed ones stop and
start again with the new settings, added ones start (autostart); untouched
ones keep running with the same pid. What differs is computed purely
(:mod:`supervisor.config.diff`); this module applies it on the loop.
"""

from __future__ import annotations

import logging
from . import ownlog
from .notify import monotonic_usec
from ..config.diff import RESTART_ONLY, compare
from ..config import Config, ConfigError, load
from ..core.errors import Refused, ShuttingDown
from ..core.process import Process
from ..core.states import DaemonState

log = logging.getLogger("superd")


async def reload(sv: "Supervisor") -> dict:
    """Apply the config file's current contents; returns what changed."""
    if sv.single or sv.config.path is None:
        raise Refused("single-program mode has no config to reload")
    async with sv.reload_lock:
        if sv.state is DaemonState.SHUTTING_DOWN:
            raise ShuttingDown()
        if sv.state is DaemonState.STARTING:
            raise Refused("superd is still starting; reload once it runs")
        try:
            new = load(sv.config.path, sv.environ)  # a few ms: no need to leave the loop
        except ConfigError as exc:
            log.error("reload refused, nothing changed: invalid config:\n%s", exc)
            raise
        try:
            sockets = sv.sockets.prepare(new.sockets)  # new addresses bound now, or nothing changes
        except ConfigError as exc:
            log.error("reload refused, nothing changed: cannot bind a socket:\n%s", exc)
            raise
        difference = compare(sv.config, new)
        if sockets.changed:
            log.info("reload: sockets changed: %s", ", ".join(sorted(sockets.changed)))
        if difference.empty:
            sv.sockets.commit(sockets)  # unused sockets added or removed: nothing else to do
            if sockets.changed:
                sv.config = new
            else:
                log.info("reload: no changes")
            return difference.as_dict()
        log.info(
            "reload: added %s; removed %s; changed %s",
            ", ".join(difference.added) or "none",
            ", ".join(difference.removed) or "none",
            ", ".join(difference.changed) or "none",
        )
        later = [key for key in difference.daemon_changed if key in RESTART_ONLY]
        if later:
            log.warning("reload: %s take effect when superd starts again", ", ".join(later))
        sv.set_state(DaemonState.RELOADING)
        sv.notifier.send(RELOADING=1, MONOTONIC_USEC=monotonic_usec(), STATUS="reloading")
        try:
            await _apply(sv, new, difference, sockets)
        finally:
            sv.sockets.discard(sockets)  # not applied (a shutdown came first): what it bound closes
            if sv.state is DaemonState.RELOADING:
                sv.set_state(DaemonState.RUNNING)
                sv.notifier.send(READY=1, STATUS=sv.summary())
        return difference.as_dict()


async def _apply(sv: "Supervisor", new: "Config", difference, sockets) -> None:
    leaving = [sv.processes[name] for name in difference.removed + difference.changed]
    restart = {name for name in difference.changed if sv.processes[name].active}
    # Stopped by an operator: a new config does not start it behind their back.
    held = {name for name in difference.changed if sv.processes[name].held and name not in restart}
    for process in leaving:
        process.stop()
        process.retired = True  # a request still holding it must not start it again
    await sv.wait_for(lambda: not any(p.active for p in leaving))
    if sv.state is DaemonState.SHUTTING_DOWN:
        return  # the shutdown owns the processes now
    sv.config = new
    sv.sockets.commit(sockets)  # after the old processes are gone, before the new ones start
    if {"log_level", "log_format"} & set(difference.daemon_changed):
        ownlog.setup(new.daemon.log_level, new.daemon.log_format)
    if sv.server is not None:
        sv.server.configure(new.daemon)
    instances = {i.name: i for i in new.instances}
    checks = sv.runtime.checks
    if checks is not None:
        for name in difference.removed + difference.changed:
            checks.forget(name)  # a changed program gets a fresh NOTIFY_SOCKET
    for name in difference.removed:
        del sv.processes[name]
        sv.runtime.forget(name)  # its run and cgroup go with it
    fresh = [Process(instances[name], sv.runtime) for name in difference.added + difference.changed]
    # Keep the config's order: the dict order is what status lists.
    for process in fresh:
        sv.processes[process.name] = process
    sv.processes = {name: sv.processes[name] for name in instances}
    sv.processes_changed()
    for process in sorted(fresh, key=lambda p: (p.config.program.priority, p.name)):
        if sv.state is DaemonState.SHUTTING_DOWN:
            break
        if process.name in held:
            process.held = True
            log.info("reload: %s changed; it stays stopped, as it was stopped on request", process.name)
        elif process.config.program.autostart or process.name in restart:
            process.start()
