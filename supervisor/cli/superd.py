"""The ``superd`` command: load the config, become an init, run the supervisor."""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
from typing import NoReturn, Optional, Sequence

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


_DESCRIPTION = """\
Supervise the programs of a config file, or run one COMMAND as an init.

superd stays in the foreground. SIGTERM or SIGINT stops every program
gracefully by descending priority within shutdown_timeout (a second one
kills what is left); SIGQUIT kills everything at once; SIGHUP reloads the
config; SIGUSR2 reopens log files."""

_EPILOG = """\
Without -c: $SUPERD_CONFIG, then ./superd.toml, then /etc/superd/superd.toml.

superd import-supervisord FILE prints a superd config equivalent to a supervisord.conf."""


def _seconds(text: str) -> float:
    """``--stopwaitsecs``: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not 0 or more")
    return value


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized without ``shutil``: argparse imports it (and with it
    zlib, bz2 and lzma, ~0.7 MB) to measure the terminal each time it makes a
    formatter, which it does for every option it is given, help or not."""

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            try:
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
            except (AttributeError, ValueError, OSError):
                columns = 80
        super().__init__(prog, width=max(columns, 40) - 2)


def parser() -> argparse.ArgumentParser:
    """superd's command line: argparse, not click, so that the daemon starts without click's
    ~10 ms of imports and ~1 MB of memory (superctl, a short-lived client, uses click)."""
    p = argparse.ArgumentParser(
        prog="superd", usage="superd [OPTIONS] [-- COMMAND ARG...]", description=_DESCRIPTION, epilog=_EPILOG,
        add_help=False, allow_abbrev=False, formatter_class=_Formatter)
    p.add_argument("-c", "--config", dest="config_path", metavar="FILE", help="TOML config file.")
    p.add_argument("--check", action="store_true",
                   help="Validate the config, print problems, exit 0 (valid) or 2.")
    p.add_argument("--log-level", choices=sorted(ownlog.LEVELS, key=ownlog.LEVELS.get),
                   help="Override the config's log_level.")
    p.add_argument("--stopwaitsecs", type=_seconds, metavar="SECONDS",
                   help="Single-program mode: seconds between the forwarded TERM/INT and SIGKILL (default: 10).")
    p.add_argument("--socket", dest="socket_path", metavar="PATH",
                   help="Serve the control socket at PATH (overrides the config's socket; single-program mode "
                        "has none without it).")
    p.add_argument("--man", dest="man_page", metavar="PAGE", help="Show a man page: superd, superctl or superd.toml.")
    p.add_argument("-V", "--version", action="version", version=f"superd, version {__version__}",
                   help="Show the version and exit.")
    p.add_argument("-h", "--help", action="help", help="Show this message and exit.")
    p.add_argument("command", nargs="*", help=argparse.SUPPRESS)
    return p


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"superd: {message}\n")
    sys.exit(EXIT_USAGE)


def _echo(message: str, *, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(message + "\n")


def cli(argv: Sequence[str]) -> None:
    """Parse superd's options and run what they ask for; exits with superd's exit code."""
    args = list(argv)
    command: list[str] = []
    if "--" in args:  # everything after the first -- is the command, untouched
        at = args.index("--")
        args, command = args[:at], args[at + 1:]
        if not command:  # otherwise it would look for a config file instead
            _fail("-- must be followed by the command to run: superd [OPTIONS] -- COMMAND [ARG...]")
    options = parser().parse_args(args)
    if options.man_page is not None:
        from .man import show

        sys.exit(show(options.man_page))
    command = [*options.command, *command]
    cfg = _load(options, command)
    if options.check:
        sys.exit(_check(cfg))
    overrides = {}
    if options.log_level:
        overrides["log_level"] = options.log_level
    elif command:  # an init says nothing unless something is wrong: --log-level info for the rest
        overrides["log_level"] = "warning"
    if options.socket_path and not command:
        overrides["socket"] = os.path.abspath(options.socket_path)
    if overrides:
        cfg = dataclasses.replace(cfg, daemon=dataclasses.replace(cfg.daemon, **overrides))
    sys.exit(run(cfg, single=bool(command)))


def _load(options: argparse.Namespace, command: list[str]) -> configuration.Config:
    """The config to run: COMMAND's single-program one, else the config file's; exits 2 on a problem."""
    try:
        if command:
            if options.config_path:
                _fail("give either -c FILE or -- COMMAND, not both")
            return configuration.single_program(
                command,
                stopwaitsecs=10.0 if options.stopwaitsecs is None else options.stopwaitsecs,
                socket=os.path.abspath(options.socket_path) if options.socket_path else None,
            )
        if options.stopwaitsecs is not None:
            _fail("--stopwaitsecs is for single-program mode; in a config file it is a program setting")
        path = configuration.find_config_file(options.config_path, os.environ)
        if path is None:
            _fail(
                "no config file: give -c FILE, set $SUPERD_CONFIG, create ./superd.toml "
                "or /etc/superd/superd.toml, or run one program with: superd -- COMMAND ARG..."
            )
        return configuration.load(path, os.environ)
    except configuration.ConfigError as exc:
        _fail(f"invalid config:\n{exc}")


def _check(cfg: configuration.Config) -> int:
    """``--check``: warnings and what a run would fail on to stderr, a summary to stdout."""
    from ..config.descriptors import shortfall
    from ..config.diagnose import diagnose

    found, warned = diagnose(cfg)
    short = shortfall(cfg, _fd_target())
    for warning in (*cfg.warnings, *map(str, warned), *([short] if short else [])):
        _echo(f"superd: warning: {warning}", err=True)
    if found:
        _echo(f"superd: the config is valid, but a run would fail:\n{configuration.ConfigError(found)}", err=True)
        return EXIT_USAGE
    where = cfg.path or "command line"
    programs, processes = len(cfg.programs), len(cfg.instances)
    _echo(f"{where}: ok ({programs} program{'s' * (programs != 1)}, {processes} process{'es' * (processes != 1)})")
    from ..daemon.tracking import describe

    _echo(f"process tracking: {describe(cfg.daemon.cgroups)}")
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["import-supervisord"]:
        from ..migrate import main as import_supervisord

        sys.exit(import_supervisord(args[1:]))
    cli(args)


if __name__ == "__main__":  # pragma: no cover
    main()
