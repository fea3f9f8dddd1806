"""``[http]``: supervisord's XML-RPC at /RPC2, Prometheus metrics at /metrics.

A real superd with an HTTP listener on a free loopback port; Python's own
xmlrpc.client speaks to it as supervisord's tools do. Hostile clients
(bad credentials, a billion-laughs body, huge bodies and heads, garbage,
a slow client) get an HTTP error or a fault and never disturb superd.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import time
import xmlrpc.client

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(90)

USER, PASSWORD = "ops", "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROGRAMS = """
[program.app]
command = ["sh", "-c", "echo hello from app; echo oops >&2; exec sleep 300"]
startsecs = 0.3

[program.worker]
command = ["sleep", "300"]
numprocs = 2
startsecs = 0

[program.idle]
command = ["sleep", "300"]
autostart = false
"""


def start(factory, password: str = PASSWORD, daemon: str = "", programs: str = PROGRAMS):
    port = free_port()
    handle = factory(programs + f'\n[http]\nlisten = "127.0.0.1:{port}"\nusername = "{USER}"\n'
                     f'password = "{password}"\n', daemon=daemon)
    handle.port = port
    wait_until(lambda: handle.status("app")["app"]["state"] == "running", what="app running")
    return handle


def proxy(handle, user=USER, password=PASSWORD) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(f"http://{user}:{password}@127.0.0.1:{handle.port}/RPC2")


def raw(handle, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes, read until the server closes; the whole answer."""
    with socket.create_connection(("127.0.0.1", handle.port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def auth() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def request(handle, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Authorization": auth(), **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def superd(graceful_superd):
    return start(graceful_superd)


# --------------------------------------------------------------------------
# authentication


def test_credentials_are_required_and_checked(superd):
    status, headers, _ = request(superd, "GET", "/metrics", headers={"Authorization": ""})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    with pytest.raises(xmlrpc.client.ProtocolError) as err:
        proxy(superd, password="wrong").supervisor.getState()
    assert err.value.errcode == 401
    with pytest.raises(xmlrpc.client.ProtocolError):
        proxy(superd, user="root").supervisor.getState()
    assert proxy(superd).supervisor.getState() == {"statecode": 1, "statename": "RUNNING"}


def test_sha_password(graceful_superd):
    digest = hashlib.sha1(PASSWORD.encode()).hexdigest()
    handle = start(graceful_superd, password="{SHA}" + digest)
    assert proxy(handle).supervisor.getPID() == handle.pid
    with pytest.raises(xmlrpc.client.ProtocolError):
        proxy(handle, password=digest).supervisor.getPID()


def test_a_public_address_without_credentials_is_a_config_error(superd_factory):
    handle = superd_factory(PROGRAMS + f'\n[http]\nlisten = "0.0.0.0:{free_port()}"\n', ready=False)
    assert handle.wait_exit(20) == 2
    assert "http.listen" in handle.log() and "loopback" in handle.log()


def test_unix_listener_checks_the_peer(graceful_superd, tmp_path):
    path = tmp_path / "http.sock"
    handle = graceful_superd(PROGRAMS + f'\n[http]\nlisten = "unix://{path}"\n')
    wait_until(lambda: path.exists(), what="the HTTP socket")
    body = xmlrpc.client.dumps((), "supervisor.getPID").encode()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: text/xml\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert f"<int>{handle.pid}</int>".encode() in answer


# --------------------------------------------------------------------------
# supervisord's interface


def test_identity_and_state(superd):
    s = proxy(superd)
    assert s.supervisor.getAPIVersion() == "3.0"
    assert s.supervisor.getVersion() == "3.0"
    assert isinstance(s.supervisor.getSupervisorVersion(), str)
    assert s.supervisor.getIdentification() == "supervisor"
    assert s.supervisor.getPID() == superd.pid
    methods = s.system.listMethods()
    for name in ("supervisor.startProcess", "supervisor.getAllProcessInfo", "system.multicall",
                 "supervisor.tailProcessStdoutLog", "system.methodHelp"):
        assert name in methods
    assert s.system.methodSignature("supervisor.startProcess") == ["boolean", "string", "boolean"]
    assert "Start" in s.system.methodHelp("supervisor.startProcess")


def test_process_info_has_supervisords_keys_names_and_codes(superd):
    s = proxy(superd)
    infos = {(i["group"], i["name"]): i for i in s.supervisor.getAllProcessInfo()}
    assert set(infos) == {("app", "app"), ("worker", "worker_0"), ("worker", "worker_1"), ("idle", "idle")}
    app = infos[("app", "app")]
    assert set(app) == {"name", "group", "description", "start", "stop", "now", "state", "statename", "spawnerr",
                        "exitstatus", "logfile", "stdout_logfile", "stderr_logfile", "pid"}
    assert (app["state"], app["statename"]) == (20, "RUNNING")
    assert app["pid"] == superd.status("app")["app"]["pid"]
    assert app["description"].startswith(f"pid {app['pid']}, uptime ")
    assert abs(app["start"] - time.time()) < 60 and app["now"] >= app["start"]
    assert app["stdout_logfile"].endswith("app-stdout.log")
    idle = infos[("idle", "idle")]
    assert (idle["state"], idle["statename"], idle["pid"], idle["description"]) == (0, "STOPPED", 0, "Not started")
    assert s.supervisor.getProcessInfo("worker:worker_1")["pid"] > 0
    assert s.supervisor.getProcessInfo("worker_1")["group"] == "worker"


def fault_code(call) -> int:
    with pytest.raises(xmlrpc.client.Fault) as err:
        call()
    return err.value.faultCode


def test_faults_are_supervisords(superd):
    s = proxy(superd)
    assert fault_code(lambda: s.supervisor.getProcessInfo("nope")) == 10           # BAD_NAME
    assert fault_code(lambda: s.supervisor.getProcessInfo("worker:nope")) == 10
    assert fault_code(lambda: s.supervisor.startProcess("app")) == 60              # ALREADY_STARTED
    assert fault_code(lambda: s.supervisor.stopProcess("idle")) == 70              # NOT_RUNNING
    assert fault_code(lambda: s.supervisor.signalProcess("app", "NOSUCH")) == 11   # BAD_SIGNAL
    assert fault_code(lambda: s.supervisor.noSuchMethod()) == 1                    # UNKNOWN_METHOD
    assert fault_code(lambda: s.supervisor.getProcessInfo()) == 2                  # INCORRECT_PARAMETERS
    assert fault_code(lambda: s.supervisor.getProcessInfo("a", "b")) == 2
    assert fault_code(lambda: s.system.methodHelp("nope")) == 4                    # SIGNATURE_UNSUPPORTED
    with pytest.raises(xmlrpc.client.Fault) as err:
        s.supervisor.getProcessInfo("nope")
    assert err.value.faultString == "BAD_NAME: nope"


def test_start_stop_signal_and_groups(superd):
    s = proxy(superd)
    assert s.supervisor.stopProcess("app") is True
    assert superd.status("app")["app"]["state"] == "stopped"
    assert s.supervisor.getProcessInfo("app")["statename"] == "STOPPED"
    assert s.supervisor.startProcess("app") is True  # waits until running
    assert superd.status("app")["app"]["state"] == "running"
    assert s.supervisor.startProcess("idle", False) is True
    stopped = s.supervisor.stopProcessGroup("worker")
    assert [(r["name"], r["status"], r["description"]) for r in stopped] == [("worker_0", 80, "OK"),
                                                                             ("worker_1", 80, "OK")]
    assert {i["state"] for i in superd.status("worker").values()} == {"stopped"}
    started = s.supervisor.startProcess("worker:*")
    assert [r["status"] for r in started] == [80, 80]
    assert s.supervisor.signalProcess("worker:worker_0", "CONT") is True
    assert s.supervisor.signalProcess("app", 18) is True
    assert [r["status"] for r in s.supervisor.signalProcessGroup("worker", "CONT")] == [80, 80]
    results = s.supervisor.stopAllProcesses()
    assert {r["status"] for r in results} == {80} and len(results) == 4
    assert {i["state"] for i in superd.status().values()} == {"stopped"}
    assert {r["status"] for r in s.supervisor.startAllProcesses()} == {80}
    assert {i["state"] for i in superd.status().values()} == {"running"}


def test_a_failing_start_is_abnormal_termination(graceful_superd):
    handle = start(graceful_superd, programs=PROGRAMS + """
[program.crash]
command = ["sh", "-c", "exit 3"]
autostart = false
startsecs = 1
startretries = 0
""")
    assert fault_code(lambda: proxy(handle).supervisor.startProcess("crash")) == 40
    info = proxy(handle).supervisor.getProcessInfo("crash")
    assert info["statename"] in ("FATAL", "BACKOFF") and info["spawnerr"]


def test_logs_and_multicall(superd):
    s = proxy(superd)
    wait_until(lambda: "hello from app" in s.supervisor.readProcessStdoutLog("app", 0, 0), what="app's output")
    data, offset, overflow = s.supervisor.tailProcessStdoutLog("app", 0, 1000)
    assert "hello from app" in data and offset == len(data.encode()) and overflow is False
    data, offset, overflow = s.supervisor.tailProcessStdoutLog("app", 0, 5)
    assert overflow is True and len(data) == 5
    assert "oops" in s.supervisor.tailProcessStderrLog("app", 0, 100)[0]
    assert s.supervisor.readProcessStdoutLog("app", -4, 0) == "app\n"
    assert fault_code(lambda: s.supervisor.readProcessStdoutLog("app", -4, 3)) == 3   # BAD_ARGUMENTS
    assert s.supervisor.clearProcessLogs("app") is True
    assert s.supervisor.readProcessStdoutLog("app", 0, 0) == ""
    assert fault_code(lambda: s.supervisor.readLog(0, 0)) == 20                       # NO_FILE: no log file
    results = s.system.multicall([
        {"methodName": "supervisor.getPID", "params": []},
        {"methodName": "supervisor.getProcessInfo", "params": ["nope"]},
        {"methodName": "system.multicall", "params": [[]]},
    ])
    assert results[0] == superd.pid
    assert results[1] == {"faultCode": 10, "faultString": "BAD_NAME: nope"}
    assert results[2]["faultCode"] == 2


def test_reload_config_reports_groups(superd):
    path = superd.dir / "superd.toml"
    path.write_text(path.read_text().replace("[program.idle]", "[program.extra]\ncommand = \"sleep 300\"\n"
                                              "autostart = false\n\n[program.idle]"))
    s = proxy(superd)
    assert s.supervisor.reloadConfig() == [[["extra"], [], []]]
    assert s.supervisor.addProcessGroup("extra") is True          # superd added it already
    assert fault_code(lambda: s.supervisor.addProcessGroup("extra")) == 90   # ALREADY_ADDED
    assert s.supervisor.getProcessInfo("extra")["statename"] == "STOPPED"


def test_shutdown(superd):
    assert proxy(superd).supervisor.shutdown() is True
    assert superd.wait_exit(30) == 0


# --------------------------------------------------------------------------
# metrics


def test_metrics_parse_as_prometheus_text(superd):
    from prometheus_client import parser  # the test extra installs it
    status, headers, body = request(superd, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in parser.text_string_to_metric_families(body.decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("superd_process_up", (("group", "app"), ("name", "app")))] == 1
    assert samples[("superd_process_up", (("group", "idle"), ("name", "idle")))] == 0
    assert samples[("superd_process_state", (("group", "worker"), ("name", "worker_1"), ("state", "running")))] == 1
    assert ("superd_process_restarts_total", (("group", "app"), ("name", "app"))) in samples
    assert ("superd_process_start_time_seconds", (("group", "app"), ("name", "app"))) in samples
    assert samples[("superd_state", (("state", "running"),))] == 1
    assert samples[("superd_reloads_total", ())] == 0
    assert samples[("superd_uptime_seconds", ())] > 0
    assert "superd_process_exits" in families and "superd_process_memory_bytes" in families


def test_metrics_count_exits(graceful_superd):
    handle = start(graceful_superd, programs=PROGRAMS + """
[program.once]
command = ["sh", "-c", "sleep 0.3; exit 0"]
startsecs = 0.1
autorestart = false
""")
    wait_until(lambda: handle.status("once")["once"]["state"] == "exited", what="once exited")
    _, _, body = request(handle, "GET", "/metrics")
    assert b'superd_process_exits_total{name="once",group="once",kind="expected"} 1' in body
    assert b'superd_process_exits_total{name="once",group="once",kind="unexpected"} 0' in body


# --------------------------------------------------------------------------
# hostile clients


def still_serving(handle) -> None:
    assert proxy(handle).supervisor.getPID() == handle.pid
    assert handle.proc.poll() is None


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<methodCall><methodName>supervisor.getProcessInfo</methodName>
<params><param><value><string>&lol9;</string></value></param></params></methodCall>"""


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_billion_laughs_is_refused_and_memory_stays_flat(superd):
    before = rss_kb(superd.pid)
    for _ in range(3):
        status, _, body = request(superd, "POST", "/RPC2", BILLION_LAUGHS, {"Content-Type": "text/xml"})
        assert status == 400 and b"DOCTYPE" in body
    external = BILLION_LAUGHS.replace(b'<!ENTITY lol "lol">', b'<!ENTITY lol SYSTEM "file:///etc/passwd">')
    assert request(superd, "POST", "/RPC2", external)[0] == 400
    assert rss_kb(superd.pid) - before < 20_000
    still_serving(superd)


def test_bad_bodies_heads_and_paths(superd):
    assert request(superd, "POST", "/RPC2", b"<methodCall><methodName>x")[0] == 400
    assert request(superd, "POST", "/RPC2", b"\x00\xff garbage")[0] == 400
    assert request(superd, "GET", "/RPC2")[0] == 405
    assert request(superd, "GET", "/nope")[0] == 404
    big = raw(superd, b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 413")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    assert raw(superd, b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n").startswith(b"HTTP/1.1 431")
    huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert raw(superd, huge).split(b" ", 2)[1] in (b"431", b"400")
    assert raw(superd, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400")
    still_serving(superd)


def test_slow_and_idle_clients_are_closed(graceful_superd):
    handle = start(graceful_superd, daemon="client_timeout = 1\n")
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", handle.port), timeout=10) as slow:
        slow.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        answer = slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - began < 8
    with socket.create_connection(("127.0.0.1", handle.port), timeout=10) as idle:
        assert idle.recv(65536) == b""  # closed without a word
    still_serving(handle)


def test_many_connections_at_once(superd):
    sockets = [socket.create_connection(("127.0.0.1", superd.port), timeout=10) for _ in range(150)]
    try:
        still_serving_after = None
        for s in sockets[:5]:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth().encode() + b"\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.1 200")
        refused = sockets[-1].recv(64)
        assert refused.startswith(b"HTTP/1.1 503") or refused == b""
        still_serving_after = True
    finally:
        for s in sockets:
            s.close()
    assert still_serving_after
    wait_until(lambda: proxy(superd).supervisor.getPID() == superd.pid, what="serving again")
