"""Peers of the control socket checked with SO_PEERCRED: the test (root) forks
a child that becomes uid 65534 and talks to a live superd. The superd and the
checks are those of tests/system/test_hostile_clients.py.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket

import pytest

from supervisor.control import protocol
from tests.system.test_hostile_clients import assert_healthy, rpc, superd  # noqa: F401  (superd is a fixture)

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


NOBODY = 65534


def as_nobody(sock_dir, request: bytes, gid: int = NOBODY) -> str:
    """Fork, become uid 65534, connect to ``superd.sock`` in ``sock_dir``, send
    ``request``; returns the reply line, or the error met, as text."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.close(read_end)
            os.chdir(sock_dir)  # then only sock_dir itself must be searchable
            os.setgroups([])
            os.setgid(gid)
            os.setuid(NOBODY)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect("superd.sock")
            s.sendall(request + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
            os.write(write_end, reply or b"EOF")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(write_end, f"{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 10)
        assert ready, "the uid 65534 child did not answer"
        out = b""
        while chunk := os.read(read_end, 65536):
            out += chunk
        return out.decode(errors="replace")
    finally:
        os.close(read_end)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def test_non_root_peer_is_refused(superd, tmp_path):
    d = superd(daemon='socket_mode = "0666"')
    tmp_path.chmod(0o711)
    reply = as_nobody(tmp_path, rpc("status"))
    answer = json.loads(reply)
    assert answer["error"]["code"] == protocol.NOT_ALLOWED, answer
    assert "uid 65534" in answer["error"]["message"]
    assert_healthy(d)  # root works
    assert "refused control connection" in d.log()


def test_socket_mode_keeps_others_out_before_superd_sees_them(superd, tmp_path):
    d = superd()  # socket_mode 0600
    assert (d.socket.stat().st_mode & 0o777) == 0o600
    tmp_path.chmod(0o711)
    assert as_nobody(tmp_path, rpc("status")).startswith("PermissionError")
    assert_healthy(d)


@pytest.mark.parametrize("allow", ['allow_users = ["nobody"]', 'allow_groups = ["nogroup"]'])
def test_allowed_non_root_peer_gets_in(superd, tmp_path, allow):
    d = superd(daemon=f'socket_mode = "0666"\n{allow}')
    tmp_path.chmod(0o711)
    answer = json.loads(as_nobody(tmp_path, rpc("status")))
    assert {p["name"] for p in answer["result"]} == {"alpha", "beta"}
    if "groups" in allow:  # the group is what lets it in, not the uid
        refused = json.loads(as_nobody(tmp_path, rpc("status"), gid=NOBODY - 1 if NOBODY - 1 != 0 else 1))
        assert refused["error"]["code"] == protocol.NOT_ALLOWED
    assert_healthy(d)
