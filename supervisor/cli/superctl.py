"""superctl: the command line for a running superd.

Talks to superd's control socket through ``supervisor.client``. Startup
time matters (scripts call superctl in loops), so this module imports only
click, the client and the protocol constants; the config module, readline
and friends are imported where they are needed.
"""

from __future__ import annotations

import json
import os
import sys

import click

from .. import __version__
from ..control import protocol
from ..control.client import (
    Client,
    InvalidConfig,
    NotInState,
    SuperdError,
)

ENV_SOCKET = "SUPERD_SOCKET"
HISTORY_FILE = "~/.superctl_history"

_STATE_WIDTH = max(len(s) for s in protocol.PROCESS_STATES)
_NAME_COMMANDS_WITH_ALL = ("status", "start", "stop", "restart", "wait", "signal")
_SIGNALS = ("HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "CONT", "STOP", "TSTP", "WINCH")


# --------------------------------------------------------------------------
# Socket resolution


class ConfigProblem(click.ClickException):
    """The socket path could not be worked out (a usage error, exit 2)."""

    exit_code = protocol.EXIT_USAGE

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"superctl: {self.message}", err=True)


def resolve_socket(socket_path: str | None, config_file: str | None, environ=os.environ) -> str:
    """The socket to talk to: ``-s``, then ``$SUPERD_SOCKET``, then the
    ``socket`` of the config file (``-c``, else the one superd would find),
    else the default socket path."""
    if socket_path:
        return socket_path
    env = environ.get(ENV_SOCKET)
    if env:
        return env
    try:
        from ..config import model as config  # lazily: keeps --help and the fast path light
    except ImportError as exc:  # pragma: no cover - only before config.py exists
        raise ConfigProblem(f"cannot work out the socket path ({exc}); use -s or ${ENV_SOCKET}") from None
    path = config_file
    try:
        if not path:
            path = config.find_config_file(None, environ)
        if not path:
            return str(config.default_paths(environ=environ)["socket"])
        socket_path = str(config.read_socket_path(path, environ))
    except Exception as exc:  # the config module's own errors
        where = f" from {path}" if path and str(path) not in str(exc) else ""
        raise ConfigProblem(f"cannot read the socket path{where}: {exc}") from None
    if not socket_path:
        raise ConfigProblem(f"{path} sets no control socket (socket = \"\"); use -s")
    return socket_path


class App:
    """What the commands share: the global options and the socket path."""

    def __init__(self, socket_path: str | None = None, config_file: str | None = None) -> None:
        self.socket_option = socket_path
        self.config_option = config_file
        self.in_shell = False
        self._socket: str | None = None

    @property
    def socket_path(self) -> str:
        if self._socket is None:
            self._socket = resolve_socket(self.socket_option, self.config_option)
        return self._socket

    def client(self, **kwargs) -> Client:
        return Client(self.socket_path, **kwargs)


# --------------------------------------------------------------------------
# Output helpers


def _err(message: str) -> None:
    click.echo(f"superctl: {message}", err=True)


def _fmt_seconds(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days} days, {text}" if days else text


def _describe(proc: dict) -> str:
    """The description, or one built from the other fields if superd sent none."""
    desc = proc.get("description")
    if desc:
        return str(desc)
    if proc.get("pid") is not None:
        uptime = proc.get("uptime")
        if uptime is None:
            return f"pid {proc['pid']}"
        return f"pid {proc['pid']}, uptime {_fmt_seconds(uptime)}"
    status = proc.get("exitstatus")
    if status is None:
        return ""
    if status < 0:
        return f"killed by signal {-status}"
    return f"exited with code {status}"


