"""``superctl fg NAME``: a program's output on the terminal, the terminal's
lines on its stdin, as supervisorctl's ``fg``.

One thread per captured stream follows it (``tail -f``, stdout lines to
stdout, stderr lines to stderr); the main thread reads lines and sends each
to the program's stdin pipe (``stdin = true``). Ctrl-C or Ctrl-D (end of
input) leaves; the program keeps running.
"""

from __future__ import annotations

import sys
import threading

import click

from ..control import protocol
from ..control.connection import Connection
from ..control.errors import SuperdError
from .app import App
from .render import error, report

#: Lines of each stream shown when fg begins.
BACKLOG_LINES = 10
#: How long leaving waits for a follower thread to end.
JOIN_SECONDS = 5.0


class _Follower(threading.Thread):
    """Prints one stream of the program as it comes, until stopped."""

    def __init__(self, app: App, name: str, stream: str) -> None:
        super().__init__(name=f"superctl fg {name} {stream}", daemon=True)
        client = app.client(timeout=None)
        self.connection = Connection(client.path, client.connect_timeout, None)
        self.lines = client.follow(name, stream, BACKLOG_LINES, connection=self.connection)
        self.to_stderr = stream == "stderr"
        self.stopping = False
        self.problem: SuperdError | None = None

    def run(self) -> None:
        try:
            for line in self.lines:
                click.echo(line, err=self.to_stderr)
        except SuperdError as exc:
            if not self.stopping:
                self.problem = exc

    def stop(self) -> None:
        self.stopping = True
        self.connection.interrupt()
        self.join(JOIN_SECONDS)


def foreground(app: App, name: str) -> int:
    """Run ``fg NAME``; superctl's exit code."""
    with app.client() as client:
        client.write_stdin(name, "")  # no such process, no stdin pipe, not running: said here
        info = client.status([name])[0]
    followers: list[_Follower] = []
    try:
        for stream in info.get("captured") or ():
            followers.append(_Follower(app, name, stream))
    except SuperdError:
        for follower in followers:
            follower.connection.close()
        raise
    click.echo("==> Press Ctrl-C to exit <==", err=True)
    for follower in followers:
        follower.start()
    try:
        with app.client() as client:
            while True:
                line = sys.stdin.readline()
                if not line:  # Ctrl-D
                    return protocol.EXIT_OK
                client.write_stdin(name, line if line.endswith("\n") else line + "\n")
                problems = [f.problem for f in followers if f.problem is not None]
                if problems:
                    report(problems[0])
                    return protocol.EXIT_FAILED
    except KeyboardInterrupt:
        return protocol.EXIT_OK
    except SuperdError as exc:
        report(exc)
        error("leaving fg")
        return protocol.EXIT_FAILED
    finally:
        for follower in followers:
            follower.stop()
