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
    from supervisor.signals import SignalQueue

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


def test_a_mass_exit_leaves_no_traceback(superd_factory, tmp_path):
    programs = "".join(f"""
        [program.p{n}]
        command = ["sleep", "1000"]
        startsecs = 0
    """ for n in range(400))
    d = superd_factory(programs, daemon="shutdown_timeout = 20")
    wait_until(lambda: d.log().count("starting -> running") == 400, 30)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(20) == 0
    log = d.log()
    assert "Exception ignored" not in log and "BlockingIOError" not in log
    assert "superd exits with code 0" in log
