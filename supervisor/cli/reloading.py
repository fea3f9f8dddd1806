"""superctl's commands about the config file: ``reload`` (apply it, by
instance), ``update`` (apply it, reported by group as supervisorctl does;
with names, only when it changes nothing else) and ``avail`` (what it
configures, in use or not yet).

They are registered on superctl's group by :mod:`supervisor.cli.superctl`;
like it, this module imports only click, the client's errors, the protocol
constants and the small cli modules next to it.
"""

from __future__ import annotations

import json

import click

from ..control import protocol
from ..control.errors import InvalidConfig
from .app import WAITING_TIMEOUT, App
from .render import avail_lines, error


@click.command()
@click.pass_context
def reload(ctx) -> None:
    """Re-read the config and apply the difference."""
    with ctx.find_object(App).client(timeout=WAITING_TIMEOUT) as client:
        try:
            result = client.reload()
        except InvalidConfig as exc:
            _config_refused(ctx, exc)
    printed = False
    for key in ("added", "changed", "removed", "regrouped"):
        for name in result.get(key) or ():
            click.echo(f"{name}: {key}")
            printed = True
    if not printed:
        click.echo("no changes")


def _config_refused(ctx: click.Context, exc: InvalidConfig) -> None:
    """The config file is invalid: its problems on stderr, exit 1."""
    error(f"config not reloaded: {exc}")
    if isinstance(exc.data, list):
        for problem in exc.data:
            if str(problem) not in exc.message:
                click.echo(f"  {problem}", err=True)
    ctx.exit(protocol.EXIT_FAILED)


def _complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from . import completion  # only when a shell asks

    return completion.complete_names(ctx, param, incomplete)


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME...|all]", shell_complete=_complete_names)
@click.pass_context
def update(ctx, names: tuple[str, ...]) -> None:
    """Apply the config file (as reload), reporting by group as supervisorctl.

    With NAMEs, only when the file changes nothing but those groups
    (a config is applied whole). Prints nothing when nothing changed."""
    with ctx.find_object(App).client(timeout=WAITING_TIMEOUT) as client:
        try:
            groups = client.update(list(names) or None).get("groups") or {}
        except InvalidConfig as exc:
            _config_refused(ctx, exc)
    for group in groups.get("removed") or ():
        click.echo(f"{group}: stopped\n{group}: removed process group")
    for group in groups.get("changed") or ():
        click.echo(f"{group}: stopped\n{group}: updated process group")
    for group in groups.get("added") or ():
        click.echo(f"{group}: added process group")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_context
def avail(ctx, as_json: bool) -> None:
    """List every configured process: in use, or avail (in the config file, not loaded yet).

    Also whether it starts on its own (auto or manual) and its priority."""
    with ctx.find_object(App).client() as client:
        result = client.avail()
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for line in avail_lines(result.get("processes") or []):
            click.echo(line)
    if result.get("config_error"):
        error(f"only what is in use is listed: {result['config_error']}")
        ctx.exit(protocol.EXIT_FAILED)
