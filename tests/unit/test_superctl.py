"""supervisor.client and superctl in this process, against the fake superd
(tests/fake_superd.py): a thread serving canned JSON-RPC answers on a Unix
socket in a temporary folder, which records every request it gets.

superctl as a process of its own is in tests/system/test_superctl_process.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from supervisor.cli import superctl as ctl

from supervisor.control import protocol
from supervisor.client import (
    ActionFailed,
    Busy,
    CallTimeout,
    Client,
    InternalError,
    InvalidConfig,
    InvalidParams,
    MethodNotFound,
    NoSuchName,
    NotAllowed,
    NotInState,
    ProtocolError,
    ShuttingDown,
    SuperdError,
    TooLarge,
    Unreachable,
)

from supervisor.cli.render import STATUS_FIELDS, status_lines

from tests.fake_superd import CLOSE, HANDLED, NAMES, PROCS, config_file, follow_handler
from tests.fake_superd import RpcError as FakeRpcError

pytestmark = pytest.mark.timeout(30)


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def env(monkeypatch, sockdir):
    """A clean environment: no $SUPERD_SOCKET/$SUPERD_CONFIG, cwd and HOME in a
    temporary folder (so no ./superd.toml or history file is found)."""
    monkeypatch.delenv("SUPERD_SOCKET", raising=False)
    monkeypatch.delenv("SUPERD_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(sockdir))
    monkeypatch.chdir(sockdir)
    return sockdir


def make_runner():
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()


def superctl(*args, input=None, env_extra=None):
    result = make_runner().invoke(ctl.cli, list(args), input=input, env=env_extra,
                                  prog_name="superctl", catch_exceptions=False)
    return result


# --------------------------------------------------------------------------
# Client: results


def test_client_calls_and_increasing_ids(server):
    with Client(server.path) as c:
        assert c.version() == {"version": "0.1.0", "pid": 4242, "python": "3.11.7"}
        assert c.state()["state"] == "running"
        assert [p["name"] for p in c.status()] == ["web", "worker_10", "db"]
        assert [p["name"] for p in c.status(["db"])] == ["db"]
        assert [p["name"] for p in c.status("web")] == ["web"]
        assert c.names() == NAMES
        assert c.call("version")["pid"] == 4242
    ids = [r["id"] for r in server.requests]
    assert ids == list(range(1, len(ids) + 1))
    assert all(r["jsonrpc"] == "2.0" for r in server.requests)
    assert "params" not in server.requests[0]  # no params for version
    assert server.requests[3]["params"] == {"names": ["db"]}
    assert "params" not in server.requests[2]  # status() without names


def test_client_action_params(server):
    with Client(server.path) as c:
        res = c.start(["web"])
        assert res == [{"name": "web", "ok": True, "state": "running", "pid": 5, "message": "started"}]
        assert server.last("start")["params"] == {"names": ["web"], "wait": True}
        c.stop("all", wait=False, timeout=2.5)
        assert server.last("stop")["params"] == {"names": ["all"], "wait": False, "timeout": 2.5}
        c.restart(("web", "db"), timeout=1)
        assert server.last("restart")["params"] == {"names": ["web", "db"], "wait": True, "timeout": 1}
        c.signal("HUP", ["web"])
        assert server.last("signal")["params"] == {"names": ["web"], "signal": "HUP"}
        assert c.pid() == {"pid": 4242}
        assert "params" not in server.last("pid")
        assert c.pid("worker")["pids"][1] == {"name": "worker_1", "pid": None}
        assert server.last("pid")["params"] == {"name": "worker"}
        assert c.reload() == {"added": ["new"], "removed": ["old"], "changed": []}
        assert [p["state"] for p in c.wait(["web"], state="stopped", timeout=3)] == ["stopped"]
        assert server.last("wait")["params"] == {"names": ["web"], "state": "stopped", "timeout": 3}
        assert c.tail("web", "stderr", 3) == ["line 0", "line 1", "line 2"]
        assert server.last("tail")["params"] == {"name": "web", "stream": "stderr", "lines": 3}


def test_client_connects_lazily_and_once(server):
    c = Client(server.path)
    assert not c.connected
    c.version()
    c.state()
    assert c.connected
    c.close()
    assert not c.connected
    assert len(server._socks) == 1


# --------------------------------------------------------------------------
# Client: errors


@pytest.mark.parametrize("code, cls, exit_code", [
    (protocol.NO_SUCH_NAME, NoSuchName, 4),
    (protocol.NOT_IN_STATE, NotInState, 3),
    (protocol.FAILED, ActionFailed, 1),
    (protocol.TIMEOUT, CallTimeout, 1),
    (protocol.INVALID_CONFIG, InvalidConfig, 1),
    (protocol.SHUTTING_DOWN, ShuttingDown, 1),
    (protocol.NOT_ALLOWED, NotAllowed, 1),
    (protocol.TOO_LARGE, TooLarge, 1),
    (protocol.BUSY, Busy, 1),
    (protocol.INVALID_PARAMS, InvalidParams, 2),
    (protocol.METHOD_NOT_FOUND, MethodNotFound, 1),
    (protocol.INTERNAL_ERROR, InternalError, 1),
    (protocol.PARSE_ERROR, ProtocolError, 1),
    (12345, SuperdError, 1),
])
def test_client_error_types(server, code, cls, exit_code):
    server.on("status", error=(code, "it went wrong", {"detail": [1, 2]}))
    with Client(server.path) as c:
        with pytest.raises(SuperdError) as info:
            c.status(["web"])
        assert type(info.value) is cls
        assert info.value.code == code
        assert info.value.message == "it went wrong"
        assert str(info.value) == "it went wrong"
        assert info.value.data == {"detail": [1, 2]}
        assert info.value.exit_code == exit_code
        # The connection stays usable after an error reply.
        assert c.version()["version"] == "0.1.0"


def test_unreachable_missing_socket(sockdir):
    path = str(sockdir / "missing.sock")
    with pytest.raises(Unreachable) as info:
        Client(path).version()
    assert info.value.exit_code == protocol.EXIT_UNREACHABLE == 7
    assert str(info.value) == f"cannot reach superd at {path}: No such file or directory"
    assert info.value.path == path
    assert isinstance(info.value, SuperdError)


def test_unreachable_refused(sockdir):
    path = str(sockdir / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)  # bound but not listening: a dead superd's leftover socket
    try:
        with pytest.raises(Unreachable) as info:
            Client(path).state()
        assert "Connection refused" in str(info.value)
    finally:
        s.close()


def test_unreachable_when_server_closes_mid_call(server):
    server.on("status", lambda p, c: CLOSE)
    c = Client(server.path)
    with pytest.raises(Unreachable) as info:
        c.status()
    assert "closed before a reply" in str(info.value)
    assert info.value.exit_code == 7
    # The next call opens a new connection.
    assert c.version()["pid"] == 4242
    c.close()


def test_unreachable_when_server_dies_after_partial_line(server):
    def partial(params, conn):
        conn.send(b'{"jsonrpc": "2.0", "id": 1, "res')
        return CLOSE
    server.on("state", partial)
    with Client(server.path) as c, pytest.raises(ProtocolError):
        c.state()


def test_notifications_are_skipped_and_null_id_errors_raise(server):
    def noisy(params, conn):
        conn.notify("tail", {"lines": ["not for you"]})
        conn.send(b"\n")
        return {"state": "running"}
    server.on("state", noisy)

    def parse_error(params, conn):
        conn.send({"jsonrpc": "2.0", "id": None, "error": {"code": protocol.PARSE_ERROR, "message": "bad"}})
        return HANDLED
    server.on("pid", parse_error)
    with Client(server.path) as c:
        assert c.state() == {"state": "running"}
        with pytest.raises(ProtocolError):
            c.pid()


def test_garbage_and_wrong_id_are_protocol_errors(server):
    server.on("state", lambda p, c: (c.send(b"hello\n"), HANDLED)[1])
    server.on("pid", lambda p, c: (c.send({"jsonrpc": "2.0", "id": 999, "result": 1}), HANDLED)[1])
    with Client(server.path) as c:
        with pytest.raises(ProtocolError):
            c.state()
    with Client(server.path) as c:
        with pytest.raises(ProtocolError):
            c.pid()


def test_client_reply_timeout(server):
    server.on("wait", lambda p, c: HANDLED)  # never answers
    with Client(server.path, timeout=0.2) as c, pytest.raises(CallTimeout):
        c.wait(["web"])


def test_too_large_request_is_refused_locally(server):
    with Client(server.path) as c, pytest.raises(TooLarge):
        c.status(["x" * protocol.MAX_LINE])
    assert server.requests == []


def test_shutdown_waits_for_eof(server):
    replied = threading.Event()
    let_go = threading.Event()

    def shutdown(params, conn):
        conn.send({"jsonrpc": "2.0", "id": server.requests[-1]["id"], "result": {"pid": 4242}})
        replied.set()
        let_go.wait(20)
        return CLOSE
    server.on("shutdown", shutdown)

    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", Client(server.path).shutdown()), daemon=True)
    t.start()
    assert replied.wait(10)
    t.join(0.3)
    assert t.is_alive(), "shutdown() returned before superd closed the connection"
    let_go.set()
    t.join(10)
    assert not t.is_alive()
    assert out["r"] == {"pid": 4242}


def test_shutdown_no_wait_returns_after_reply(server):
    let_go = threading.Event()

    def shutdown(params, conn):
        conn.send({"jsonrpc": "2.0", "id": server.requests[-1]["id"], "result": {"pid": 4242}})
        let_go.wait(20)
        return CLOSE
    server.on("shutdown", shutdown)
    try:
        with Client(server.path) as c:
            assert c.shutdown(wait=False) == {"pid": 4242}
    finally:
        let_go.set()


def test_shutdown_when_already_shutting_down_still_waits(server):
    def shutdown(params, conn):
        conn.send({"jsonrpc": "2.0", "id": server.requests[-1]["id"],
                   "error": {"code": protocol.SHUTTING_DOWN, "message": "shutting down"}})
        return CLOSE
    server.on("shutdown", shutdown)
    assert Client(server.path).shutdown() == {"already": True}
    with Client(server.path) as c, pytest.raises(ShuttingDown):
        c.shutdown(wait=False)


def test_follow_yields_lines_then_closes(server):
    state = {"server": server}
    server.on("tail", follow_handler(state))
    c = Client(server.path)
    it = c.follow("web", "stderr", 2)
    got = [next(it) for _ in range(5)]
    assert got == ["old 1", "old 2", "new 1", "new 2", "new 3"]
    assert server.last("tail")["params"] == {"name": "web", "stream": "stderr", "lines": 2, "follow": True}
    it.close()
    wait_for(lambda: state.get("client_closed"), what="the server to see the client close")
    assert not c.connected  # follow used its own connection


def test_follow_raises_unreachable_when_superd_goes(server):
    state = {"server": server, "close": True}
    server.on("tail", follow_handler(state))
    it = Client(server.path).follow("web")
    got = []
    with pytest.raises(Unreachable):
        for line in it:
            got.append(line)
    assert got == ["old 1", "old 2", "new 1", "new 2", "new 3"]


def test_follow_unknown_name(server):
    server.on("tail", error=(protocol.NO_SUCH_NAME, "no such process: nope", None))
    with pytest.raises(NoSuchName):
        list(Client(server.path).follow("nope"))


def test_follow_missing_socket_fails_at_once(sockdir):
    with pytest.raises(Unreachable):
        Client(str(sockdir / "none.sock")).follow("web")


# --------------------------------------------------------------------------
# superctl through CliRunner


def test_status_columns_and_exit_3(server, env):
    r = superctl("-s", server.path, "status")
    assert r.exit_code == 3  # worker_10 and db are not running
    lines = r.stdout.splitlines()
    assert lines == [
        "web         RUNNING    pid 123, uptime 0:01:02",
        "worker_10   EXITED     exited with code 3, unexpected",
        "db          STARTING   pid 99, uptime 0:00:00",
    ]
    # Columns line up: each state starts at the same offset, and each description.
    assert len({line.index(p["state"].upper()) for line, p in zip(lines, PROCS)}) == 1
    assert len({line.index(p["description"]) for line, p in zip(lines, PROCS)}) == 1
    assert r.stderr == ""


def test_status_running_only_exits_0(server, env):
    r = superctl("-s", server.path, "status", "web")
    assert r.exit_code == 0
    assert r.stdout == "web   RUNNING    pid 123, uptime 0:01:02\n"
    # Only the members the lines are made of: superd then reads no cgroups.
    assert server.last("status")["params"] == {"names": ["web"], "fields": list(STATUS_FIELDS)}


def test_status_json_asks_for_every_member(server, env):
    superctl("-s", server.path, "status", "--json", "web")
    assert server.last("status")["params"] == {"names": ["web"]}


def test_status_from_a_superd_without_fields_asks_again(server, env):
    # An older superd refuses the "fields" param: superctl asks for everything.
    def old_status(params, conn):
        if "fields" in params:
            raise FakeRpcError(protocol.INVALID_PARAMS, "unknown param(s): fields; expected: names")
        return [p for p in PROCS if p["name"] == "web"]

    server.on("status", old_status)
    r = superctl("-s", server.path, "status", "web")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "web   RUNNING    pid 123, uptime 0:01:02\n", "")
    assert [r["params"] for r in server.requests if r["method"] == "status"] == [
        {"names": ["web"], "fields": list(STATUS_FIELDS)}, {"names": ["web"]}]


def test_status_refused_names_are_still_a_usage_error(server, env):
    server.on("status", error=(protocol.INVALID_PARAMS, "'names' must be a non-empty list of non-empty strings"))
    r = superctl("-s", server.path, "status", "web")
    assert r.exit_code == 2
    assert r.stderr == "superctl: 'names' must be a non-empty list of non-empty strings\n"


def test_status_lines_read_only_the_fields_asked_for():
    # What plain status prints must not change when superd sends only STATUS_FIELDS.
    procs = PROCS + [{"name": "nginx", "group": "site", "program": "nginx", "state": "running", "pid": 7,
                      "uptime": 3.0, "description": "pid 7, uptime 0:00:03", "status_text": "ok",
                      "cgroup": "/x", "pids": 1, "memory": 5, "ready": True},
                     {"name": "bare", "state": "exited", "exitstatus": -9}]
    trimmed = [{k: v for k, v in p.items() if k in STATUS_FIELDS} for p in procs]
    assert status_lines(trimmed) == status_lines(procs)
    assert status_lines(procs)[-2:] == ["site:nginx   RUNNING    pid 7, uptime 0:00:03; status: ok",
                                        "bare         EXITED     killed by signal 9"]


def test_status_json(server, env):
    r = superctl("-s", server.path, "status", "--json", "web", "db")
    assert r.exit_code == 3
    assert json.loads(r.stdout) == [PROCS[0], PROCS[2]]
    assert r.stdout.startswith("[\n  {\n    \"name\"")  # indent 2


def test_status_unknown_name_exits_4(server, env):
    r = superctl("-s", server.path, "status", "web", "nope")
    assert r.exit_code == 4
    assert r.stdout == ""
    assert r.stderr == "superctl: no such process: nope\n"


def test_unreachable_exits_7(sockdir, env):
    path = str(sockdir / "gone.sock")
    r = superctl("-s", path, "status")
    assert r.exit_code == 7
    assert r.stderr == f"superctl: cannot reach superd at {path}: No such file or directory\n"
    assert "Traceback" not in r.output


def test_start_stop_restart(server, env):
    r = superctl("-s", server.path, "start", "web", "db")
    assert (r.exit_code, r.stdout) == (0, "web: started\ndb: started\n")
    assert server.last("start")["params"] == {"names": ["web", "db"], "wait": True, "progress": 1.0}
    r = superctl("-s", server.path, "stop", "--no-wait", "--timeout", "3", "all")
    assert (r.exit_code, r.stdout) == (0, "all: stopped\n")
    assert server.last("stop")["params"] == {"names": ["all"], "wait": False, "timeout": 3.0}
    r = superctl("-s", server.path, "restart", "web")
    assert (r.exit_code, r.stdout) == (0, "web: restarted\n")


def test_start_failure_exits_1(server, env):
    r = superctl("-s", server.path, "start", "web", "broken")
    assert r.exit_code == 1
    assert r.stdout == ("web: started\n"
                        "broken: ERROR (spawn error: [Errno 2] No such file or directory: 'nope')\n")


def test_start_unknown_exits_4_and_usage_exits_2(server, env):
    r = superctl("-s", server.path, "start", "nope")
    assert r.exit_code == 4
    assert "no such process: nope" in r.stderr
    r = superctl("-s", server.path, "start")
    assert r.exit_code == 2
    r = superctl("-s", server.path, "stop", "--timeout", "-1", "web")
    assert r.exit_code == 2
    r = superctl("-s", server.path, "frobnicate")
    assert r.exit_code == 2


@pytest.mark.parametrize("code, exit_code", [
    (protocol.FAILED, 1), (protocol.SHUTTING_DOWN, 1), (protocol.TIMEOUT, 1),
    (protocol.INVALID_PARAMS, 2), (protocol.NOT_ALLOWED, 1),
])
def test_error_replies_map_to_exit_codes(server, env, code, exit_code):
    server.on("restart", error=(code, "nope, sorry", None))
    r = superctl("-s", server.path, "restart", "web")
    assert r.exit_code == exit_code
    assert r.stderr == "superctl: nope, sorry\n"


def test_signal(server, env):
    r = superctl("-s", server.path, "signal", "HUP", "web")
    assert (r.exit_code, r.stdout) == (0, "web: signalled\n")
    assert server.last("signal")["params"] == {"names": ["web"], "signal": "HUP"}
    superctl("-s", server.path, "signal", "10", "web", "db")
    assert server.last("signal")["params"] == {"names": ["web", "db"], "signal": 10}


def test_pid(server, env):
    r = superctl("-s", server.path, "pid")
    assert (r.exit_code, r.stdout) == (0, "4242\n")
    r = superctl("-s", server.path, "pid", "web")
    assert (r.exit_code, r.stdout) == (0, "123\n")
    r = superctl("-s", server.path, "pid", "worker")
    assert (r.exit_code, r.stdout) == (1, "7\n")
    assert "worker_1" in r.stderr


def test_tail(server, env):
    r = superctl("-s", server.path, "tail", "-n", "3", "web", "stderr")
    assert (r.exit_code, r.stdout) == (0, "line 0\nline 1\nline 2\n")
    assert server.last("tail")["params"] == {"name": "web", "stream": "stderr", "lines": 3}
    r = superctl("-s", server.path, "tail", "web", "stdin")
    assert r.exit_code == 2


def test_maintail(server, env):
    server.on("maintail", {"lines": ["first", "second"]})
    r = superctl("-s", server.path, "maintail", "-n", "2")
    assert (r.exit_code, r.stdout) == (0, "first\nsecond\n")
    assert server.last("maintail")["params"] == {"lines": 2}
    assert superctl("-s", server.path, "maintail", "web").exit_code == 2  # no NAME: superd's own log


def test_follow_main_reads_tail_notifications(server):
    state = {"server": server}
    server.on("maintail", follow_handler(state))
    it = Client(server.path).follow_main(1)
    assert [next(it) for _ in range(5)] == ["old 1", "old 2", "new 1", "new 2", "new 3"]
    assert server.last("maintail")["params"] == {"lines": 1, "follow": True}
    it.close()
    wait_for(lambda: state.get("client_closed"), what="the server to see the client close")


def test_reload(server, env):
    r = superctl("-s", server.path, "reload")
    assert (r.exit_code, r.stdout) == (0, "new: added\nold: removed\n")
    server.on("reload", {"added": [], "removed": [], "changed": []})
    assert superctl("-s", server.path, "reload").stdout == "no changes\n"
    server.on("reload", error=(protocol.INVALID_CONFIG,
                               "/etc/superd/superd.toml: program.web.numprocs: expected an integer", None))
    r = superctl("-s", server.path, "reload")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert "program.web.numprocs: expected an integer" in r.stderr


def test_state_and_version(server, env):
    r = superctl("-s", server.path, "state")
    assert (r.exit_code, r.stdout) == (0, "running\n")
    r = superctl("-s", server.path, "version")
    assert r.exit_code == 0
    assert r.stdout == "superctl 0.1.0\nsuperd 0.1.0 (pid 4242, Python 3.11.7)\n"
    r = superctl("--version")
    assert (r.exit_code, r.stdout) == (0, "superctl 0.1.0\n")


def test_wait(server, env):
    r = superctl("-s", server.path, "wait", "web")
    assert (r.exit_code, r.stdout) == (0, "web: running\n")
    assert server.last("wait")["params"] == {"names": ["web"], "state": "running", "timeout": 60.0}
    r = superctl("-s", server.path, "wait", "--state", "stopped", "--timeout", "5", "web")
    assert server.last("wait")["params"] == {"names": ["web"], "state": "stopped", "timeout": 5.0}
    r = superctl("-s", server.path, "wait", "--timeout", "1", "web", "db")
    assert r.exit_code == 3
    assert r.stderr.splitlines() == ["superctl: timed out: db is not running",
                                     "db   STARTING   pid 99, uptime 0:00:00"]
    r = superctl("-s", server.path, "wait", "--state", "sleeping", "web")
    assert r.exit_code == 2


def test_shutdown_command(server, env):
    def shutdown(params, conn):
        conn.send({"jsonrpc": "2.0", "id": server.requests[-1]["id"], "result": {"pid": 4242}})
        return CLOSE
    server.on("shutdown", shutdown)
    r = superctl("-s", server.path, "shutdown")
    assert (r.exit_code, r.stdout) == (0, "superd (pid 4242): shut down\n")
    r = superctl("-s", server.path, "shutdown", "--no-wait")
    assert (r.exit_code, r.stdout) == (0, "superd (pid 4242): shutting down\n")


def test_help_everywhere(env):
    for command in [[]] + [[name] for name in ctl.cli.commands]:
        r = superctl(*command, "--help")
        assert r.exit_code == 0, command
        assert r.stdout.startswith("Usage: superctl"), command


# --------------------------------------------------------------------------
# Socket resolution: -s > $SUPERD_SOCKET > config


def test_resolve_socket_order(sockdir, env):
    cfg = config_file(sockdir, "from-config.sock")
    assert ctl.resolve_socket("/a.sock", str(cfg), {"SUPERD_SOCKET": "/b.sock"}) == "/a.sock"
    assert ctl.resolve_socket(None, str(cfg), {"SUPERD_SOCKET": "/b.sock"}) == "/b.sock"
    # Relative to the config file's folder.
    assert ctl.resolve_socket(None, str(cfg), {}) == str(sockdir / "from-config.sock")
    assert ctl.resolve_socket(None, None, {"SUPERD_CONFIG": str(cfg)}) == str(sockdir / "from-config.sock")
    # ./superd.toml (cwd is sockdir)
    assert ctl.resolve_socket(None, None, {}) == str(sockdir / "from-config.sock")
    cfg.unlink()
    from supervisor import config
    assert ctl.resolve_socket(None, None, {}) == config.default_paths(environ={})["socket"]


def test_resolve_socket_bad_config_exits_2(sockdir, env):
    bad = sockdir / "bad.toml"
    bad.write_text("this is [not toml\n")
    r = superctl("-c", str(bad), "status")
    assert r.exit_code == 2
    assert r.stderr.startswith("superctl: cannot read the socket path")
    assert str(bad) in r.stderr
    r = superctl("-c", str(sockdir / "missing.toml"), "status")
    assert r.exit_code == 2


# --------------------------------------------------------------------------
# superctl shell


def test_shell_completion_logic(server, env):
    shell = ctl._Shell(ctl.App(server.path))
    shell._names_ttl = 600  # so the cache holds for the whole test
    assert shell.completenames("st") == ["status ", "start ", "stop ", "state "]
    assert shell.completedefault("w", "restart w", 8, 9) == ["web ", "worker ", "worker:* ", "worker_10 "]
    assert shell.completedefault("a", "stop a", 5, 6) == ["all "]
    assert shell.completedefault("", "tail web ", 9, 9) == ["stdout ", "stderr "]
    assert shell.completedefault("--n", "start --n", 6, 9) == ["--no-wait "]
    assert shell.completedefault("s", "wait --state s", 13, 14) == ["stopped ", "starting ", "stopping "]
    assert shell.completedefault("H", "signal H", 7, 8) == ["HUP "]
    assert shell.completedefault("re", "help re", 5, 7) == ["restart ", "reload "]
    assert shell.completedefault("", "maintail ", 9, 9) == []
    assert shell.completedefault("-", "maintail -", 9, 10) == ["--follow ", "--help ", "--lines ", "-f ", "-n "]
    assert server.methods() == ["names"]  # asked once, then cached


def test_shell_runs_commands_and_survives_errors(server, env):
    shell = ctl._Shell(ctl.App(server.path))
    assert shell.run_args(["status", "web"]) == 0
    assert shell.run_args(["status", "nope"]) == 4
    assert shell.run_args(["start"]) == 2
    assert shell.run_args(["frobnicate"]) == 2
    assert shell.run_args(["status", "--help"]) == 0
    bad = ctl._Shell(ctl.App(str(env / "gone.sock")))
    assert bad.run_args(["state"]) == 7


def test_shell_reads_commands_from_a_pipe(server, env):
    r = superctl("-s", server.path, "shell", input="state\n\nstatus web\nstatus nope\nshell\nexit\nstate\n")
    assert r.exit_code == 0
    # No prompt when stdin is not a terminal; the empty line does not repeat "status web".
    assert r.stdout == "running\nweb   RUNNING    pid 123, uptime 0:01:02\n"
    assert r.stderr == "superctl: no such process: nope\nsuperctl: already in the shell\n"
    assert server.methods() == ["state", "status", "status"]