def status_lines(procs: list[dict]) -> list[str]:
    """supervisorctl-like aligned lines: name, STATE, description."""
    if not procs:
        return []
    name_width = max(len(str(p.get("name", ""))) for p in procs)
    state_width = max(_STATE_WIDTH, *(len(str(p.get("state", ""))) for p in procs))
    lines = []
    for p in procs:
        name = str(p.get("name", ""))
        state = str(p.get("state", "")).upper()
        text = _describe(p)
        if p.get("status_text"):  # the program's own word on itself (sd_notify STATUS=)
            text += f"; status: {p['status_text']}"
        lines.append(f"{name:<{name_width}}   {state:<{state_width}}   {text}".rstrip())
    return lines


def _print_results(results: list[dict]) -> bool:
    """Print ``name: message`` lines; True when every result is ok."""
    all_ok = True
    for r in results:
        ok = bool(r.get("ok"))
        all_ok = all_ok and ok
        message = r.get("message") or (r.get("state") if ok else "ERROR")
        click.echo(f"{r.get('name')}: {message}")
    return all_ok


# --------------------------------------------------------------------------
# Completion (click's shell completion and the interactive shell share it)


def _daemon_names(socket_path: str) -> list[str]:
    """Names known to the running superd; [] when it cannot be asked."""
    try:
        with Client(socket_path, connect_timeout=1.0, timeout=2.0) as client:
            names = client.names()
    except Exception:
        return []
    if not isinstance(names, list):
        return []
    return [n for n in names if isinstance(n, str)]


def _complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    try:
        root = ctx.find_root()
        path = resolve_socket(root.params.get("socket_path"), root.params.get("config_file"))
    except Exception:
        return []
    names = _daemon_names(path)
    if ctx.info_name in _NAME_COMMANDS_WITH_ALL:
        names.append("all")
    return sorted({n for n in names if n.startswith(incomplete)})


def _complete_signal(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [s for s in _SIGNALS if s.startswith(incomplete.upper())]


# --------------------------------------------------------------------------
# The command group


class _Group(click.Group):
    """Turns superd's errors into a message on stderr and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SuperdError as exc:
            _report(exc)
            ctx.exit(exc.exit_code)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were defined


def _report(exc: SuperdError) -> None:
    _err(str(exc))
    if isinstance(exc, NotInState) and isinstance(exc.data, list):
        for line in status_lines([p for p in exc.data if isinstance(p, dict)]):
            click.echo(line, err=True)


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EPILOG = """\b
Socket: -s PATH, else $SUPERD_SOCKET, else the config file's [superd] socket
(-c FILE, else $SUPERD_CONFIG, ./superd.toml, /etc/superd/superd.toml).

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


names_argument = click.argument("names", nargs=-1, required=True, metavar="NAME...|all",
                                shell_complete=_complete_names)
wait_timeout_option = click.option("--timeout", type=click.FloatRange(min=0), metavar="S",
                                   help="Give up after S seconds.")


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME...]", shell_complete=_complete_names)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def status(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Show processes: name, state, pid and uptime or exit info.

    Exits 3 when a listed process is not running."""
    with _app(ctx).client() as client:
        procs = client.status(list(names) if names else None)
    if as_json:
        click.echo(json.dumps(procs, indent=2))
    else:
        for line in status_lines(procs):
            click.echo(line)
    if any(p.get("state") != "running" for p in procs):
        ctx.exit(protocol.EXIT_NOT_IN_STATE)


def _action(ctx: click.Context, method: str, names: tuple[str, ...], no_wait: bool, timeout: float | None,
            **extra: bool) -> None:
    with _app(ctx).client() as client:
        results = getattr(client, method)(list(names), wait=not no_wait, timeout=timeout, **extra)
    if not _print_results(results):
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
@click.argument("sig", metavar="SIG", shell_complete=_complete_signal)
@names_argument
@click.pass_context
def signal(ctx, sig: str, names: tuple[str, ...]) -> None:
    """Send signal SIG (TERM, SIGHUP, 10, ...) to processes."""
    value: str | int = int(sig) if sig.isdigit() else sig
    with _app(ctx).client() as client:
        results = client.signal(value, list(names))
    if not _print_results(results):
        ctx.exit(protocol.EXIT_FAILED)


@cli.command()
@click.argument("name", required=False, shell_complete=_complete_names)
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
        _err(f"not running: {', '.join(missing)}")
        ctx.exit(protocol.EXIT_FAILED)


@cli.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=10, show_default=True, help="Lines to show.")
@click.argument("name", shell_complete=_complete_names)
@click.argument("stream", type=click.Choice(["stdout", "stderr"]), default="stdout", required=False)
@click.pass_context
def tail(ctx, follow: bool, lines: int, name: str, stream: str) -> None:
    """Print the last lines of NAME's stdout (or stderr) log."""
    client = _app(ctx).client()
    if not follow:
        with client:
            for line in client.tail(name, stream, lines):
                click.echo(line)
        return
    it = client.follow(name, stream, lines)
    try:
        for line in it:
            click.echo(line)
    except KeyboardInterrupt:
        ctx.exit(protocol.EXIT_OK)
    finally:
        it.close()


