"""``superctl maintail``: the last lines of superd's own log, or its new lines as they come."""

from __future__ import annotations

import click

from .app import App
from .render import echo_lines


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=10, show_default=True, help="Lines to show.")
@click.pass_context
def maintail(ctx: click.Context, follow: bool, lines: int) -> None:
    """Print the last lines of superd's own log (its log_file, or what it logged since it started)."""
    client = ctx.find_object(App).client()
    echo_lines(ctx, client, None if follow else (lambda: client.maintail(lines)),
               lambda: client.follow_main(lines))
