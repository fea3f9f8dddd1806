"""The keys of hooks, event listeners and captured output's timestamps.

``PROGRAM_EVENT_KEYS`` joins the program key table and ``DAEMON_EVENT_KEYS``
the ``[superd]`` one (:mod:`.keys`). ``events`` takes supervisord's event
type names; the ones superd has no equivalent for are refused here, with why.
"""

from __future__ import annotations

from typing import Any

from .checks import Check, array, boolean, command, integer, number, string
from .problems import Invalid, Problem, quote

#: supervisord's event types superd sends to listeners (a type includes its subtypes).
SUPPORTED_EVENTS = (
    "EVENT",
    "PROCESS_STATE", "PROCESS_STATE_STOPPED", "PROCESS_STATE_STARTING", "PROCESS_STATE_RUNNING",
    "PROCESS_STATE_BACKOFF", "PROCESS_STATE_STOPPING", "PROCESS_STATE_EXITED", "PROCESS_STATE_FATAL",
    "PROCESS_STATE_UNKNOWN",
    "SUPERVISOR_STATE_CHANGE", "SUPERVISOR_STATE_CHANGE_RUNNING", "SUPERVISOR_STATE_CHANGE_STOPPING",
    "PROCESS_GROUP", "PROCESS_GROUP_ADDED", "PROCESS_GROUP_REMOVED",
    "TICK", "TICK_5", "TICK_60", "TICK_3600",
)

#: supervisord's event types superd has no equivalent for, and why.
UNSUPPORTED_EVENTS = {
    "REMOTE_COMMUNICATION": "superd has no sendRemoteCommEvent to send it",
    "PROCESS_LOG": "superd does not copy program output to event listeners",
    "PROCESS_LOG_STDOUT": "superd does not copy program output to event listeners",
    "PROCESS_LOG_STDERR": "superd does not copy program output to event listeners",
    "PROCESS_COMMUNICATION": "superd has no capture mode (stdout_capture_maxbytes)",
    "PROCESS_COMMUNICATION_STDOUT": "superd has no capture mode (stdout_capture_maxbytes)",
    "PROCESS_COMMUNICATION_STDERR": "superd has no capture mode (stdout_capture_maxbytes)",
}


def _event_name(value: Any) -> str:
    name = string(value)
    if name in UNSUPPORTED_EVENTS:
        raise Invalid(f"{quote(name)} is a supervisord event superd cannot send: {UNSUPPORTED_EVENTS[name]}")
    if name not in SUPPORTED_EVENTS:
        raise Invalid(f"unknown event type {quote(name)}; expected one of " + ", ".join(SUPPORTED_EVENTS))
    return name


def _events(value: Any) -> tuple[str, ...]:
    names = array(_event_name, "an array of supervisord event types like \"PROCESS_STATE_EXITED\"")(value)
    if not names:
        raise Invalid("expected at least one event type")
    return tuple(dict.fromkeys(names))


PROGRAM_EVENT_KEYS: dict[str, Check] = {
    "before_start": command,
    "after_stop": command,
    "hook_timeout": number(0, above=True),
    "log_timestamps": boolean,
    "events": _events,
    "buffer_size": integer(1, 100000),
}

DAEMON_EVENT_KEYS: dict[str, Check] = {
    "log_timestamps": boolean,
}


def check_listener(values: dict[str, Any], where: str, file: str | None, problems: list[Problem]) -> None:
    """An event listener talks on its stdout: it cannot send it elsewhere."""
    if "events" not in values:
        if "buffer_size" in values:
            problems.append(Problem(file, f"{where}.buffer_size", "only for an event listener (with events = [...])"))
        return
    if values.get("stdout", "auto") not in ("auto",):
        problems.append(Problem(file, f"{where}.stdout", "an event listener's stdout is its channel to superd: "
                                "leave stdout unset"))
    if values.get("stderr") == "stdout":
        problems.append(Problem(file, f"{where}.stderr", "an event listener's stdout is its channel to superd; "
                                "its stderr cannot go there"))
    if values.get("stdin"):
        problems.append(Problem(file, f"{where}.stdin", "an event listener's stdin is its channel from superd: "
                                "leave stdin unset"))