@cli.command()
@click.pass_context
def reload(ctx) -> None:
    """Re-read the config and apply the difference."""
    with _app(ctx).client() as client:
        try:
            result = client.reload()
        except InvalidConfig as exc:
            _err(f"config not reloaded: {exc}")
            if isinstance(exc.data, list):
                for problem in exc.data:
                    if str(problem) not in exc.message:
                        click.echo(f"  {problem}", err=True)
            ctx.exit(protocol.EXIT_FAILED)
    printed = False
    for key in ("added", "changed", "removed"):
        for name in result.get(key) or ():
            click.echo(f"{name}: {key}")
            printed = True
    if not printed:
        click.echo("no changes")


@cli.command()
@click.option("--no-wait", is_flag=True, help="Return once the shutdown has begun.")
@click.pass_context
def shutdown(ctx, no_wait: bool) -> None:
    """Stop every program and make superd exit; wait until it is gone."""
    with _app(ctx).client() as client:
        result = client.shutdown(wait=not no_wait)
    who = f"superd (pid {result['pid']})" if isinstance(result, dict) and result.get("pid") else "superd"
    click.echo(f"{who}: shutting down" if no_wait else f"{who}: shut down")


@cli.command()
@click.pass_context
def state(ctx) -> None:
    """Print superd's own state.

    One of starting, running, reloading, shutting_down."""
    with _app(ctx).client() as client:
        click.echo(client.state().get("state"))


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
        _err("already in the shell")
        return
    app.in_shell = True
    try:
        _Shell(app).run()
    finally:
        app.in_shell = False


# --------------------------------------------------------------------------
# The interactive shell


