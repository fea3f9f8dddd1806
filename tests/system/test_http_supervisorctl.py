"""supervisor 4.3's own supervisorctl, unchanged, against superd's [http] listener.

supervisorctl comes from supervisord's package (whose import name is also
``supervisor``), so it goes into a virtualenv of its own, made once per test
module under the test's temporary folder, never into the project's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import venv
import xmlrpc.client

import pytest

from tests.conftest import skip_or_fail, wait_until
from tests.system.test_http import PASSWORD, PROGRAMS, USER, start
from tests.system.test_http_streams import POKED

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


class Follow:
    """A ``supervisorctl tail -f`` (or ``maintail -f``) running: its output as it comes."""

    def __init__(self, supervisorctl: str, handle, *args: str) -> None:
        self.proc = subprocess.Popen([supervisorctl, "-s", f"http://127.0.0.1:{handle.port}", "-u", USER,
                                      "-p", PASSWORD, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.text = ""

    def read_until(self, wanted: str, timeout: float = 20.0) -> str:
        def arrived() -> bool:
            chunk = self.proc.stdout.read()
            if chunk:
                self.text += chunk.decode(errors="replace")
            assert self.proc.poll() is None or wanted in self.text, f"supervisorctl ended: {self.text}"
            return wanted in self.text

        wait_until(arrived, timeout, what=f"{wanted!r} from supervisorctl; it printed: {self.text!r}")
        return self.text

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)  # Ctrl-C, as its user ends it
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc.stdout.close()


def test_supervisorctl_tail_f(graceful_superd, supervisorctl):
    handle = start(graceful_superd, programs=PROGRAMS + POKED)
    log = handle.dir / "logs" / "poked-stdout.log"
    wait_until(lambda: log.exists() and "poked ready" in log.read_text(), what="poked's first line")
    follow = Follow(supervisorctl, handle, "tail", "-f", "poked")
    try:
        follow.read_until("poked ready")
        os.kill(handle.status("poked")["poked"]["pid"], signal.SIGUSR1)
        follow.read_until("poked 1\n")  # printed after the follow began
    finally:
        follow.stop()
    assert follow.proc.returncode is not None
    errors = Follow(supervisorctl, handle, "tail", "-f", "app", "stderr")
    try:
        errors.read_until("oops")
    finally:
        errors.stop()
    missing = Follow(supervisorctl, handle, "tail", "-f", "nope")
    try:
        missing.read_until("Cannot read, status code 404")
    finally:
        missing.stop()
    assert proxy_version(handle)  # superd serves on


def test_supervisorctl_maintail_f(graceful_superd, supervisorctl, tmp_path):
    handle = start(graceful_superd, daemon=f'log_file = "{tmp_path / "superd.log"}"\n')
    follow = Follow(supervisorctl, handle, "maintail", "-f")
    try:
        follow.read_until("app")  # the end of what superd logged already
        with xmlrpc.client.ServerProxy(f"http://{USER}:{PASSWORD}@127.0.0.1:{handle.port}/RPC2") as server:
            server.supervisor.stopProcess("app")
        follow.read_until("stopping -> stopped")  # logged after the follow began
    finally:
        follow.stop()


def test_supervisorctl_avail_update_clear(graceful_superd, supervisorctl, tmp_path):
    handle = start(graceful_superd)

    def ctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([supervisorctl, "-s", f"http://127.0.0.1:{handle.port}", "-u", USER, "-p", PASSWORD,
                               *args], capture_output=True, text=True, timeout=60)

    config = tmp_path / "superd.toml"
    text = config.read_text()
    config.write_text(text.replace('[program.idle]\ncommand = ["sleep", "300"]\nautostart = false\n', "")
                      + '\n[program.extra]\ncommand = ["sleep", "300"]\nstartsecs = 0\n')

    avail = ctl("avail")  # the file on disk is read: extra is there, not in use yet
    assert avail.returncode == 0, avail.stdout + avail.stderr
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in avail.stdout.splitlines()}
    assert rows == {"app": "in use auto 999:999", "extra": "avail auto 999:999", "idle": "in use manual 999:999",
                    "worker:worker_0": "in use auto 999:999", "worker:worker_1": "in use auto 999:999"}

    update = ctl("update")
    assert update.returncode == 0, update.stdout + update.stderr
    assert update.stdout.splitlines() == ["idle: stopped", "idle: removed process group", "extra: added process group"]
    wait_until(lambda: handle.status("extra")["extra"]["state"] == "running", what="extra running")
    assert "idle" not in handle.status()
    assert (ctl("update").returncode, ctl("update").stdout) == (0, "")  # nothing changed: nothing said

    log = tmp_path / "logs" / "app-stdout.log"
    wait_until(lambda: log.exists() and "hello from app" in log.read_text(), what="app's log")
    clear = ctl("clear", "app")
    assert (clear.returncode, clear.stdout.strip()) == (0, "app: cleared")
    assert log.read_text() == ""
    assert ctl("clear", "nope").stdout.strip() == "nope: ERROR (no such process)"
    everything = ctl("clear", "all")
    assert everything.returncode == 0
    assert sorted(everything.stdout.splitlines()) == ["app: cleared", "extra: cleared", "worker:worker_0: cleared",
                                                      "worker:worker_1: cleared"]


def test_supervisorctl_names_groups_as_supervisord_does(graceful_superd, supervisorctl):
    from tests.system.test_groups import GROUPED, running
    from tests.system.test_http import free_port

    port = free_port()
    handle = graceful_superd(GROUPED + f'\n[http]\nlisten = "127.0.0.1:{port}"\nusername = "{USER}"\n'
                                       f'password = "{PASSWORD}"\n')
    running(handle, "gunicorn", "nginx", "worker-01", "worker-02")

    def ctl(*args: str) -> list[list[str]]:
        done = subprocess.run([supervisorctl, "-s", f"http://127.0.0.1:{port}", "-u", USER, "-p", PASSWORD, *args],
                              capture_output=True, text=True, timeout=60)
        return sorted(line.split()[:2] for line in done.stdout.splitlines())

    # what supervisord 4.3 itself prints for [group:web] programs=gunicorn,nginx and a
    # numprocs program with process_name=worker-%(process_num)02d, numprocs_start=1
    assert ctl("status") == [["web:gunicorn", "RUNNING"], ["web:nginx", "RUNNING"],
                             ["worker:worker-01", "RUNNING"], ["worker:worker-02", "RUNNING"]]
    assert ctl("status", "web:*") == [["web:gunicorn", "RUNNING"], ["web:nginx", "RUNNING"]]
    assert ctl("stop", "web:*") == [["web:gunicorn:", "stopped"], ["web:nginx:", "stopped"]]
    assert {n: i["state"] for n, i in handle.status().items()} == {
        "gunicorn": "stopped", "nginx": "stopped", "worker-01": "running", "worker-02": "running"}
    assert ctl("start", "web:*") == [["web:gunicorn:", "started"], ["web:nginx:", "started"]]
    assert ctl("stop", "web:gunicorn") == [["web:gunicorn:", "stopped"]]
    assert ctl("status", "web:gunicorn") == [["web:gunicorn", "STOPPED"]]
    assert ctl("start", "web:") == [["web:gunicorn:", "started"]]
    assert ctl("stop", "worker:") == [["worker:worker-01:", "stopped"], ["worker:worker-02:", "stopped"]]
    assert ctl("start", "web:nope") == [["web:nope:", "ERROR"]]
    assert {n: i["state"] for n, i in handle.status().items()} == {
        "gunicorn": "running", "nginx": "running", "worker-01": "stopped", "worker-02": "stopped"}
