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


def test_the_daemon_path_leaves_out_what_only_some_configs_need():
    """Importing superd's daemon path (CLI, supervisor, control server) does
    not load the reload and crash-recovery code (loaded when a reload or a
    left-behind state file needs them), nor ipaddress and urllib.parse (a TCP
    socket, an [http] listener or an http probe): ~0.8 MB a superd without
    them does not carry. Nor click: superd's command line is argparse's (click,
    for superctl, costs the daemon ~10 ms of start and ~1 MB), and parsing it
    does not load shutil (with zlib, bz2 and lzma: ~0.7 MB), which argparse's
    own formatter imports to measure the terminal."""
    import os
    import subprocess
    import sys

    code = ("import sys\n"
            "import supervisor.cli.superd, supervisor.daemon.supervisor, supervisor.control.server\n"
            "supervisor.cli.superd.parser().parse_args(['-c', 'superd.toml', '--log-level', 'info'])\n"
            "print(' '.join(m for m in ('ipaddress', 'urllib.parse', 'supervisor.daemon.reload',\n"
            "      'supervisor.daemon.recovery', 'supervisor.config.diff', 'click', 'difflib',\n"
            "      'platform', 'shutil', 'bz2', 'lzma')\n"
            "      if m in sys.modules))\n")
    # -S: without site's start-up, where the editable install of a checkout
    # runs an import hook that loads pathlib (and so urllib.parse) itself.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join([root, *(p for p in sys.path if p.endswith("-packages"))])
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_start_up_and_reload_hand_freed_memory_back(graceful_superd):
    d = graceful_superd("""
        [program.plain]
        command = ["sleep", "1000"]
        startsecs = 0
    """, daemon='log_level = "debug"')
    wait_until(lambda: "after the start-up:" in d.log(), 10)
    d.call("reload")
    wait_until(lambda: "after the reload:" in d.log(), 10)
    assert "of freed memory returned to the kernel" in d.log()
