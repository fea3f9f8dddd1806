"""superctl: the command line for a running superd.

The click group and its commands; those about the config file (reload,
update, avail) are in :mod:`.reloading` and ``maintail`` in
:mod:`.maintail`, registered here in the order help lists them. Startup time
matters (scripts call superctl in loops), so its path imports only click, the
client, the protocol constants and the small cli modules next to it; the
config package (to find the socket), shell completion and the interactive
shell are imported where they are needed.
"""

from __future__ import annotations

import json

import click

from .. import __version__
from ..control import protocol
from ..control.errors import InvalidParams, SuperdError
from .app import WAITING_TIMEOUT, App, reply_timeout, resolve_socket, waiting_timeout  # noqa: F401
from .maintail import maintail
from .reloading import avail, reload, update
from .render import STATUS_FIELDS, echo_lines, error, print_results, print_status, report


# --------------------------------------------------------------------------
# The command group


class _Group(click.Group):
    """Turns superd's errors into a message on stderr and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SuperdError as exc:
            report(exc)
            ctx.exit(exc.exit_code)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were defined


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EPILOG = """\b
Socket: -s PATH, else $SUPERD_SOCKET, else the config file's [superd] socket
(-c FILE, else $SUPERD_CONFIG, ./superd.toml, /etc/superd/superd.toml).

\b
Time-out: superd must answer within $SUPERCTL_TIMEOUT seconds (30); commands
that wait (start, stop, restart, reload, shutdown, wait) get an hour, or
their --timeout and 30 s more.

\b
Exit codes: 0 ok, 1 the action failed, 2 usage, 3 a process is not in the
asked state, 4 no such program, 7 superd is not reachable.
"""


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.option("-s", "--socket", "socket_path", metavar="PATH", help="superd's control socket.")
@click.option("-c", "--config", "config_file", metavar="FILE", help="Read the socket path from this config file.")
@click.version_option(__version__, "-V", "--version", prog_name="superctl", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, socket_path: str | None, config_file: str | None) -> None:
    """Control a running superd."""
    if ctx.obj is None or socket_path or config_file:
        app = App(socket_path, config_file)
        app.in_shell = bool(getattr(ctx.obj, "in_shell", False))
        ctx.obj = app


def _app(ctx: click.Context) -> App:
    return ctx.find_object(App)


# Completion (:mod:`.completion`) is imported only when a shell asks for it.


def complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from . import completion

    return completion.complete_names(ctx, param, incomplete)


def complete_signal(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from . import completion

    return completion.complete_signal(ctx, param, incomplete)


names_argument = click.argument("names", nargs=-1, required=True, metavar="NAME...|all",
                                shell_complete=complete_names)
wait_timeout_option = click.option("--timeout", type=click.FloatRange(min=0), metavar="S",
                                   help="Give up after S seconds.")


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME...]", shell_complete=complete_names)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def status(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Show processes: name, state, pid and uptime or exit info.

    Exits 3 when a listed process is not running."""
    with _app(ctx).client() as client:
        procs = client.status(list(names) if names else None) if as_json else _status_to_print(client, names)
    if as_json:
        click.echo(json.dumps(procs, indent=2))
    else:
        print_status(procs)
    if any(p.get("state") != "running" for p in procs):
        ctx.exit(protocol.EXIT_NOT_IN_STATE)


def _status_to_print(client, names: tuple[str, ...]) -> list[dict]:
    """The processes with only the members the plain output prints; all of
    them from a superd older than status's "fields"."""
    params: dict = {"fields": list(STATUS_FIELDS)}
    if names:
        params["names"] = list(names)
    try:
        return client.call("status", **params)
    except InvalidParams:  # "unknown param(s): fields" (or bad names: refused again below)
        return client.status(list(names) if names else None)


#: A start, stop or restart that takes longer than this many seconds prints
#: its steps (on stderr) as superd reports them; a quicker one only its results.
PROGRESS_AFTER = 1.0


def _progress(step: dict) -> None:
    click.echo(f"{step.get('name')}: {step.get('step')}", err=True)


