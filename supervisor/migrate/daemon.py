"""The conversion of supervisord's own settings: ``[supervisord]`` (to superd's
``[superd]`` table, or to every program for its environment, umask and
directory) and ``[unix_http_server]`` (to superd's control socket)."""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Callable

from .. import config as superd_config
from .context import Context
from .expand import Scope, check_relative, expand, expand_environment, literal
from .ini import Section
from .values import CONSOLE_FILES, boolean, non_negative, octal, size, size_text

# supervisord log levels -> superd's (debug, info, warning, error).
_LOG_LEVELS = {"critical": "error", "error": "error", "warn": "warning", "warning": "warning",
               "info": "info", "debug": "debug", "trace": "debug", "blather": "debug"}


def convert_daemon(ctx: Context, section: Section) -> None:
    """``[supervisord]``."""
    options = dict(section.options)
    # environment first: its names are %(ENV_X)s for the rest of the config
    if "environment" in options:
        option = options.pop("environment")
        ctx.daemon_env = expand_environment(option.value, ctx.scope(section, "environment", option))
        if ctx.daemon_env:
            ctx.note(option.file, section.name, "environment", "merged into the "
                     "environment of every program (superd has no global environment)")
    nodaemon = False
    if "nodaemon" in options:
        try:
            nodaemon = boolean(options["nodaemon"].value)
        except ValueError:
            pass
    for key, option in options.items():
        scope = ctx.scope(section, key, option, env=[ctx.daemon_env])
        warn = scope.warn
        note = lambda message, key=key, option=option: ctx.note(  # noqa: E731
            option.file, section.name, key, message)
        value = literal(expand(option.value, scope), scope)
        if value is None:
            continue
        value = value.strip()
        if key == "loglevel":
            level = _LOG_LEVELS.get(value.lower())
            if level is None:
                warn(f"unknown log level {value!r}; dropped")
                continue
            if level != value.lower():
                note(f"{value!r} becomes {level!r} (superd's levels: debug, info, warning, error)")
            ctx.set(ctx.daemon, superd_config.DAEMON_KEYS, "log_level", level, warn)
        elif key == "childlogdir":
            path = daemon_path(value, scope)
            ctx.set(ctx.daemon, superd_config.DAEMON_KEYS, "logs_dir", path, warn)
            note('becomes logs_dir, where the "auto" program logs go (named '
                 "{instance}-stdout.log and {instance}-stderr.log)")
        elif key == "logfile":
            if value.lower() in ("none", "off") or value in CONSOLE_FILES or value == "/dev/null":
                note("superd writes its own log to stderr; dropped")
            else:
                ctx.set(ctx.daemon, superd_config.DAEMON_KEYS, "log_file", daemon_path(value, scope), warn)
                note("becomes log_file: superd writes its own log there as well as to stderr "
                     "(its folder must exist)")
        elif key in ("logfile_maxbytes", "logfile_backups"):
            logfile = section.options.get("logfile")
            if logfile and logfile.value.strip().lower() not in ("none", "off", "/dev/null") \
                    and logfile.value.strip() not in CONSOLE_FILES:
                maxbytes = key == "logfile_maxbytes"
                try:
                    parsed = size(value) if maxbytes else non_negative(value)
                except ValueError as e:
                    warn(f"{value!r}: {e}; dropped")
                    continue
                ctx.set(ctx.daemon, superd_config.DAEMON_KEYS, key.replace("logfile", "log_file"),
                        size_text(parsed) if maxbytes else parsed, warn)
        elif key == "nodaemon":
            if not nodaemon:
                note("superd always runs in the foreground (the service manager runs it in "
                     "the background); dropped")
        elif key == "pidfile":
            note("superd writes no pid file (superctl pid prints its pid); dropped")
        elif key == "user":
            warn(f"superd does not drop its own privileges: run superd as {value!r} "
                 "(systemd User=, docker USER), or give the programs user = "
                 f"{value!r}; dropped")
        elif key in ("umask", "directory"):
            if nodaemon:
                note("supervisord applies it only when it daemonizes, and nodaemon is set; dropped")
            elif key == "umask":
                ctx.daemon_umask = option
                note("superd sets a umask per program: copied to every program without its own")
            else:
                ctx.daemon_directory = option
                note("superd does not change its own directory: copied to every program "
                     "without its own")
        elif key in ("minfds", "minprocs"):
            limit = "LimitNOFILE=" if key == "minfds" else "LimitNPROC="
            warn("superd does not raise resource limits: set them where superd starts "
                 f"(systemd {limit}, docker --ulimit, ulimit); dropped")
        elif key == "strip_ansi":
            try:
                strip = boolean(value)
            except ValueError:
                strip = True
            if strip:
                warn("superd does not strip ANSI escapes from program output; dropped")
        elif key in ("identifier", "nocleanup", "silent"):
            note("has no superd counterpart; dropped")
        else:
            warn("unknown supervisord setting; dropped")


