"""The signal queue (supervisor.daemon.signals) in this process: a signal among
thousands reaches the event loop, and nothing is printed on stderr.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

pytestmark = pytest.mark.timeout(30)


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
