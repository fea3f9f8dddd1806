"""Signals into a real superd: none lost under a flood of exits, no handler left behind.

The signal queue alone, in this process, is in tests/unit/test_signal_queue.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.mark.timeout(120)  # the start of 1000 programs alone may take up to its 60 s wait
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
