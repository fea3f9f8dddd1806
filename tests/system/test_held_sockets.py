"""Listening sockets held by superd: ``[socket.NAME]`` and a program's ``sockets``.

A probe program reports what it was given (LISTEN_*, and what each
descriptor is); a tiny server shows that a held socket keeps taking
connections while its program is down; bad input is refused with the
socket's dotted name; reloads keep, rebind or close sockets. The real web
servers under load are in test_zero_downtime.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import script, wait_until

pytestmark = pytest.mark.timeout(60)

# Writes what it got to argv[1] (JSON), then sleeps: LISTEN_*, its pid, its
# arguments, and for every descriptor from 3 on: socket or not, its address,
# whether it listens, its inode (the same inode is the same socket).
PROBE = """
import json, os, socket, stat, sys, time
report = {k: os.environ.get(k) for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")}
report.update(pid=os.getpid(), argv=sys.argv[2:], fds={})
for fd in range(3, 64):
    try:
        st = os.fstat(fd)
    except OSError:
        continue
    entry = {"socket": stat.S_ISSOCK(st.st_mode), "inode": st.st_ino,
             "inheritable": os.get_inheritable(fd)}
    if entry["socket"]:
        s = socket.socket(fileno=os.dup(fd))
        entry.update(family=s.family.name, address=s.getsockname(),
                     listening=s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        s.close()
    report["fds"][str(fd)] = entry
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(report, f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(60)
"""

# Answers each connection on the socket at fd 3 with "VERSION pid\\n".
SERVER = """
import os, socket, sys
sock = socket.socket(fileno=3)
sock.setblocking(True)
while True:
    conn, _ = sock.accept()
    conn.recv(100)
    conn.sendall(f"{sys.argv[1]} {os.getpid()}\\n".encode())
    conn.close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_json(path, timeout: float = 10.0) -> dict:
    wait_until(path.exists, timeout, what=f"{path} to be written")
    return json.loads(path.read_text())


def ask(port: int, timeout: float = 10.0) -> str:
    """One request to the tiny server: its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(b"hello")
        return conn.makefile().readline().strip()


def superctl(d, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
                          capture_output=True, text=True, timeout=30)


def rewrite(tmp_path, body: str) -> None:
    """Replace everything after the [superd] table of the running superd's config."""
    path = tmp_path / "superd.toml"
    text = path.read_text()
    cut = min(i for i in (text.find("\n[socket."), text.find("\n[program."), len(text)) if i >= 0)
    path.write_text(text[:cut] + "\n" + textwrap.dedent(body))


def test_a_program_gets_its_sockets_in_order_and_nothing_else(superd_factory, tmp_path):
    port = free_port()
    probe = script(tmp_path, "probe", PROBE)
    unix_path = tmp_path / "api.sock"
    d = superd_factory(f"""
        [socket.web]
        listen = "tcp://127.0.0.1:{port}"
        [socket.api]
        listen = "unix://{unix_path}"
        mode = "0660"
        [program.both]
        command = "{probe} {tmp_path}/both.json --fd ${{SUPERD_FD_api}} --web ${{SUPERD_FD_web}}"
        sockets = ["web", "api"]
        startsecs = 0
        [program.plain]
        command = "{probe} {tmp_path}/plain.json"
        startsecs = 0
        [program.pool]
        command = "{probe} {tmp_path}/pool-${{SUPERD_PROCESS_NUM}}.json"
        sockets = ["api"]
        numprocs = 2
        startsecs = 0
    """)
    both = read_json(tmp_path / "both.json")
    assert both["LISTEN_FDS"] == "2"
    assert both["LISTEN_FDNAMES"] == "web:api"
    assert both["LISTEN_PID"] == str(both["pid"]) == str(d.status("both")["both"]["pid"])
    assert both["argv"] == ["--fd", "4", "--web", "3"]
    assert set(both["fds"]) == {"3", "4"}, "nothing but its sockets from fd 3 on"
    web, api = both["fds"]["3"], both["fds"]["4"]
    assert web["family"] == "AF_INET" and web["address"] == ["127.0.0.1", port] and web["listening"]
    assert api["family"] == "AF_UNIX" and api["address"] == str(unix_path) and api["listening"]
    assert web["inheritable"] and api["inheritable"]
    assert oct(unix_path.stat().st_mode & 0o777) == oct(0o660)

    plain = read_json(tmp_path / "plain.json")
    assert plain["LISTEN_FDS"] is None and plain["LISTEN_PID"] is None and plain["LISTEN_FDNAMES"] is None
    assert plain["fds"] == {}

    pool = [read_json(tmp_path / f"pool-{n}.json") for n in (0, 1)]
    assert [p["LISTEN_FDNAMES"] for p in pool] == ["api", "api"]
    assert pool[0]["fds"]["3"]["inode"] == pool[1]["fds"]["3"]["inode"] == api["inode"], "one socket, shared"
    assert pool[0]["LISTEN_PID"] != pool[1]["LISTEN_PID"]

    listed = json.loads(superctl(d, "sockets", "--json").stdout)
    assert [(s["name"], s["address"], s["programs"]) for s in listed] == [
        ("api", str(unix_path), ["both", "pool"]), ("web", f"127.0.0.1:{port}", ["both"])]
    assert superctl(d, "sockets").stdout.split("\n")[1].split() == ["web", f"127.0.0.1:{port}", "both"]
    assert d.status("both")["both"]["sockets"] == ["web", "api"]
    assert d.status("plain")["plain"]["sockets"] == []

    # The socket's file goes with superd.
    assert superctl(d, "shutdown").returncode == 0
    d.wait_exit()
    assert not unix_path.exists()


def test_clients_wait_in_the_backlog_while_the_program_is_down(superd_factory, tmp_path):
    port = free_port()
    server = script(tmp_path, "server", SERVER)
    d = superd_factory(f"""
        [socket.web]
        listen = "tcp://localhost:{port}"
        [program.web]
        command = "{server} v1"
        sockets = ["web"]
        startsecs = 0
    """)
    first = d.status("web")["web"]["pid"]
    assert ask(port) == f"v1 {first}"
    assert superctl(d, "stop", "web").returncode == 0
    # Nothing runs, yet the connection is taken: it waits for the next process.
    conn = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        conn.sendall(b"hello")
        assert superctl(d, "start", "web").returncode == 0
        second = d.status("web")["web"]["pid"]
        assert conn.makefile().readline().strip() == f"v1 {second}"
    finally:
        conn.close()
    # A crash and the automatic restart: the socket stays too.
    os.kill(second, 9)
    wait_until(lambda: d.status("web")["web"]["pid"] not in (None, second), what="the restart")
    assert ask(port, 20) == f"v1 {d.status('web')['web']['pid']}"


def test_a_port_in_use_is_refused_before_anything_starts(superd_factory, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    probe = script(tmp_path, "probe", PROBE)
    try:
        d = superd_factory(f"""
            [socket.web]
            listen = "tcp://127.0.0.1:{port}"
            [program.early]
            command = "{probe} {tmp_path}/early.json"
            priority = 1
            [program.web]
            command = "{probe} {tmp_path}/web.json"
            sockets = ["web"]
        """, ready=False)
        assert d.wait_exit(20) == 2
    finally:
        busy.close()
    log = d.log()
    assert "socket.web: cannot listen on 127.0.0.1:" in log and "address already in use" in log
    assert not (tmp_path / "early.json").exists() and not (tmp_path / "web.json").exists()


def test_unknown_socket_names_and_bad_addresses_are_config_errors(superd_factory, tmp_path):
    d = superd_factory("""
        [socket.web]
        listen = "tcp://example.com:80"
        [socket.api]
        listen = "tcp://127.0.0.1:8000"
        mode = "0600"
        [program.web]
        command = "sleep 100"
        sockets = ["web", "nope"]
    """, ready=False)
    assert d.wait_exit(20) == 2
    out = d.log() + d.output()
    assert "socket.web.listen: expected an IP address" in out
    assert "socket.api.mode: only for Unix sockets" in out
    assert 'program.web.sockets[1]: no socket named "nope"' in out


def test_reload_keeps_rebinds_or_closes_sockets(superd_factory, tmp_path):
    port, other = free_port(), free_port()
    probe = script(tmp_path, "probe", PROBE)
    unix_path = tmp_path / "old.sock"
    body = """
        [socket.web]
        listen = "tcp://127.0.0.1:{port}"
        [socket.old]
        listen = "unix://{unix_path}"
        [program.web]
        command = "{probe} {tmp_path}/web-{version}.json"
        sockets = ["web"]
        startsecs = 0
    """
    d = superd_factory(body.format(port=port, unix_path=unix_path, probe=probe, tmp_path=tmp_path, version=1))
    one = read_json(tmp_path / "web-1.json")
    assert unix_path.exists()

    # The program changes, its socket does not: the new process gets the same socket.
    rewrite(tmp_path, body.format(port=port, unix_path=unix_path, probe=probe, tmp_path=tmp_path, version=2))
    assert superctl(d, "reload").returncode == 0
    two = read_json(tmp_path / "web-2.json")
    assert two["pid"] != one["pid"] and two["fds"]["3"]["inode"] == one["fds"]["3"]["inode"]

    # A changed table whose new address cannot be bound: refused, nothing changes.
    busy = socket.socket()
    busy.bind(("127.0.0.1", other))
    busy.listen()
    try:
        rewrite(tmp_path, body.replace("{port}", str(other)).format(
            unix_path=unix_path, probe=probe, tmp_path=tmp_path, version=3))
        result = superctl(d, "reload")
        assert result.returncode == 1
        assert "socket.web: cannot listen on 127.0.0.1:" in result.stderr
    finally:
        busy.close()
    assert d.status("web")["web"]["pid"] == two["pid"]
    assert not (tmp_path / "web-3.json").exists()
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # still held

    # Now it can: the socket is bound anew, its program restarts, the old port
    # closes; the removed table's socket closes and its file goes.
    rewrite(tmp_path, body.replace("{port}", str(other)).replace("[socket.old]\n        listen = \"unix://{unix_path}\"\n", "")
            .format(probe=probe, tmp_path=tmp_path, version=3))
    result = superctl(d, "reload")
    assert result.returncode == 0, result.stderr
    three = read_json(tmp_path / "web-3.json")
    assert three["fds"]["3"]["address"] == ["127.0.0.1", other]
    assert three["fds"]["3"]["inode"] != two["fds"]["3"]["inode"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    assert not unix_path.exists()
    assert [s["name"] for s in json.loads(superctl(d, "sockets", "--json").stdout)] == ["web"]
