"""``/metrics``: superd and its processes in Prometheus' text format (0.0.4).

Per process (labels ``name`` and ``group``): up, state (one series per
state, 1 for the current one), restarts, exits (by ``kind``: expected or
unexpected), the start time, memory and CPU seconds (from the process's
cgroup or /proc, when known) and health (1 healthy, 0 unhealthy, absent
without an ``alive`` check). For superd: its state, reloads, start time and
uptime, and how many processes there are.
"""

from __future__ import annotations

import os
import time
from typing import Iterable

from .. import __version__
from ..core.states import DaemonState, ProcessState

_STATES = [s.value for s in ProcessState]
_DAEMON_STATES = [s.value for s in DaemonState]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict, float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                text = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{text}}} {_number(value)}")
            else:
                self.lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process from /proc (its children that were waited for included)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def render(sv, stats) -> str:
    out = _Writer()
    processes = sorted(sv.processes.values(), key=lambda p: (p.group, p.name))
    usage = getattr(sv.runtime, "usage", None)
    memory: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for p in processes:
        if p.pid is None:
            continue
        if usage is not None:
            try:
                found = usage(p).get("memory")
            except Exception:
                found = None
            if found is not None:
                memory[p.name] = found
        seconds = _cpu_seconds(p.pid)
        if seconds is not None:
            cpu[p.name] = seconds

    def labels(p) -> dict:
        return {"name": p.name, "group": p.group}

    out.family("superd_process_up", "gauge", "1 when the process is running (startsecs passed), else 0.",
               [(labels(p), p.state is ProcessState.RUNNING) for p in processes])
    out.family("superd_process_state", "gauge", "1 for the state the process is in, 0 for the others.",
               [({**labels(p), "state": s}, p.state.value == s) for p in processes for s in _STATES])
    out.family("superd_process_restarts_total", "counter", "Automatic restarts (and start retries) so far.",
               [(labels(p), p.restarts) for p in processes])
    out.family("superd_process_exits_total", "counter",
               "Runs that ended on their own, by kind: expected (exitcodes) or unexpected.",
               [({**labels(p), "kind": kind}, stats.exits.get(p.name, {}).get(kind, 0))
                for p in processes for kind in ("expected", "unexpected")])
    out.family("superd_process_start_time_seconds", "gauge", "When the process last started (epoch seconds).",
               [(labels(p), stats.start_time(p)) for p in processes if stats.start_time(p)])
    out.family("superd_process_memory_bytes", "gauge", "Memory of the running process (its cgroup, or RSS).",
               [(labels(p), memory[p.name]) for p in processes if p.name in memory])
    out.family("superd_process_cpu_seconds_total", "counter", "CPU time of the running process's main pid.",
               [(labels(p), cpu[p.name]) for p in processes if p.name in cpu])
    out.family("superd_process_healthy", "gauge", "1 healthy, 0 unhealthy or unknown; only with an alive check.",
               [(labels(p), p.health.state == "healthy") for p in processes if p.health is not None])
    out.family("superd_process_pid", "gauge", "The process's pid, 0 when not running.",
               [(labels(p), p.pid or 0) for p in processes])
    out.family("superd_state", "gauge", "1 for superd's state, 0 for the others.",
               [({"state": s}, sv.state.value == s) for s in _DAEMON_STATES])
    out.family("superd_reloads_total", "counter", "Config reloads applied.", [({}, stats.reloads)])
    out.family("superd_start_time_seconds", "gauge", "When superd started (epoch seconds).",
               [({}, round(stats.started, 3))])
    out.family("superd_uptime_seconds", "gauge", "How long superd has been running.",
               [({}, round(time.time() - stats.started, 3))])
    out.family("superd_processes", "gauge", "Processes superd supervises.", [({}, len(processes))])
    out.family("superd_build_info", "gauge", "superd's version.", [({"version": __version__}, 1)])
    return out.text()
