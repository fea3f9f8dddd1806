"""``superctl shell``: an interactive prompt that runs superctl's commands,
with readline history and tab completion of commands, options and the names
the running superd knows. Imported only when the shell runs."""

from __future__ import annotations

import cmd
import os
import shlex
import sys
import time

import click

from ..control import protocol
from .app import App
from .completion import NAME_COMMANDS_WITH_ALL, SIGNALS, daemon_names
from .render import error

HISTORY_FILE = "~/.superctl_history"


def _readline():
    try:
        import readline
    except ImportError:  # pragma: no cover - Python built without readline
        return None
    return readline


class Shell(cmd.Cmd):
    """Runs each line as ``superctl LINE`` through ``group`` (superctl's
    click group), sharing ``app``; an error never leaves the shell."""

    prompt = "superd> "
    _names_ttl = 2.0

    def __init__(self, app: App, group: click.Group) -> None:
        super().__init__()
        self.app = app
        self.group = group
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
            code = self.group.main(args=args, prog_name="superctl", standalone_mode=False,
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
            error(f"internal error: {type(exc).__name__}: {exc}")
            code = 1
        self.last_exit = code if isinstance(code, int) else 0
        return self.last_exit

    def default(self, line: str) -> bool:
        try:
            args = shlex.split(line)
        except ValueError as exc:
            error(str(exc))
            return False
        if args and not args[0].startswith("-") and args[0] not in self.group.commands:
            # One line, not click's usage of the whole group.
            error(f"unknown command: {args[0]} (try help)")
            self.last_exit = 2
        elif args:
            self.run_args(args)
        return False

    def emptyline(self) -> bool:
        return False  # cmd's default repeats the last command

    def do_help(self, arg: str) -> bool:
        commands = self.group.commands
        name = arg.strip()
        if name:
            if name in commands:
                self.run_args([name, "--help"])
            elif name in ("exit", "quit"):
                click.echo("Leave the shell (Ctrl-D works too).")
            else:
                error(f"no such command: {name}")
            return False
        click.echo("Commands:")
        width = max(len(n) for n in commands)
        for cname, command in commands.items():
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
        error("already in the shell")
        return False

    # -- completion

    def _commands(self) -> list[str]:
        return [n for n in self.group.commands if n != "shell"] + ["help", "exit", "quit"]

    def daemon_names(self) -> list[str]:
        stamp, names = self._names
        now = time.monotonic()
        if now - stamp > self._names_ttl:
            try:
                path = self.app.socket_path
            except Exception:
                path = None
            names = daemon_names(path) if path else []
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
        click_cmd = self.group.commands.get(command)
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
            return [s + " " for s in SIGNALS if s.startswith(text.upper())]
        if command == "tail" and args:
            return [s + " " for s in ("stdout", "stderr") if s.startswith(text)]
        if command in ("reload", "shutdown", "state", "version", "maintail", "avail"):
            return []
        candidates = set(self.daemon_names())
        if command in NAME_COMMANDS_WITH_ALL:
            candidates.add("all")
        return [n + " " for n in sorted(candidates) if n.startswith(text)]
