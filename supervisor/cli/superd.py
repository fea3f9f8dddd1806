"""The ``superd`` command: load the config, become an init, run the supervisor."""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
from typing import Optional, Sequence

import click

from .. import __version__
from .. import config as configuration
from ..daemon import ownlog, pid1

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2


#: superd raises its soft RLIMIT_NOFILE to the hard limit, up to this.
FD_CEILING = 1 << 16


def _fd_target() -> int:
    """The soft limit :func:`_raise_fd_limit` aims at."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return max(soft, FD_CEILING) if soft != resource.RLIM_INFINITY else FD_CEILING
    return max(soft, min(hard, FD_CEILING))


def _raise_fd_limit() -> int:
    """Many programs mean many pipes and clients: use the hard limit. Returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _fd_target()
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else FD_CEILING
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    except (ValueError, OSError):
        return soft


def _foreground_tty() -> Optional[int]:
    """fd 0 when it is a terminal whose foreground process group is ours."""
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


def run(cfg: configuration.Config, *, single: bool = False) -> int:
    """Run superd with a loaded config until it shuts down; returns the exit code."""
    # superd never speaks TLS, but asyncio imports the ssl module when it can,
    # and with it OpenSSL: about 5 MB of resident memory for nothing.
    sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
    import asyncio

    from ..daemon.mainlog import MainLog
    from ..daemon.supervisor import Supervisor  # the heavy part, after the config is known good

    log = ownlog.setup(cfg.daemon.log_level, cfg.daemon.log_format)
    mainlog = MainLog()  # log_file, and the recent lines maintail shows
    mainlog.attach(cfg.daemon)
    for warning in cfg.warnings:
        log.warning("%s", warning)
    pid1.reset_signals()
    if pid1.is_pid1():
        log.debug("running as PID 1")
    else:
        pid1.become_subreaper()
    from ..config.descriptors import shortfall

    short = shortfall(cfg, _raise_fd_limit())
    if short:
        log.warning("%s", short)

    supervisor = Supervisor(cfg, single=single, mainlog=mainlog)
    if single:
        supervisor.foreground_tty = _foreground_tty()
    if cfg.daemon.socket:
        from ..control.server import ControlServer, ServerError

        supervisor.server = ControlServer(supervisor)
    if getattr(cfg, "http", None) is not None:
        from ..http.server import HttpServer  # h11 and the XML-RPC code only with [http]

        supervisor.http = HttpServer(supervisor)
    try:
        return asyncio.run(supervisor.run())
    except KeyboardInterrupt:  # pragma: no cover - signals are handled by the loop
        return EXIT_INTERNAL
    except Exception as exc:
        from ..daemon.runstate import Locked

        if isinstance(exc, Locked) or (cfg.daemon.socket and isinstance(exc, ServerError)) \
                or type(exc).__name__ == "HttpError":
            log.error("%s", exc)
        else:
            log.exception("internal failure: %s", exc)
        return EXIT_INTERNAL
    finally:
        mainlog.close()
        ownlog.close()


def _show_man(ctx: click.Context, page: Optional[str]) -> None:
    if page is not None and not ctx.resilient_parsing:
        from .man import show

        ctx.exit(show(page))


def _fail(message: str) -> "NoReturn":  # type: ignore[name-defined]
    click.echo(f"superd: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Without -c: $SUPERD_CONFIG, then ./superd.toml, then /etc/superd/superd.toml.\n\n"
        "superd import-supervisord FILE prints a superd config equivalent to a supervisord.conf."
    ),
)
@click.option("-c", "--config", "config_path", metavar="FILE", help="TOML config file.")
@click.option("--check", is_flag=True, help="Validate the config, print problems, exit 0 (valid) or 2.")
@click.option(
    "--log-level",
    type=click.Choice(sorted(ownlog.LEVELS, key=ownlog.LEVELS.get)),
    help="Override the config's log_level.",
)
@click.option(
    "--stopwaitsecs",
    type=click.FloatRange(min=0),
    help="Single-program mode: seconds between the forwarded TERM/INT and SIGKILL [default: 10].",
)
@click.option(
    "--socket",
    "socket_path",
    metavar="PATH",
    help="Serve the control socket at PATH (overrides the config's socket; single-program mode has none without it).",
)
@click.option("--man", "man_page", metavar="PAGE", is_eager=True, expose_value=False,
              callback=lambda ctx, _param, value: _show_man(ctx, value),
              help="Show a man page: superd, superctl or superd.toml.")
