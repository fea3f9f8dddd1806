"""Shared fixtures: a real superd on a real socket, the fake superd, polling
helpers, clean-up by pid.

The tests live in three folders, by what they need:

- ``unit/``: no process spawned: pure logic, a fake runtime, parsing,
  rendering. Every test there is marked ``unit`` (``pytest -m unit`` runs
  exactly that folder).
- ``system/``: a real superd, real processes, the real socket; no privileges.
- ``privileged/``: needs root, a PID namespace or a writable cgroup v2; every
  test there carries the markers of what it needs (``root``, ``pid1``,
  ``cgroup``), and nothing elsewhere does. Without it a test skips on a
  developer's machine and fails under CI (``skip_or_fail``).

:func:`pytest_collection_modifyitems` below refuses a test whose markers and
folder disagree.

Every process a test starts is killed by pid at the end (superd and every
descendant it had), never by name. Tests synchronise by polling a condition
with a deadline (:func:`wait_until`), not by sleeping.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Callable, Optional

import psutil
import pytest

pytest.register_assert_rewrite("tests.fake_superd", "tests.manpages")

from supervisor.client import Client, SuperdError, Unreachable  # noqa: E402
from tests.fake_superd import FakeServer, default_handlers  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PYTHON = sys.executable
HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: The folders of tests/, and the markers a test in each must (or must not) carry.
FOLDERS = ("unit", "system", "privileged")
PRIVILEGES = ("root", "pid1", "cgroup")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """A test's folder and its markers agree: ``unit`` exactly in unit/ (set
    there by unit/conftest.py), ``root`` on every test in privileged/, and
    ``root``, ``pid1`` or ``cgroup`` nowhere else."""
    problems = []
    for item in items:
        try:
            parts = Path(item.path).resolve().relative_to(HERE).parts
        except ValueError:
            continue  # not one of these tests
        folder = parts[0] if len(parts) > 1 else ""
        if folder not in FOLDERS:
            problems.append(f"{item.nodeid}: a test belongs in tests/unit, tests/system or tests/privileged")
            continue
        marks = {mark.name for mark in item.iter_markers()}
        if (folder == "unit") != ("unit" in marks):
            problems.append(f"{item.nodeid}: the unit marker belongs to the tests of tests/unit, and only to them")
        if folder == "privileged" and "root" not in marks:
            problems.append(f"{item.nodeid}: a test in tests/privileged says what it needs: root (and pid1 or cgroup)")
        if folder != "privileged" and marks & set(PRIVILEGES):
            problems.append(f"{item.nodeid}: a test that needs {', '.join(sorted(marks & set(PRIVILEGES)))} "
                            "belongs in tests/privileged")
    if problems:
        raise pytest.UsageError("tests in the wrong folder or with the wrong markers:\n  " + "\n  ".join(problems))


def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> object:
    """Poll ``condition`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; under CI a skip of these tests is a failure."""
    if IN_CI:
        pytest.fail(f"must run under CI but cannot: {reason}")
    pytest.skip(reason)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant it has, by pid.

    The parent is frozen first (SIGSTOP), so a supervisor cannot start a new
    child between the moment its children are listed and its own death.
    """
    try:
        parent = psutil.Process(pid)
        parent.suspend()
        victims = [parent] + parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for victim in victims:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=5)


class Superd:
    """A superd started by a test, with its socket and output files."""

    def __init__(self, directory: Path, args: list[str], env: Optional[dict] = None, socket: Optional[Path] = None,
                 prefix: tuple = ()):
        self.dir = directory
        self.socket = socket
        self.stdout_path = directory / "superd.stdout"
        self.stderr_path = directory / "superd.stderr"
        self.args = args
        full_env = dict(os.environ)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.update(env or {})
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [*prefix, PYTHON, "-m", "supervisor", *args],  # a prefix (nice -n 5) must exec, keeping the pid
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            env=full_env,
            cwd=directory,
        )
        self.pid = self.proc.pid
        self._known: set[int] = set()

    # -- observation ---------------------------------------------------------

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def client(self, **kwargs) -> Client:
        assert self.socket is not None, "this superd has no socket"
        return Client(str(self.socket), **kwargs)

    def call(self, method: str, **params):
        with self.client() as client:
            return client.call(method, **params)

    def status(self, *names: str) -> dict[str, dict]:
        result = self.call("status", names=list(names)) if names else self.call("status")
        return {p["name"]: p for p in result}

    def state_of(self, name: str) -> str:
        return self.status(name)[name]["state"]

    def wait_ready(self, timeout: float = 30.0) -> "Superd":
        def ready():
            if self.proc.poll() is not None:
                pytest.fail(f"superd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return self.call("state")["state"] == "running"
            except (Unreachable, SuperdError, OSError):
                return False

        wait_until(ready, timeout, what="superd to be running")
        return self

    def wait_state(self, name: str, state: str, timeout: float = 10.0) -> dict:
        def reached():
            info = self.status(name)[name]
            return info if info["state"] == state else None

        return wait_until(reached, timeout, what=f"{name} to be {state}")  # type: ignore[return-value]

    def remember_descendants(self) -> None:
        try:
            self._known |= {p.pid for p in psutil.Process(self.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    # -- ending ----------------------------------------------------------------

    def signal(self, sig: int) -> None:
        self.remember_descendants()
        os.kill(self.pid, sig)

    def wait_exit(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"superd did not exit within {timeout}s:\n{self.log()}")

    def cleanup(self) -> None:
        self.remember_descendants()
        if self.proc.poll() is None:
            kill_tree(self.pid)
            self.proc.wait(5)
        for pid in self._known:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._out.close()
        self._err.close()


@pytest.fixture
def superd_factory(tmp_path):
    """Start superd with a config text; returns a :class:`Superd` (already running)."""
    started: list[Superd] = []

    def start(
        config: str,
        *,
        daemon: str = "",
        ready: bool = True,
        extra_args: tuple = (),
        env: Optional[dict] = None,
        name: str = "superd.toml",
        prefix: tuple = (),
    ) -> Superd:
        """``config`` holds the [program.*] tables; ``daemon`` extra [superd] lines."""
        socket = tmp_path / "superd.sock"
        header = (
            f'[superd]\nsocket = "{socket}"\nlogs_dir = "{tmp_path / "logs"}"\n'
            f'run_dir = "{tmp_path / "run"}"\n' + textwrap.dedent(daemon) + "\n"
        )
        text = header + textwrap.dedent(config)
        path = tmp_path / name
        path.write_text(text)
        handle = Superd(tmp_path, ["-c", str(path), *extra_args], env=env, socket=socket, prefix=prefix)
        started.append(handle)
        if ready:
            handle.wait_ready()
        return handle

    yield start
    for handle in started:
        handle.cleanup()


@pytest.fixture
def graceful_superd(superd_factory):
    """``superd_factory`` whose superds end with SIGTERM, not SIGKILL: superd
    reaps its own programs at once, where killed ones would be left to this
    machine's init. (The factory's kill-by-pid clean-up still runs after.)"""
    started: list[Superd] = []

    def start(*args, **kwargs) -> Superd:
        handle = superd_factory(*args, **kwargs)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        if handle.proc.poll() is None:
            handle.signal(signal.SIGTERM)
            handle.wait_exit(15)


@pytest.fixture
def single_factory(tmp_path):
    """Start superd in single-program mode: ``superd [opts] -- argv``."""
    started: list[Superd] = []

    def start(argv: list[str], *, options: tuple = (), env: Optional[dict] = None) -> Superd:
        handle = Superd(tmp_path, [*options, "--", *argv], env=env)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.cleanup()


# A program that ignores SIGTERM; it creates the file named by argv[1] once it does.
IGNORE_TERM = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").close()
while True:
    time.sleep(1)
"""


def script(tmp_path: Path, name: str, body: str) -> str:
    """Write an executable Python script for a test program; returns its path.

    The name gets a prefix so that it can never shadow a module superd imports
    (superd runs with the test's folder as its working directory).
    """
    path = tmp_path / f"prog_{name}"
    path.write_text(f"#!{PYTHON}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


# --------------------------------------------------------------------------
# The fake superd (tests/fake_superd.py), for the client and superctl tests


@pytest.fixture
def sockdir():
    # A short folder: AF_UNIX paths are limited to 108 bytes, tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="sctl-", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server_factory(sockdir):
    servers = []

    def make(name="superd.sock", defaults=True):
        fake = FakeServer(sockdir / name)
        servers.append(fake)
        return default_handlers(fake) if defaults else fake

    yield make
    for fake in servers:
        fake.stop()


@pytest.fixture
def server(server_factory):
    return server_factory()
