"""Starting a program instance: environment, identity, process group, file descriptors.

superd keeps its signal mask empty and leaves no signal ignored that a program
would inherit (see :func:`supervisor.pid1.reset_signals`); ``restore_signals``
puts back the defaults Python itself changes (SIGPIPE, SIGXFSZ). Handled
signals return to their defaults on exec. Every descriptor but 0, 1 and 2 is
closed in the child.

The ``subprocess.Popen`` object is only a spawning device here: superd's one
reaper collects every exit status. The caller keeps the Popen object until the
reaper has seen the pid and then calls :func:`forget`, so that Python's own
bookkeeping never waits for (and steals) a child.
"""

from __future__ import annotations

import errno
import os
import pwd
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from ..config import InstanceConfig
from ..core.errors import SpawnError
from ..config.envfile import EnvFileError, read_env_files
from . import limits, passing

#: Variables superd must not hand down: they describe superd's own place in
#: systemd, and a program that saw them would talk to systemd for superd.
PRIVATE_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")

_HAS_PROCESS_GROUP = sys.version_info >= (3, 11)


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    user: str


def lookup_user(name: str) -> Identity:
    entry = pwd.getpwnam(name)
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
    return Identity(entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, entry.pw_name)


def build_environment(
    instance: InstanceConfig,
    base: Mapping[str, str],
    identity: Optional[Identity] = None,
    socket: Optional[str] = None,
) -> dict[str, str]:
    """superd's environment, then the program's, then superd's own variables."""
    env = {k: v for k, v in base.items() if k not in PRIVATE_VARIABLES}
    if identity is not None:
        env.update(HOME=identity.home, USER=identity.user, LOGNAME=identity.user)
    if instance.env_files:  # read at every start; ``environment`` wins
        try:
            env.update(read_env_files(instance.env_files))
        except EnvFileError as exc:
            raise SpawnError(str(exc), 1) from None
    env.update(instance.environment)
    env["SUPERD_PROCESS_NAME"] = instance.name
    env["SUPERD_PROCESS_NUM"] = str(instance.num)
    env["SUPERD_GROUP"] = instance.group
    # What supervisord gives its children: event listeners such as superlance's need them.
    env["SUPERVISOR_ENABLED"] = "1"
    env["SUPERVISOR_PROCESS_NAME"] = instance.name
    env["SUPERVISOR_GROUP_NAME"] = instance.group
    if socket:
        env["SUPERD_SOCKET"] = socket
        env["SUPERVISOR_SERVER_URL"] = "unix://" + socket  # the [http] listener's URL once there is one
    else:
        env.pop("SUPERVISOR_SERVER_URL", None)
    return env


def spawn(
    instance: InstanceConfig,
    env: Mapping[str, str],
    *,
    stdin=subprocess.DEVNULL,
    stdout=None,
    stderr=None,
    identity: Optional[Identity] = None,
    foreground_tty: Optional[int] = None,
    command: Optional[Sequence[str]] = None,
    listen: Sequence[tuple[str, int]] = (),
) -> subprocess.Popen:
    """Fork and exec one instance in a new process group. Raises SpawnError.

    ``foreground_tty``: a terminal descriptor the child takes the foreground
    of (single-program mode in a terminal, so Ctrl-C reaches the program).
    ``command``: run this instead of the instance's command, with its
    settings (a readiness probe, a stop command).
    ``listen``: held sockets, (name, superd's fd) each, passed as fds 3, 4, ...
    with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (see :mod:`.passing`).
    """
    program = instance.program
    kwargs: dict = {}
    if identity is not None and identity.uid != os.geteuid():
        kwargs.update(user=identity.uid, group=identity.gid, extra_groups=list(identity.groups))
    if program.umask is not None:
        kwargs["umask"] = program.umask
    if foreground_tty is not None:
        kwargs["preexec_fn"] = _take_terminal(foreground_tty)
    elif _HAS_PROCESS_GROUP:
        kwargs["process_group"] = 0
    else:  # Python 3.10
        kwargs["preexec_fn"] = os.setpgrp
    argv = list(instance.command if command is None else command)
    popen_env: Optional[dict] = dict(env)
    try:
        if listen:
            popen_env, kwargs["executable"] = passing.hand_over(listen, env, argv[0], instance.directory, kwargs)
        popen_env = limits.child_setup(program, env, popen_env, argv[0], instance.directory, kwargs)
        with passing.low_fds_taken(len(listen)):
            return subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                cwd=instance.directory,
                env=popen_env,
                close_fds=True,
                restore_signals=True,
                **kwargs,
            )
    except OSError as exc:
        raise _explain(exc, instance, command) from None
    except subprocess.SubprocessError as exc:
        raise SpawnError(str(exc), 126) from None


def forget(popen: subprocess.Popen, status: int) -> None:
    """The reaper has the exit status: tell the Popen object, so it never waits itself."""
    popen.returncode = os.waitstatus_to_exitcode(status) if status is not None else 0


#: Why fork() fails, in words an operator can act on.
_FORK_FAILURES = {
    errno.EAGAIN: "too many processes: the user's process limit (ulimit -u), the cgroup's pids.max "
                  "or the system's threads-max is reached",
    errno.ENOMEM: "out of memory",
}


def _explain(exc: OSError, instance: InstanceConfig, command: Optional[Sequence[str]] = None) -> SpawnError:
    """A sentence an operator can act on."""
    target = exc.filename if exc.filename is not None else (command or instance.command)[0]
    if exc.filename is None and exc.errno in _FORK_FAILURES:
        # Popen names the file when exec failed; without a name, no process was made.
        return SpawnError(f"cannot start {target!r}: fork failed: {exc.strerror or exc} "
                          f"({_FORK_FAILURES[exc.errno]})", 126)
    if exc.errno == errno.ENOENT and instance.directory and not os.path.isdir(instance.directory):
        return SpawnError(f"directory {instance.directory!r} does not exist", 126)
    reasons = {
        errno.ENOENT: "no such file or command",
        errno.EACCES: "permission denied (not executable?)",
        errno.ENOEXEC: "not an executable format",
        errno.ENOTDIR: "a path component is not a directory",
    }
    reason = reasons.get(exc.errno, exc.strerror or str(exc))
    return SpawnError(f"cannot execute {target!r}: {reason}", 127 if exc.errno == errno.ENOENT else 126)


def _take_terminal(fd: int):
    """preexec_fn: own process group, foreground of the terminal, default job-control signals."""
    def preexec() -> None:
        os.setpgid(0, 0)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # tcsetpgrp from a background group
        try:
            os.tcsetpgrp(fd, os.getpgrp())
        except OSError:
            pass  # not our controlling terminal after all: run in the background
        signal.signal(signal.SIGTTIN, signal.SIG_DFL)
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)

    return preexec