def _action(ctx: click.Context, method: str, names: tuple[str, ...], no_wait: bool, timeout: float | None,
            **extra: bool) -> None:
    reply = reply_timeout() if no_wait else waiting_timeout(timeout)
    with _app(ctx).client(timeout=reply) as client:
        results = getattr(client, method)(list(names), wait=not no_wait, timeout=timeout,
                                          progress=_progress, progress_after=PROGRESS_AFTER, **extra)
    if not print_results(results):
        ctx.exit(protocol.EXIT_FAILED)


@cli.command()
@names_argument
@click.option("--no-wait", is_flag=True, help="Return once the start is under way.")
@wait_timeout_option
@click.pass_context
def start(ctx, names, no_wait, timeout):
    """Start processes; wait until they run (startsecs passed) or fail."""
    _action(ctx, "start", names, no_wait, timeout)


@cli.command()
@names_argument
@click.option("--no-wait", is_flag=True, help="Return once the stop signal is sent.")
@wait_timeout_option
@click.pass_context
def stop(ctx, names, no_wait, timeout):
    """Stop processes; wait until they are reaped."""
    _action(ctx, "stop", names, no_wait, timeout)


@cli.command()
@names_argument
@click.option("--no-wait", is_flag=True, help="Return once the restart is under way.")
@click.option("--rolling", is_flag=True,
              help="One at a time: the next stops only once the one before is ready again.")
@wait_timeout_option
@click.pass_context
def restart(ctx, names, no_wait, rolling, timeout):
    """Stop, then start processes; wait until they run again.

    With --rolling, a pool keeps all but one instance serving: each instance
    is restarted in turn, and the first that fails to come back ready ends
    the restart (exit 1), leaving the rest untouched."""
    _action(ctx, "restart", names, no_wait, timeout, rolling=rolling)


@cli.command()
@click.argument("sig", metavar="SIG", shell_complete=complete_signal)
@names_argument
@click.pass_context
def signal(ctx, sig: str, names: tuple[str, ...]) -> None:
    """Send signal SIG (TERM, SIGHUP, 10, ...) to processes."""
    value: str | int = int(sig) if sig.isdigit() else sig
    with _app(ctx).client() as client:
        results = client.signal(value, list(names))
    if not print_results(results):
        ctx.exit(protocol.EXIT_FAILED)


@cli.command()
@click.argument("name", required=False, shell_complete=complete_names)
@click.pass_context
def pid(ctx, name: str | None) -> None:
    """Print superd's pid, or the pids of NAME's processes."""
    with _app(ctx).client() as client:
        result = client.pid(name)
    if "pids" in result:
        entries = result["pids"]
    elif name is None:
        click.echo(result.get("pid"))
        return
    else:
        entries = [{"name": name, "pid": result.get("pid")}]
    missing = []
    for entry in entries:
        if entry.get("pid") is None:
            missing.append(str(entry.get("name")))
        else:
            click.echo(entry["pid"])
    if missing:
        error(f"not running: {', '.join(missing)}")
        ctx.exit(protocol.EXIT_FAILED)


@cli.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=10, show_default=True, help="Lines to show.")
@click.argument("name", shell_complete=complete_names)
@click.argument("stream", type=click.Choice(["stdout", "stderr"]), default="stdout", required=False)
@click.pass_context
def tail(ctx, follow: bool, lines: int, name: str, stream: str) -> None:
    """Print the last lines of NAME's stdout (or stderr) log."""
    client = _app(ctx).client()
    echo_lines(ctx, client, None if follow else (lambda: client.tail(name, stream, lines)),
               lambda: client.follow(name, stream, lines))


cli.add_command(maintail)


@cli.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.argument("names", nargs=-1, metavar="[NAME...]", shell_complete=complete_names)
@click.pass_context
def events(ctx, follow: bool, as_json: bool, names: tuple[str, ...]) -> None:
    """Print what superd saw: state changes, readiness, health, reloads."""
    from .eventview import line

    client = _app(ctx).client()
    if not follow:
        with client:
            for event in client.events(list(names) or None):
                click.echo(line(event, as_json))
        return
    it = client.follow_events(list(names) or None)
    try:
        for event in it:
            if event.get("type") == "dropped":
                error(str(event.get("reason")))
                ctx.exit(protocol.EXIT_FAILED)
            click.echo(line(event, as_json))
    except KeyboardInterrupt:
        ctx.exit(protocol.EXIT_OK)
    finally:
        it.close()


