"""How many file descriptors a config asks superd to hold, at most.

superd raises its soft ``RLIMIT_NOFILE`` to the hard limit at start; a config
whose programs need more than that fails piecemeal ("Too many open files"
for whichever program comes last). :func:`needed` counts, per instance, what
superd itself holds open while the instance runs:

* a captured stream (``stdout``/``stderr`` other than ``"null"`` and
  ``"inherit"``) is the read end of its pipe, plus its log file for ``"auto"``
  or a path (opened at the stream's first line); ``stderr = "stdout"`` shares
  stdout's pipe;
* ``stdin = true``: the write end of its stdin pipe;
* ``ready = "notify"``: its ``NOTIFY_SOCKET``;
* an event listener (``events = [...]``): its stdin pipe (its stdout is the
  captured stdout pipe).

plus every held ``[socket.NAME]`` and :data:`BASE` for superd itself (its
control socket, its log, the event loop, a few clients). Clients beyond those
few are not counted: each control or HTTP connection takes one more.
"""

from __future__ import annotations

from .model import Config, InstanceConfig

#: What superd holds whatever the programs: the event loop's epoll and
#: wake-up fds, the signal pipe, the control socket and a few connections,
#: its log file, the run directory's lock, inotify, spare descriptors.
BASE = 32

_NO_PIPE = ("null", "inherit")


def _stream(mode: str) -> int:
    if mode in _NO_PIPE:
        return 0
    return 1 if mode == "console" else 2  # the pipe, and its log file


def for_instance(instance: InstanceConfig) -> int:
    """Descriptors superd holds for one running instance."""
    program = instance.program
    count = _stream(instance.stdout)
    if instance.stderr != "stdout":
        count += _stream(instance.stderr)
    if program.stdin:
        count += 1
    if program.ready is not None and program.ready.kind == "notify":
        count += 1
    if program.events:
        count += 1
    return count


def needed(config: Config) -> int:
    """Descriptors the config needs superd to hold when every instance runs."""
    return BASE + len(config.sockets) + sum(for_instance(i) for i in config.instances)


def shortfall(config: Config, limit: int) -> str:
    """A warning when ``needed(config)`` exceeds ``limit`` (the soft limit
    superd runs with, already raised as far as it can); "" when it fits."""
    want = needed(config)
    if want <= limit:
        return ""
    return (f"the config needs up to {want} file descriptors with every program running, "
            f"but superd may open only {limit} (RLIMIT_NOFILE, raised to the hard limit): "
            f"programs started last will fail with 'Too many open files'. Raise the hard limit "
            f"(LimitNOFILE= in a systemd unit, --ulimit nofile= for docker, ulimit -Hn), or let "
            f"programs whose output nobody reads write nowhere (stdout = \"null\", "
            f"stderr = \"null\": no descriptor at all)")
