"""supervisord's process information methods (``getProcessInfo``,
``getAllProcessInfo``, ``getAllConfigInfo``), a part of
:class:`~supervisor.http.rpcinterface.RpcInterface`."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from ..config import GroupConfig, InstanceConfig
from ..core.process import Process
from ..core.states import ProcessState
from ..daemon.available import configured
from .rpcbase import rpc

#: supervisord's numbers for process states (supervisor/states.py).
PROCESS_CODES = {ProcessState.STOPPED: 0, ProcessState.STARTING: 10, ProcessState.RUNNING: 20,
                 ProcessState.BACKOFF: 30, ProcessState.STOPPING: 40, ProcessState.EXITED: 100,
                 ProcessState.FATAL: 200}
#: supervisord's priority of a ``[group:x]`` that sets none.
GROUP_PRIORITY = 999


class InfoMethods:
    """Needs ``sv``, ``stats`` and ``_process`` of the interface."""

    # ------------------------------------------------------------------ process info

    def _info(self, process: Process) -> dict:
        state = process.state
        code = PROCESS_CODES[state]
        start, stop, now = self.stats.start_time(process), self.stats.stop_time(process), int(time.time())
        spawnerr = process.reason if state in (ProcessState.BACKOFF, ProcessState.FATAL) else ""
        exitstatus = process.exitstatus or 0
        stdout, stderr = self._logfile(process, "stdout"), self._logfile(process, "stderr")
        if state is ProcessState.RUNNING:
            up = int(process.uptime() or 0)
            description = f"pid {process.pid}, uptime {up // 3600}:{up % 3600 // 60:02d}:{up % 60:02d}"
        elif state in (ProcessState.BACKOFF, ProcessState.FATAL):
            description = spawnerr or f'unknown error (try "tail {process.name}")'
        elif state in (ProcessState.STOPPED, ProcessState.EXITED):
            description = time.strftime("%b %d %I:%M %p", time.localtime(stop)) if start and stop else "Not started"
        else:
            description = ""
        return {"name": process.name, "group": process.group, "description": description,
                "start": start, "stop": stop, "now": now, "state": code, "statename": state.name,
                "spawnerr": spawnerr, "exitstatus": exitstatus, "logfile": stdout, "stdout_logfile": stdout,
                "stderr_logfile": stderr, "pid": process.pid or 0}

    def _logfile(self, process: Process, which: str) -> str:
        if self.sv.single:
            return ""
        try:
            stream = self.sv.outputs.stream(process.config, which, self.sv.config.daemon.logs_dir)
        except Exception:
            return ""
        return stream.path or ""

    @rpc("struct", "string")
    async def supervisor_getProcessInfo(self, name) -> dict:
        """Info about one process (group:name)."""
        return self._info(self._process(name))

    @rpc("array")
    async def supervisor_getAllProcessInfo(self) -> list:
        """Info about every process, by group and name."""
        return [self._info(p) for p in sorted(self.sv.processes.values(), key=lambda p: (p.group, p.name))]

    @rpc("array")
    async def supervisor_getAllConfigInfo(self) -> list:
        """The config of every process: those in use, then those the config file would add (inuse false)."""
        infos = []
        in_use_groups = {group.name: group for group in self.sv.config.groups}
        found = configured(self.sv)
        for instance, in_use in sorted(found.instances, key=lambda e: (e[0].group, e[0].name)):
            groups = in_use_groups if in_use else found.groups_on_disk  # as a reread would have them
            program = instance.program
            process = self.sv.processes[instance.name] if in_use else None  # not loaded: no log file yet
            infos.append({
                "name": instance.name, "group": instance.group, "inuse": in_use, "autostart": program.autostart,
                "group_prio": _group_priority(instance, groups), "process_prio": program.priority,
                "command": " ".join(instance.command), "directory": instance.directory or "",
                "exitcodes": list(program.exitcodes), "startsecs": int(program.startsecs),
                "startretries": program.startretries, "stopsignal": _signame(program.stopsignal),
                "stopwaitsecs": int(program.stopwaitsecs), "stopasgroup": program.stopasgroup,
                "killasgroup": program.killasgroup, "autorestart": str(program.autorestart.value)
                if hasattr(program.autorestart, "value") else str(program.autorestart),
                "stdout_logfile": "" if process is None else self._logfile(process, "stdout"),
                "stderr_logfile": "" if process is None else self._logfile(process, "stderr"),
                "redirect_stderr": instance.stderr == "stdout",
                "uid": os.getuid() if getattr(program, "user", None) is None else -1,
            })
        return infos


def _group_priority(instance: InstanceConfig, groups: Mapping[str, GroupConfig]) -> int:
    """supervisord's group_prio: its ``[group.NAME]``'s priority; a program in no
    group is its own group, of its own priority. An instance in use has its
    group's priority as superd runs it; one only the file on disk has, the
    priority the file gives its group."""
    group = groups.get(instance.group)
    if group is None:
        return instance.program.priority
    return GROUP_PRIORITY if group.priority is None else group.priority


def _signame(sig: Any) -> str:
    try:
        return signal.Signals(int(sig)).name.removeprefix("SIG")
    except (ValueError, TypeError):
        return str(sig)
