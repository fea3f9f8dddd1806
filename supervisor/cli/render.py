"""How superctl prints what superd answers: aligned status lines, per-name
results, and errors on stderr (with the processes a failed ``wait`` left)."""

from __future__ import annotations

import click

from ..control import protocol
from ..control.errors import NotInState, SuperdError
from ..core.durations import format_duration

_STATE_WIDTH = max(len(s) for s in protocol.PROCESS_STATES)


def error(message: str) -> None:
    """``superctl: message`` on stderr."""
    click.echo(f"superctl: {message}", err=True)


def describe(proc: dict) -> str:
    """The description, or one built from the other fields if superd sent none."""
    desc = proc.get("description")
    if desc:
        return str(desc)
    if proc.get("pid") is not None:
        uptime = proc.get("uptime")
        if uptime is None:
            return f"pid {proc['pid']}"
        return f"pid {proc['pid']}, uptime {format_duration(uptime)}"
    status = proc.get("exitstatus")
    if status is None:
        return ""
    if status < 0:
        return f"killed by signal {-status}"
    return f"exited with code {status}"


def shown_name(proc: dict) -> str:
    """A process as supervisorctl names it: ``group:name`` in a ``[group.NAME]``, else its name."""
    name, group = str(proc.get("name", "")), proc.get("group")
    if group and group != proc.get("program", group) and group != name:
        return f"{group}:{name}"
    return name


#: The members of a process that :func:`status_lines` reads: all that plain
#: ``superctl status`` asks superd for (the rest, cgroup reads among them,
#: costs superd a lot with thousands of programs).
STATUS_FIELDS = ("name", "group", "program", "state", "pid", "exitstatus", "uptime", "description", "status_text")


def status_lines(procs: list[dict]) -> list[str]:
    """supervisorctl-like aligned lines: name, STATE, description."""
    if not procs:
        return []
    rows = []
    for p in procs:
        text = describe(p)
        status_text = p.get("status_text")
        if status_text:  # the program's own word on itself (sd_notify STATUS=)
            text += f"; status: {status_text}"
        rows.append((shown_name(p), str(p.get("state", "")), text))
    name_width = max(len(name) for name, _, _ in rows)
    state_width = max(_STATE_WIDTH, *(len(state) for _, state, _ in rows))
    return [f"{name:<{name_width}}   {state.upper():<{state_width}}   {text}".rstrip() for name, state, text in rows]


def print_status(procs: list[dict]) -> None:
    """The status lines on stdout, in one write (thousands of echo calls,
    each with its own terminal checks and flush, cost more than the call)."""
    lines = status_lines(procs)
    if lines:
        click.echo("\n".join(lines))


def avail_lines(processes: list[dict]) -> list[str]:
    """supervisorctl's avail lines: name, "in use" or "avail", "auto" or
    "manual", priority (supervisord's group:process priorities, both the program's here)."""
    width = max([32, *(len(str(p.get("name", ""))) for p in processes)])
    return [f"{p.get('name')!s:<{width}} {'in use' if p.get('in_use') else 'avail':<9} "
            f"{'auto' if p.get('autostart') else 'manual':<9} {p.get('priority')}:{p.get('priority')}"
            for p in processes]


def print_results(results: list[dict]) -> bool:
    """Print ``name: message`` lines; True when every result is ok."""
    all_ok = True
    for r in results:
        ok = bool(r.get("ok"))
        all_ok = all_ok and ok
        message = r.get("message") or (r.get("state") if ok else "ERROR")
        click.echo(f"{r.get('name')}: {message}")
    return all_ok


def report(exc: SuperdError) -> None:
    """An error from superd on stderr, with the processes a ``wait`` left."""
    error(str(exc))
    if isinstance(exc, NotInState) and isinstance(exc.data, list):
        for line in status_lines([p for p in exc.data if isinstance(p, dict)]):
            click.echo(line, err=True)


def echo_lines(ctx: click.Context, client, last, follow) -> None:
    """Print ``last()`` (a list of lines), or with ``follow`` set the lines of
    ``follow()`` (a closable iterator) until it ends or Ctrl-C: tail and maintail."""
    if last is not None:
        with client:
            for line in last():
                click.echo(line)
        return
    it = follow()
    try:
        for line in it:
            click.echo(line)
    except KeyboardInterrupt:
        ctx.exit(protocol.EXIT_OK)
    finally:
        it.close()
