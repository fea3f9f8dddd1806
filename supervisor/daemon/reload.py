"""Reload: re-read the config and apply the difference; an invalid config changes nothing.

Removed instances stop (with their own stop settings), changed ones stop and
start again with the new settings, added ones start (autostart); untouched
ones keep running with the same pid. What differs is computed purely
(:mod:`supervisor.config.diff`); this module applies it on the loop.
"""

from __future__ import annotations

import logging
from typing import Optional

from . import ownlog
from .mainlog import LOG_FILE_KEYS
from .notify import monotonic_usec
from ..config.diff import RESTART_ONLY, compare, group_changes, groups_named
from ..config import Config, ConfigError, load
from ..core.errors import Refused, ShuttingDown
from ..core.process import Process
from ..core.states import DaemonState

log = logging.getLogger("superd")


async def reload(sv: "Supervisor", only: Optional[list[str]] = None) -> dict:
    """Apply the config file's current contents; returns what changed, by
    instance and by group (``"groups"``).

    ``only`` (``superctl update NAME...``): names of what the caller means
    to update, read as every command reads names (a group, ``GROUP:*``,
    ``group:GROUP``, ``GROUP:NAME``, a program, an instance) in the old
    config or the new one; each stands for its groups (:func:`groups_named`).
    A config is applied whole: when it changes only those groups it is
    applied, when it changes none of them nothing is, and when it changes
    others too it is refused (Refused), nothing done."""
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
        groups = group_changes(sv.config, new, difference)
        if only is not None:
            try:
                applies = _within(sv, new, difference, groups, sockets.changed, only)
            except BaseException:
                sv.sockets.discard(sockets)  # what it bound closes
                raise
            if not applies:
                sv.sockets.discard(sockets)
                return {"added": [], "removed": [], "changed": [], "groups": {key: [] for key in groups}}
        if sockets.changed:
            log.info("reload: sockets changed: %s", ", ".join(sorted(sockets.changed)))
        if difference.empty:
            sv.sockets.commit(sockets)  # unused sockets added or removed: nothing else to do
            if sockets.changed:
                sv.config = new
            else:
                log.info("reload: no changes")
            return {**difference.as_dict(), "groups": groups}
        log.info(
            "reload: added %s; removed %s; changed %s",
            ", ".join(difference.added) or "none",
            ", ".join(difference.removed) or "none",
            ", ".join(difference.changed) or "none",
        )
        if difference.regrouped:
            log.info("reload: regrouped %s; they keep running", ", ".join(
                f"{name} ({sv.config.instance(name).group} -> {new.instance(name).group})"
                for name in difference.regrouped))
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
        return {**difference.as_dict(), "groups": groups}


def _within(sv: "Supervisor", new: "Config", difference, groups: dict[str, list[str]], sockets_changed,
            only: list[str]) -> bool:
    """Does the new config change ``only``'s groups and nothing else (True),
    or nothing of them (False)? Raises Refused when it changes others too
    and NoSuchName for a name neither config has."""
    wanted = groups_named(sv.config, new, only)
    touched = set().union(*groups.values())
    if not touched & wanted:
        log.info("update %s: no changes to them; nothing applied", ", ".join(only))
        return False
    beyond = sorted(touched - wanted) + [f"[superd] {key}" for key in difference.daemon_changed] \
        + [f"[socket.{name}]" for name in sorted(sockets_changed)]
    if beyond:
        raise Refused(f"the config also changes {', '.join(beyond)}: superd applies a config file whole; "
                      "'superctl update' without names applies all of it")
    return True


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
    if LOG_FILE_KEYS & set(difference.daemon_changed):
        sv.mainlog.configure(new.daemon)
    if "nice" in difference.daemon_changed:
        sv.priority.apply()
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
    for name in difference.regrouped:  # same process, its new group: no restart
        sv.processes[name].config = instances[name]
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