@click.version_option(__version__, "-V", "--version", prog_name="superd")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND ARG...]")
def cli(
    config_path: Optional[str],
    check: bool,
    log_level: Optional[str],
    stopwaitsecs: Optional[float],
    socket_path: Optional[str],
    command: Sequence[str],
) -> None:
    """Supervise the programs of a config file, or run one COMMAND as an init.

    superd stays in the foreground. SIGTERM or SIGINT stops every program
    gracefully by descending priority within shutdown_timeout (a second one
    kills what is left); SIGQUIT kills everything at once; SIGHUP reloads the
    config; SIGUSR2 reopens log files.
    """
    try:
        if command:
            if config_path:
                _fail("give either -c FILE or -- COMMAND, not both")
            cfg = configuration.single_program(
                list(command),
                stopwaitsecs=10.0 if stopwaitsecs is None else stopwaitsecs,
                socket=os.path.abspath(socket_path) if socket_path else None,
            )
        else:
            if stopwaitsecs is not None:
                _fail("--stopwaitsecs is for single-program mode; in a config file it is a program setting")
            path = configuration.find_config_file(config_path, os.environ)
            if path is None:
                _fail(
                    "no config file: give -c FILE, set $SUPERD_CONFIG, create ./superd.toml "
                    "or /etc/superd/superd.toml, or run one program with: superd -- COMMAND ARG..."
                )
            cfg = configuration.load(path, os.environ)
    except configuration.ConfigError as exc:
        click.echo(f"superd: invalid config:\n{exc}", err=True)
        sys.exit(EXIT_USAGE)
    if check:
        from ..config.diagnose import diagnose

        found, warned = diagnose(cfg)
        from ..config.descriptors import shortfall

        short = shortfall(cfg, _fd_target())
        for warning in (*cfg.warnings, *map(str, warned), *([short] if short else [])):
            click.echo(f"superd: warning: {warning}", err=True)
        if found:
            click.echo(f"superd: the config is valid, but a run would fail:\n{configuration.ConfigError(found)}",
                       err=True)
            sys.exit(EXIT_USAGE)
        where = cfg.path or "command line"
        programs, processes = len(cfg.programs), len(cfg.instances)
        click.echo(f"{where}: ok ({programs} program{'s' * (programs != 1)}, "
                   f"{processes} process{'es' * (processes != 1)})")
        from ..daemon.tracking import describe

        click.echo(f"process tracking: {describe(cfg.daemon.cgroups)}")
        sys.exit(EXIT_OK)
    overrides = {}
    if log_level:
        overrides["log_level"] = log_level
    elif command:  # an init says nothing unless something is wrong: --log-level info for the rest
        overrides["log_level"] = "warning"
    if socket_path and not command:
        overrides["socket"] = os.path.abspath(socket_path)
    if overrides:
        cfg = dataclasses.replace(cfg, daemon=dataclasses.replace(cfg.daemon, **overrides))
    sys.exit(run(cfg, single=bool(command)))


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["import-supervisord"]:
        from ..migrate import main as import_supervisord

        sys.exit(import_supervisord(args[1:]))
    if "--" in args and args.index("--") == len(args) - 1:
        # click would drop the empty command and look for a config file instead.
        _fail("-- must be followed by the command to run: superd [OPTIONS] -- COMMAND [ARG...]")
    cli.main(args=args, prog_name="superd")


if __name__ == "__main__":  # pragma: no cover
    main()