def daemon_path(value: str, scope: Scope) -> str:
    """A path of superd's own (not expanded by superd): ``~`` expanded now."""
    if value.startswith("~"):
        expanded = os.path.expanduser(value)
        scope.warn(f"superd does not expand ~ here; written as {expanded!r}")
        value = expanded
    check_relative(value, scope)
    return value


def convert_unix_server(ctx: Context, section: Section, first: bool) -> None:
    """``[unix_http_server]``: the first one becomes superd's control socket."""
    if not first:
        ctx.warn(section.file, section.name, None, "superd has one control socket; "
                 "this second one is not carried over")
        return
    mode = None
    for key, option in section.options.items():
        scope = ctx.scope(section, key, option, env=[ctx.daemon_env])
        warn = scope.warn
        value = literal(expand(option.value, scope), scope)
        if value is None:
            continue
        value = value.strip()
        if key == "file":
            path = daemon_path(value, scope)
            ctx.set(ctx.daemon, superd_config.DAEMON_KEYS, "socket", path, warn)
        elif key == "chmod":
            try:
                mode = octal(value)
            except ValueError as e:
                warn(f"{e}; dropped")
                continue
            ctx.set(ctx.daemon, superd_config.DAEMON_KEYS, "socket_mode", f"{mode:04o}", warn)
            if mode & 0o007:
                warn("supervisord let any local user reach the socket; superd accepts only "
                     "root, its own user and the allow_users/allow_groups it names")
        elif key == "chown":
            _convert_chown(ctx, value, warn)
        elif key in ("username", "password"):
            warn("superd has no password: it checks the peer's uid/gid on the socket "
                 "(root, its own user, allow_users, allow_groups); dropped")
        else:
            warn("unknown supervisord setting; dropped")
    group = ctx.daemon.get("socket_group")
    if group and mode is not None and mode & 0o060:
        ctx.daemon["allow_groups"] = [group]
        ctx.note(section.file, section.name, "chown", f"the members of group {group!r} may "
                 "use the socket (supervisord's chmod let them): allow_groups = "
                 f"[{group!r}]")


def _convert_chown(ctx: Context, value: str, warn: Callable[[str], None]) -> None:
    user, _, group = value.partition(":")
    user, group = user.strip(), group.strip()
    if group:
        if group.isdigit():
            try:
                group = grp.getgrgid(int(group)).gr_name
            except KeyError:
                warn(f"no group with gid {group} here; superd needs a group name; dropped")
                group = ""
        if group:
            ctx.daemon["socket_group"] = group
    if user:
        if user.isdigit():
            try:
                user = pwd.getpwuid(int(user)).pw_name
            except KeyError:
                warn(f"no user with uid {user} here; superd needs a user name; dropped")
                return
        if user != "root":
            ctx.daemon["allow_users"] = [user]
            warn(f"superd cannot give the socket to {user!r}: the file stays owned by "
                 f"superd's user. {user!r} is in allow_users; let it reach the file through "
                 "socket_group and socket_mode")
