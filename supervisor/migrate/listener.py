"""``[eventlistener:x]``: a program with ``events = [...]`` (and ``buffer_size``).

Its stdout is the protocol's channel, so its ``stdout_logfile`` settings are
dropped; event types superd cannot send are dropped with a warning.
"""

from __future__ import annotations

from typing import Any

from ..config.eventkeys import SUPPORTED_EVENTS, UNSUPPORTED_EVENTS


def convert_listener(ctx, section, options: dict, table: dict[str, Any]) -> None:
    events = options.pop("events", None)
    names = [n.strip() for n in (events.value if events is not None else "").split(",") if n.strip()]
    kept = []
    for name in names:
        if name in SUPPORTED_EVENTS:
            kept.append(name)
        else:
            why = UNSUPPORTED_EVENTS.get(name, "not a supervisord event type")
            ctx.warn(events.file, section.name, "events", f"{name}: {why}; dropped")
    if kept:
        table["events"] = kept
    else:
        ctx.warn(section.file, section.name, "events", "no event type superd can send: the listener "
                 "gets none (events = [\"PROCESS_STATE\"] to start with)")
        table["events"] = ["PROCESS_STATE"]
    size = options.pop("buffer_size", None)
    if size is not None and size.value.strip().isdigit() and int(size.value) >= 1:
        table["buffer_size"] = int(size.value)
    handler = options.pop("result_handler", None)
    if handler is not None and handler.value.strip() != "supervisor.dispatchers:default_handler":
        ctx.warn(handler.file, section.name, "result_handler", "superd takes OK as the only "
                 "success (supervisord's default handler); dropped")
    for key in ("stdout_logfile", "stdout_logfile_maxbytes", "stdout_logfile_backups"):
        option = options.pop(key, None)
        if option is not None:
            ctx.note(option.file, section.name, key, "a listener's stdout is its channel to superd; dropped")
