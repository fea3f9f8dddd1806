"""Signals into the event loop: none lost under a flood, no noise on stderr."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import wait_until

pytestmark = pytest.mark.timeout(60)


def test_a_signal_among_thousands_is_not_lost(capfd):
    from supervisor.daemon.signals import SignalQueue

    seen: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        queue = SignalQueue(loop)
        queue.open()
        queue.add(signal.SIGUSR2, seen.append, "usr2")
        queue.add(signal.SIGUSR1, seen.append, "usr1")
        try:
            # The loop is busy while thousands of signals arrive (a SIGCHLD
            # flood at the end of a mass stop), then the one that matters.
            for _ in range(3000):
                os.kill(os.getpid(), signal.SIGUSR2)
            os.kill(os.getpid(), signal.SIGUSR1)
            deadline = time.monotonic() + 5
            while "usr1" not in seen and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            queue.close()

    asyncio.run(main())
    assert "usr1" in seen
    assert "Exception ignored" not in capfd.readouterr().err
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # close() put the defaults back


def test_a_term_sent_during_a_flood_of_exits_is_acted_on(superd_factory, tmp_path):
    import psutil

    programs = "".join(f"""
        [program.p{n}]
        command = ["sleep", "1000"]
        startsecs = 0
    """ for n in range(1000))
    d = superd_factory(programs, daemon="shutdown_timeout = 10")
    wait_until(lambda: d.log().count("starting -> running") == 1000, 60)
    children = psutil.Process(d.pid).children()
    assert len(children) == 1000
    for child in children:  # a thousand SIGCHLDs at once...
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    d.signal(signal.SIGTERM)  # ...and the one signal that matters, in the middle of them
    assert d.wait_exit(20) == 0
    assert "SIGTERM: shutting down" in d.log()
    assert "Exception ignored" not in d.log()


def test_handlers_are_removed_when_startup_fails(tmp_path):
    # superd refuses to start (its socket is served by another superd): no
    # handler of the dead loop may stay behind in the process.
    code = f"""
import asyncio, os, signal, socket, sys
sys.path.insert(0, {str(os.getcwd())!r})
from supervisor.config import parse
from supervisor.daemon.supervisor import Supervisor
from supervisor.control.server import ControlServer
cfg = parse({{"superd": {{"socket": {str(tmp_path / "s.sock")!r}, "run_dir": {str(tmp_path / "run")!r},
             "logs_dir": {str(tmp_path / "logs")!r}}}}}, None, {{}})
sv = Supervisor(cfg)
sv.server = ControlServer(sv)
async def failing():
    raise OSError("taken")
sv.server.start = failing
try:
    asyncio.run(sv.run())
except OSError:
    pass
print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, signal.set_wakeup_fd(-1))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL)
    assert out.stdout.split() == ["True", "-1"], out.stdout + out.stderr
