"""supervisor 4.3's own supervisorctl, unchanged, against superd's [http] listener.

supervisorctl comes from supervisord's package (whose import name is also
``supervisor``), so it goes into a virtualenv of its own, made once per test
module under the test's temporary folder, never into the project's.
"""

from __future__ import annotations

import subprocess
import venv

import pytest

from tests.conftest import skip_or_fail
from tests.system.test_http import PASSWORD, USER, start

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def supervisorctl(tmp_path_factory):
    where = tmp_path_factory.mktemp("supervisorctl")
    venv.create(where / "venv", with_pip=True)
    pip = subprocess.run([str(where / "venv" / "bin" / "pip"), "install", "-q", "supervisor==4.3.0"],
                         capture_output=True, text=True, timeout=240)
    if pip.returncode != 0:
        skip_or_fail(f"cannot install supervisor 4.3.0: {pip.stderr[-500:]}")
    return str(where / "venv" / "bin" / "supervisorctl")


def test_supervisorctl_status_start_stop_restart_pid_version(graceful_superd, supervisorctl):
    handle = start(graceful_superd)

    def ctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([supervisorctl, "-s", f"http://127.0.0.1:{handle.port}", "-u", USER, "-p", PASSWORD,
                               *args], capture_output=True, text=True, timeout=60)

    status = ctl("status")
    lines = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()}
    assert lines == {"app": "RUNNING", "idle": "STOPPED", "worker:worker_0": "RUNNING",
                     "worker:worker_1": "RUNNING"}, status.stdout + status.stderr
    assert status.returncode == 3  # supervisorctl's own code: something is not running (idle)

    assert ctl("stop", "app").stdout.strip() == "app: stopped"
    assert handle.status("app")["app"]["state"] == "stopped"
    assert ctl("stop", "app").stdout.strip() == "app: ERROR (not running)"
    assert ctl("start", "app").stdout.strip() == "app: started"
    assert handle.status("app")["app"]["state"] == "running"
    assert ctl("start", "app").stdout.strip() == "app: ERROR (already started)"
    assert ctl("start", "nope").stdout.strip() == "nope: ERROR (no such process)"

    old = handle.status("worker")
    restart = ctl("restart", "worker:*").stdout
    assert "worker:worker_0: stopped" in restart and "worker:worker_1: started" in restart
    new = handle.status("worker")
    assert all(new[n]["state"] == "running" and new[n]["pid"] != old[n]["pid"] for n in new)

    assert ctl("pid").stdout.strip() == str(handle.pid)
    assert ctl("pid", "app").stdout.strip() == str(handle.status("app")["app"]["pid"])
    assert ctl("pid", "worker:worker_1").stdout.strip() == str(new["worker_1"]["pid"])
    assert ctl("version").stdout.strip() == proxy_version(handle)

    ctl("stop", "all")
    assert {i["state"] for i in handle.status().values()} == {"stopped"}
    ctl("start", "all")
    assert {i["state"] for i in handle.status().values()} == {"running"}
    assert "hello from app" in ctl("tail", "app").stdout

    wrong = subprocess.run([supervisorctl, "-s", f"http://127.0.0.1:{handle.port}", "-u", USER, "-p", "nope",
                            "status"], capture_output=True, text=True, timeout=60)
    assert "401" in wrong.stdout + wrong.stderr or "auth" in (wrong.stdout + wrong.stderr).lower()

    assert ctl("shutdown").stdout.strip() == "Shut down"
    assert handle.wait_exit(30) == 0


def proxy_version(handle) -> str:
    from tests.system.test_http import proxy

    return proxy(handle).supervisor.getSupervisorVersion()
