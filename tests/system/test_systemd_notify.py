"""sd_notify: superd tells systemd (here: the test's own datagram socket) how it is doing."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


class Listener:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.setblocking(False)
        self.address = address
        self.messages: list[tuple[float, dict]] = []

    def poll(self) -> list[tuple[float, dict]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))

    def first(self, key: str, value: str | None = None, timeout: float = 10) -> tuple[float, dict]:
        def found():
            for when, fields in self.poll():
                if key in fields and (value is None or fields[key] == value):
                    return when, fields
            return None

        return wait_until(found, timeout, what=f"{key}={value} from superd")  # type: ignore[return-value]

    def keys(self) -> list[str]:
        return [k for _, fields in self.poll() for k in fields if k != "STATUS"]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def listener(request, tmp_path):
    address = str(tmp_path / "notify.sock") if request.param == "path" else f"@superd-test-{os.getpid()}-{time.monotonic_ns()}"
    made = Listener(address)
    yield made
    made.close()


def test_lifecycle_messages_in_order(superd_factory, listener, tmp_path):
    began = time.monotonic()
    d = superd_factory(
        '[program.slow]\ncommand = "sleep 1000"\nstartsecs = 0.5\n[program.quick]\ncommand = "sleep 1000"\nstartsecs = 0\n',
        env={"NOTIFY_SOCKET": listener.address},
        ready=False,
    )
    ready_at, ready = listener.first("READY", "1")
    # READY=1 waits until every autostart program is running (slow needs 0.5 s).
    assert ready_at - began >= 0.5
    assert "2 running" in ready["STATUS"]
    assert d.state_of("slow") == "running"

    listener.messages.clear()
    d.call("reload")  # nothing changed: no RELOADING round
    config = tmp_path / "superd.toml"
    config.write_text(config.read_text() + '[program.late]\ncommand = "sleep 1000"\nstartsecs = 0\n')
    d.call("reload")
    _, reloading = listener.first("RELOADING", "1")
    usec = int(reloading["MONOTONIC_USEC"])
    assert abs(usec / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 5
    listener.first("READY", "1")
    keys = listener.keys()
    assert keys.index("RELOADING") < keys.index("READY")

    d.signal(signal.SIGTERM)
    _, stopping = listener.first("STOPPING", "1")
    assert int(stopping["EXTEND_TIMEOUT_USEC"]) >= 25_000_000  # default shutdown_timeout 25 s, plus margin
    assert d.wait_exit(15) == 0


def test_watchdog_pings_at_half_the_interval(superd_factory, listener):
    # WATCHDOG_USEC = 1 s: superd pings every 0.5 s. A timer never fires early,
    # so the typical gap is at least about half the interval (not a busy loop,
    # not a quarter), and it stays inside the interval systemd enforces (not a
    # ping at the deadline itself), with half a second to spare for a loaded
    # machine. The median: the test reads the socket when it gets to it, so
    # two pings may be seen at once.
    superd_factory('[program.a]\ncommand = "sleep 1000"\n', env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "1000000"})

    def pings():
        return [when for when, fields in listener.poll() if fields.get("WATCHDOG") == "1"]

    wait_until(lambda: len(pings()) >= 5, 15, what="5 watchdog pings")
    times = pings()
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert 0.4 < sorted(gaps)[len(gaps) // 2] < 1.0, gaps


def test_no_watchdog_for_another_pid(superd_factory, listener):
    d = superd_factory(
        '[program.a]\ncommand = "sleep 1000"\nstartsecs = 0\n',
        env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"},
    )
    listener.first("READY", "1")
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # a quiet period: nothing may arrive in it
        assert not any("WATCHDOG" in fields for _, fields in listener.poll())
        time.sleep(0.05)  # the point: half a second in which nothing happens
    assert d.call("state")["state"] == "running"


def test_programs_do_not_inherit_the_notify_socket(superd_factory, listener, tmp_path):
    out = tmp_path / "env.txt"
    superd_factory(
        f'[program.env]\ncommand = ["sh", "-c", "env > {out}"]\nautorestart = false\nstartsecs = 0\n',
        env={"NOTIFY_SOCKET": listener.address},
    )
    wait_until(lambda: out.exists() and out.stat().st_size > 0, 10)
    assert "NOTIFY_SOCKET" not in out.read_text()
