"""The shipped examples work: every config passes --check, the demo's job workers
finish their jobs on shutdown. What the Kubernetes and systemd files say is
checked in tests/unit/test_example_files.py.
"""

from __future__ import annotations

import os
import signal
import socket

import pytest

from tests.conftest import REPO, Superd, wait_until

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_example_config_is_valid():
    import subprocess
    import sys

    configs = sorted(REPO.glob("examples/**/*.toml"))
    assert configs, "no example configs found"
    for config in configs:
        result = subprocess.run([sys.executable, "-m", "supervisor", "--check", "-c", str(config)], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, f"{config}: {result.stderr}"


def test_demo_workers_finish_their_jobs_on_shutdown(tmp_path):
    spool = tmp_path / "spool"
    (spool / "run-1" / "incoming").mkdir(parents=True)  # an earlier run's queue: removed
    (spool / "run-1" / "incoming" / "job-1-00001").write_text("old\n")
    env = {"SUPERD_DEMO_SPOOL": str(spool), "SUPERD_DEMO_PORT": str(free_port())}
    d = Superd(tmp_path, ["-c", str(REPO / "examples/demo/superd.toml"), "--socket", str(tmp_path / "s.sock")], env=env, socket=tmp_path / "s.sock")
    try:
        d.wait_ready()
        # Wait until both workers hold a job (a claimed job is named "job-….worker_N"),
        # in this run's queue: run-PID, superd's pid.
        run = spool / f"run-{d.pid}"

        def held():
            return [p for p in run.iterdir() if p.is_file() and ".worker_" in p.name] if run.exists() else []

        wait_until(lambda: len(held()) == 2, 20, what="both workers to hold a job")
        in_hand = {p.name.rsplit(".", 1)[0] for p in held()}
        d.signal(signal.SIGTERM)
        assert d.wait_exit(30) == 0
        done = set(os.listdir(run / "done"))
        assert in_hand <= done, f"jobs left half done: {in_hand - done}"
        assert held() == []
        assert "finishing the job in hand" in d.output()
        assert not (spool / "run-1").exists() and "job-1-00001" not in d.output()
    finally:
        d.cleanup()
