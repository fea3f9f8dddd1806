"""The shipped examples work: the demo's job workers finish their jobs on shutdown."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from conftest import Superd, wait_until

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_example_config_is_valid():
    import subprocess
    import sys

    configs = sorted(ROOT.glob("examples/**/*.toml"))
    assert configs, "no example configs found"
    for config in configs:
        result = subprocess.run([sys.executable, "-m", "supervisor", "--check", "-c", str(config)], capture_output=True, text=True)
        assert result.returncode == 0, f"{config}: {result.stderr}"


def test_demo_workers_finish_their_jobs_on_shutdown(tmp_path):
    spool = tmp_path / "spool"
    env = {"SUPERD_DEMO_SPOOL": str(spool), "SUPERD_DEMO_PORT": str(free_port())}
    d = Superd(tmp_path, ["-c", str(ROOT / "examples/demo/superd.toml"), "--socket", str(tmp_path / "s.sock")], env=env, socket=tmp_path / "s.sock")
    try:
        d.wait_ready()
        # Wait until both workers hold a job (a claimed job is named "job-….worker_N").
        def held():
            return [p for p in spool.iterdir() if p.is_file() and ".worker_" in p.name] if spool.exists() else []

        wait_until(lambda: len(held()) == 2, 20, what="both workers to hold a job")
        in_hand = {p.name.rsplit(".", 1)[0] for p in held()}
        d.signal(signal.SIGTERM)
        assert d.wait_exit(30) == 0
        done = set(os.listdir(spool / "done"))
        assert in_hand <= done, f"jobs left half done: {in_hand - done}"
        assert held() == []
        assert "finishing the job in hand" in d.output()
    finally:
        d.cleanup()


def test_kubernetes_example_budget_and_embedded_config():
    """preStop + shutdown_timeout must fit inside terminationGracePeriodSeconds."""
    import re
    import textwrap

    from supervisor import config as cfg

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    text = (ROOT / "examples/kubernetes/deployment.yaml").read_text()
    grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", text).group(1))
    pre_stop = int(re.search(r'command: \["sleep", "(\d+)"\]', text).group(1))
    block = text.split("superd.toml: |\n", 1)[1]
    embedded = textwrap.dedent(block)
    parsed = cfg.parse(tomllib.loads(embedded), None, {})
    assert pre_stop + parsed.daemon.shutdown_timeout < grace
    assert {p.name for p in parsed.programs} == {"web", "worker"}


def test_systemd_unit_outlasts_the_shutdown_timeout():
    import re

    unit = (ROOT / "examples/systemd/superd.service").read_text()
    assert "Type=notify" in unit and "KillMode=mixed" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    stop = int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M).group(1))
    assert stop > 25  # superd's default shutdown_timeout
