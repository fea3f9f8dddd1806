"""tests/privileged: tests that need root, a PID namespace or a writable cgroup v2.

Each test says what it needs with its markers (``root``, plus ``pid1`` or
``cgroup``); the fixture below checks it before the test starts. Without it
the test skips on a developer's machine and fails under CI (``skip_or_fail``):
.ci/run sets CI=true, so there a privileged test can never skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from supervisor.daemon import cgroups
from tests.conftest import skip_or_fail


def require_root() -> None:
    if os.geteuid() != 0:
        skip_or_fail("needs root")


def require_pid_namespace() -> None:
    require_root()
    if shutil.which("unshare") is None:
        skip_or_fail("needs unshare(1) from util-linux")
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        skip_or_fail(f"cannot create a PID namespace: {probe.stderr.decode().strip()}")


def require_cgroup2() -> None:
    require_root()
    reason = cgroups.describe_unusable()
    if reason is not None:
        skip_or_fail(f"no usable cgroup v2: {reason}")


@pytest.fixture(autouse=True)
def _what_the_markers_say(request):
    """Autouse, so it runs before the test's other fixtures start anything."""
    if request.node.get_closest_marker("root"):
        require_root()
    if request.node.get_closest_marker("pid1"):
        require_pid_namespace()
    if request.node.get_closest_marker("cgroup"):
        require_cgroup2()