def _shell_class():
    import cmd

    class Shell(cmd.Cmd):
        prompt = "superd> "
        _names_ttl = 2.0

        def __init__(self, app: App) -> None:
            super().__init__()
            self.app = app
            self.last_exit = 0
            self._names: tuple[float, list[str]] = (float("-inf"), [])
            if not sys.stdin.isatty():
                self.prompt = ""

        # -- running commands

        def run(self) -> None:
            readline = _readline()
            history = os.path.expanduser(HISTORY_FILE)
            if readline is not None:
                readline.set_completer_delims(" \t\n")
                try:
                    readline.read_history_file(history)
                except (OSError, ValueError):
                    pass
                readline.set_history_length(1000)
            try:
                while True:
                    try:
                        self.cmdloop()
                        break
                    except KeyboardInterrupt:
                        click.echo("^C")
            finally:
                if readline is not None:
                    try:
                        readline.write_history_file(history)
                    except OSError:
                        pass

        def run_args(self, args: list[str]) -> int:
            try:
                code = cli.main(args=args, prog_name="superctl", standalone_mode=False,
                                obj=self.app)
            except click.exceptions.Abort:
                click.echo("Aborted!", err=True)
                code = 1
            except click.ClickException as exc:
                exc.show()
                code = exc.exit_code
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except KeyboardInterrupt:
                click.echo("", err=True)
                code = 130
            except Exception as exc:  # never leave the shell on a bug either
                _err(f"internal error: {type(exc).__name__}: {exc}")
                code = 1
            self.last_exit = code if isinstance(code, int) else 0
            return self.last_exit

        def default(self, line: str) -> bool:
            import shlex

            try:
                args = shlex.split(line)
            except ValueError as exc:
                _err(str(exc))
                return False
            if args:
                self.run_args(args)
            return False

        def emptyline(self) -> bool:
            return False  # cmd's default repeats the last command

        def do_help(self, arg: str) -> bool:
            name = arg.strip()
            if name:
                if name in cli.commands:
                    self.run_args([name, "--help"])
                elif name in ("exit", "quit"):
                    click.echo("Leave the shell (Ctrl-D works too).")
                else:
                    _err(f"no such command: {name}")
                return False
            click.echo("Commands:")
            width = max(len(n) for n in cli.commands)
            for cname, command in cli.commands.items():
                if cname == "shell":
                    continue
                click.echo(f"  {cname:<{width}}  {command.get_short_help_str(limit=70)}")
            click.echo(f"  {'exit':<{width}}  Leave the shell (quit and Ctrl-D too).")
            click.echo("'help COMMAND' or 'COMMAND --help' shows a command's options.")
            return False

        def do_exit(self, arg: str) -> bool:
            return True

        do_quit = do_exit

        def do_EOF(self, arg: str) -> bool:  # noqa: N802 - cmd's name for Ctrl-D
            click.echo()
            return True

        def do_shell(self, arg: str) -> bool:
            _err("already in the shell")
            return False

        # -- completion

        def _commands(self) -> list[str]:
            return [n for n in cli.commands if n != "shell"] + ["help", "exit", "quit"]

        def daemon_names(self) -> list[str]:
            import time

            stamp, names = self._names
            now = time.monotonic()
            if now - stamp > self._names_ttl:
                try:
                    path = self.app.socket_path
                except Exception:
                    path = None
                names = _daemon_names(path) if path else []
                self._names = (now, names)
            return names

        def completenames(self, text: str, *ignored) -> list[str]:
            return [n + " " for n in self._commands() if n.startswith(text)]

        def completedefault(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
            words = line[:begidx].split()
            if not words:
                return self.completenames(text)
            command = words[0]
            if command == "help":
                return self.completenames(text) if len(words) == 1 else []
            click_cmd = cli.commands.get(command)
            if click_cmd is None:
                return []
            prev = words[-1] if len(words) > 1 else ""
            if text.startswith("-"):
                opts = sorted({o for p in click_cmd.params for o in getattr(p, "opts", ()) if o.startswith("-")}
                              | {"--help"})
                return [o + " " for o in opts if o.startswith(text)]
            if prev == "--state":
                return [s + " " for s in protocol.WAIT_STATES if s.startswith(text)]
            if prev in ("--timeout", "-n", "--lines"):
                return []
            args = [w for w in words[1:] if not w.startswith("-")]
            if command == "signal" and not args:
                return [s + " " for s in _SIGNALS if s.startswith(text.upper())]
            if command == "tail" and args:
                return [s + " " for s in ("stdout", "stderr") if s.startswith(text)]
            if command in ("reload", "shutdown", "state", "version"):
                return []
            candidates = set(self.daemon_names())
            if command in _NAME_COMMANDS_WITH_ALL:
                candidates.add("all")
            return [n + " " for n in sorted(candidates) if n.startswith(text)]

    return Shell


def _readline():
    try:
        import readline
    except ImportError:  # pragma: no cover - Python built without readline
        return None
    return readline


class _Shell:
    """Built on first use so that ``cmd`` is only imported for the shell."""

    def __new__(cls, app: App):
        return _shell_class()(app)


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``superctl``)."""
    cli.main(args=argv, prog_name="superctl")


if __name__ == "__main__":
    main()
