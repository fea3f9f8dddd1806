"""What a running superd keeps in memory: no library it does not need.

superd idles for days next to its programs; OpenSSL (pulled in by ssl or
hashlib) and psutil are megabytes it never uses on its common path.
"""

from __future__ import annotations

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


def mapped_files(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_a_running_superd_maps_no_openssl_and_no_psutil(graceful_superd, tmp_path):
    d = graceful_superd("""
        [program.plain]
        command = ["sleep", "1000"]
        startsecs = 0
        [program.notified]
        command = ["sh", "-c", "sleep 1000"]
        ready = "notify"
        startsecs = 0
        [program.probed]
        command = ["sleep", "1000"]
        ready = { exec = "true", interval = 0.1 }
        startsecs = 0
        stop_command = ["sh", "-c", "kill $MAINPID"]
    """)
    wait_until(lambda: (tmp_path / "run" / "notify" / "notified").exists(), 5)
    wait_until(lambda: "probed: starting -> running" in d.log(), 5)
    maps = mapped_files(d.pid)
    for library in ("libssl", "libcrypto", "_hashlib", "_ssl", "_psutil"):
        assert library not in maps, f"superd has {library} loaded"
