"""The control socket's wire protocol, shared by the server and the client.

Newline-delimited JSON-RPC 2.0 over a Unix stream socket: one request object
per line, one response object per line, in order. This module only holds
names and numbers; it must stay cheap to import (superctl imports it).

Application errors use codes outside JSON-RPC's reserved range, and each one
maps to a superctl exit code (see ``EXIT_FOR_ERROR``).
"""

from __future__ import annotations

# Largest request line the server accepts, in bytes (newline included).
MAX_LINE = 1 << 16

# JSON-RPC 2.0 reserved codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# Application codes.
FAILED = 1             # the action was tried and failed (spawn error, fatal, ...)
NOT_IN_STATE = 3       # wait: a process did not reach the asked state in time
NO_SUCH_NAME = 4       # a name matches no program, instance or group
SHUTTING_DOWN = 5      # superd is shutting down and refuses new work
TIMEOUT = 6            # the action did not finish within the asked timeout
NOT_ALLOWED = 8        # the peer is not allowed to talk to this superd
TOO_LARGE = 9          # the request line is longer than MAX_LINE
BUSY = 10              # too many connections
INVALID_CONFIG = 11    # reload: the new config is invalid; nothing changed

# superctl exit codes (superctl(1), EXIT STATUS).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_IN_STATE = 3
EXIT_NO_SUCH_NAME = 4
EXIT_UNREACHABLE = 7

EXIT_FOR_ERROR = {
    NO_SUCH_NAME: EXIT_NO_SUCH_NAME,
    NOT_IN_STATE: EXIT_NOT_IN_STATE,
    INVALID_PARAMS: EXIT_USAGE,
}

METHODS = (
    "version",   # {}                                   -> {version, pid, python}
    "state",     # {}                                   -> {state, pid, since, config}
    "status",    # {names?: [str], fields?: [str]}       -> [process] (only those members; unknown ones ignored)
    "start",     # {names: [str], wait?: bool, timeout?: float, progress?: float} -> [result]
    "stop",      # {names: [str], wait?: bool, timeout?: float, progress?: float} -> [result]
    "restart",   # {names: [str], wait?: bool, timeout?: float, rolling?: bool, progress?: float} -> [result]
    # progress: after that many seconds, each step goes out as a "progress"
    # notification {name, step} before the response (see PROGRESS).
    "signal",    # {names: [str], signal: str|int}      -> [result]
    "pid",       # {name?: str}                         -> {pid} or {pids: [..]}
    "reload",    # {}                                   -> {added, removed, changed, groups}
    "shutdown",  # {}                                   -> {pid, already?}; the connection closes when superd's process ends
    "wait",      # {names: [str], state?: str (a state or "ready"), timeout?: float} -> [process]
    "tail",      # {name, stream?, lines?, follow?}     -> {lines: [str]} (follow: notifications)
    "names",     # {}                                   -> [str] every instance, program and group:* name
    "sockets",   # {}                                   -> [{name, listen, kind, address, backlog, programs}]
    "events",    # {names?: [str], follow?: bool, since?: float} -> {events: [event]} (follow: "events" notifications)
    "maintail",  # {lines?: int, follow?: bool}        -> {lines: [str]} superd's own log (follow: "tail" notifications)
    "update",    # {names?: [str]}                      -> reload's, with {groups: {added, changed, removed}}
    "avail",     # {}                                   -> {processes: [{name, group, in_use, autostart, priority}], config_error}
    "clear",     # {names: [str]}                       -> [result]
    "stdin",     # {name: str, data: str}               -> {bytes}; data "" only checks it could be written
)

PROCESS_STATES = ("stopped", "starting", "running", "backoff", "stopping", "exited", "fatal")
#: What ``wait`` waits for: a state, or "ready" (running and its readiness check passed).
WAIT_STATES = PROCESS_STATES + ("ready",)
#: The method of the notifications a start, stop or restart asked with
#: ``progress`` sends: params {name, step}, step one of stopping, stopped,
#: starting, running, "ready (i of n)" (a rolling restart).
PROGRESS = "progress"
DAEMON_STATES = ("starting", "running", "reloading", "shutting_down")