cli.add_command(reload)
cli.add_command(update)
cli.add_command(avail)


@cli.command()
@names_argument
@click.pass_context
def clear(ctx, names: tuple[str, ...]) -> None:
    """Empty processes' log files and what tail keeps of their output."""
    with _app(ctx).client() as client:
        results = client.clear(list(names))
    if not print_results(results):
        ctx.exit(protocol.EXIT_FAILED)


@cli.command()
@click.argument("name", shell_complete=complete_names)
@click.pass_context
def fg(ctx, name: str) -> None:
    """Follow NAME's output and send each line typed to its stdin.

    NAME needs stdin = true. Ctrl-C or Ctrl-D leaves; the program keeps running."""
    from .foreground import foreground

    ctx.exit(foreground(_app(ctx), name))


@cli.command()
@click.option("--no-wait", is_flag=True, help="Return once the shutdown has begun.")
@click.pass_context
def shutdown(ctx, no_wait: bool) -> None:
    """Stop every program and make superd exit; wait until it is gone."""
    with _app(ctx).client(timeout=reply_timeout() if no_wait else WAITING_TIMEOUT) as client:
        result = client.shutdown(wait=not no_wait)
    who = f"superd (pid {result['pid']})" if isinstance(result, dict) and result.get("pid") else "superd"
    click.echo(f"{who}: shutting down" if no_wait else f"{who}: shut down")


@cli.command()
@click.pass_context
def state(ctx) -> None:
    """Print superd's own state.

    One of starting, running, reloading, shutting_down."""
    with _app(ctx).client() as client:
        info = client.state()
        progress = info.get("progress")
        click.echo(f"{info.get('state')} ({progress})" if progress else info.get("state"))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def sockets(ctx, as_json: bool) -> None:
    """List the listening sockets superd holds: address, programs."""
    with _app(ctx).client() as client:
        held = client.sockets()
    if as_json:
        click.echo(json.dumps(held, indent=2))
        return
    width = max((len(str(s.get("name"))) for s in held), default=0)
    address = max((len(str(s.get("address"))) for s in held), default=0)
    for s in held:
        users = ", ".join(s.get("programs") or ()) or "(no program)"
        click.echo(f"{s.get('name')!s:<{width}}   {s.get('address')!s:<{address}}   {users}")


@cli.command()
@click.option("--state", "want", type=click.Choice(protocol.WAIT_STATES), default="running",
              show_default=True, help='The state to wait for; "ready": running and its readiness check passed.')
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="S",
              help="Give up after S seconds (exit 3).")
@names_argument
@click.pass_context
def wait(ctx, want: str, timeout: float, names: tuple[str, ...]) -> None:
    """Wait until processes reach a state (exit 3 at the timeout)."""
    # superd answers at the timeout; the margin only guards against a wedged daemon.
    with _app(ctx).client(timeout=timeout + 10) as client:
        procs = client.wait(list(names), state=want, timeout=timeout)
    for p in procs:
        click.echo(f"{p.get('name')}: {p.get('state')}{', ready' if want == 'ready' else ''}")


@cli.command()
@click.pass_context
def version(ctx) -> None:
    """Print superctl's and the running superd's versions."""
    click.echo(f"superctl {__version__}")
    with _app(ctx).client() as client:
        info = client.version()
    click.echo(f"superd {info.get('version')} (pid {info.get('pid')}, Python {info.get('python')})")


@cli.command()
@click.pass_context
def shell(ctx) -> None:
    """Interactive prompt with history and tab completion."""
    app = _app(ctx)
    if app.in_shell:
        error("already in the shell")
        return
    app.in_shell = True
    try:
        _Shell(app).run()
    finally:
        app.in_shell = False


def _Shell(app: App):  # noqa: N802 - builds the shell like a class would
    """The interactive shell, imported (with ``cmd`` and readline) on first use."""
    from .shell import Shell

    return Shell(app, cli)


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``superctl``)."""
    cli.main(args=argv, prog_name="superctl")


if __name__ == "__main__":
    main()
