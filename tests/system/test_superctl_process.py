"""superctl and the client as processes of their own, against the fake superd
(tests/fake_superd.py): exit codes, socket resolution, Ctrl-C of ``tail -f``,
shell completion, the shell on a real pty, and what importing them costs in a
fresh interpreter. No superd runs here; the in-process tests of the same code
are in tests/unit/test_superctl.py.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pexpect
import pytest

from supervisor.client import Client, Unreachable
from tests.conftest import PYTHON, REPO, wait_until
from tests.fake_superd import NAMES, config_file, follow_handler

pytestmark = pytest.mark.timeout(30)


def sub_env(home, **extra):
    e = {k: v for k, v in os.environ.items() if k not in ("SUPERD_SOCKET", "SUPERD_CONFIG")}
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e["HOME"] = str(home)
    e.update(extra)
    return e


def run_superctl(*args, cwd, **env_extra):
    return subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", *args], cwd=cwd, env=sub_env(cwd, **env_extra),
                          capture_output=True, text=True, timeout=20)


# --------------------------------------------------------------------------
# The client as another user (root: a forked child becomes uid 65534)


def test_unreachable_permission_denied(server, sockdir):
    if os.geteuid() != 0:
        os.chmod(server.path, 0)
        with pytest.raises(Unreachable) as info:
            Client(server.path).state()
        assert info.value.exit_code == 7
        assert "Permission denied" in str(info.value)
        return
    # root ignores file modes: ask as nobody, who cannot enter the 0700 folder.
    # (A forked child: the venv's python may live where nobody cannot run it.)
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                Client(server.path).state()
                msg = "connected"
            except Unreachable as e:
                msg = f"{e.exit_code} {e}"
            os.write(wfd, msg.encode())
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        msg = f.read().decode()
    os.waitpid(child, 0)
    assert msg == f"7 cannot reach superd at {server.path}: Permission denied"
    assert server.requests == []


# --------------------------------------------------------------------------
# What an import costs, in a fresh interpreter


def _imported(module):
    code = ("import sys, " + module + "; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('click', 'psutil', 'asyncio', 'supervisor'))))")
    out = subprocess.run([PYTHON, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=20,
                         env=sub_env(REPO), check=True).stdout.split()
    return set(out)


def test_client_imports_only_the_stdlib():
    assert _imported("supervisor.client") == {
        "supervisor", "supervisor.client", "supervisor.control", "supervisor.control.client",
        "supervisor.control.connection", "supervisor.control.errors", "supervisor.control.protocol",
        "supervisor.control.streams"}


def test_ctl_import_is_light():
    mods = _imported("supervisor.cli.superctl")
    assert not {m for m in mods if m.split(".")[0] in ("psutil", "asyncio")}
    assert not {m for m in mods if m.startswith("supervisor.config")}  # read lazily, only to find the socket
    assert "click.shell_completion" not in mods
    assert "supervisor.cli.completion" not in mods  # only when a shell asks


# --------------------------------------------------------------------------
# superctl as a process: socket resolution, exit codes, Ctrl-C, completion, the shell


def test_socket_resolution_subprocess(server_factory, sockdir):
    a = server_factory("a.sock")
    b = server_factory("b.sock")
    c = server_factory("c.sock")
    cfg = config_file(sockdir, "c.sock", name="other.toml")
    # -s wins over $SUPERD_SOCKET and -c
    r = run_superctl("-s", a.path, "-c", str(cfg), "state", cwd=sockdir, SUPERD_SOCKET=b.path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "running\n", "")
    assert (a.methods(), b.methods(), c.methods()) == (["state"], [], [])
    # $SUPERD_SOCKET wins over -c
    r = run_superctl("-c", str(cfg), "state", cwd=sockdir, SUPERD_SOCKET=b.path)
    assert r.returncode == 0
    assert (a.methods(), b.methods(), c.methods()) == (["state"], ["state"], [])
    # then the config's socket (-c, then $SUPERD_CONFIG)
    r = run_superctl("-c", str(cfg), "state", cwd=sockdir)
    assert r.returncode == 0
    r = run_superctl("state", cwd=sockdir, SUPERD_CONFIG=str(cfg))
    assert r.returncode == 0
    assert c.methods() == ["state", "state"]


def test_subprocess_exit_codes(server, sockdir):
    r = run_superctl("-s", server.path, "status", "web", cwd=sockdir)
    assert (r.returncode, r.stdout) == (0, "web   RUNNING    pid 123, uptime 0:01:02\n")
    r = run_superctl("-s", server.path, "status", cwd=sockdir)
    assert r.returncode == 3
    r = run_superctl("-s", server.path, "start", "broken", cwd=sockdir)
    assert r.returncode == 1
    r = run_superctl("-s", server.path, "stop", "nope", cwd=sockdir)
    assert (r.returncode, r.stderr) == (4, "superctl: no such process: nope\n")
    r = run_superctl("-s", server.path, "stop", cwd=sockdir)
    assert r.returncode == 2
    missing = str(sockdir / "missing.sock")
    r = run_superctl("-s", missing, "state", cwd=sockdir)
    assert (r.returncode, r.stdout) == (7, "")
    assert r.stderr == f"superctl: cannot reach superd at {missing}: No such file or directory\n"


def test_tail_follow_ctrl_c_exits_0(server, sockdir):
    state = {"server": server}
    server.on("tail", follow_handler(state))
    proc = subprocess.Popen([PYTHON, "-m", "supervisor.cli.superctl", "-s", server.path, "tail", "-f", "web"],
                            cwd=sockdir, env=sub_env(sockdir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        got = [proc.stdout.readline() for _ in range(5)]
        assert got == ["old 1\n", "old 2\n", "new 1\n", "new 2\n", "new 3\n"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "Traceback" not in err
    wait_until(lambda: state.get("client_closed"), what="the follow connection to close")


def test_click_shell_completion_asks_the_daemon(server, sockdir):
    def complete(words):
        env = sub_env(sockdir, _SUPERCTL_COMPLETE="bash_complete",
                      COMP_WORDS=" ".join(words), COMP_CWORD=str(len(words) - 1))
        r = subprocess.run([PYTHON, "-m", "supervisor.cli.superctl"], cwd=sockdir, env=env,
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        return [line.split(",", 1)[1] for line in r.stdout.splitlines() if line]  # "type,value" lines

    assert complete(["superctl", "-s", server.path, "restart", "wo"]) == ["worker", "worker:*", "worker_10"]
    assert complete(["superctl", "-s", server.path, "stop", ""]) == sorted(NAMES + ["all"])
    assert complete(["superctl", "-s", server.path, "tail", "w"]) == ["web", "worker", "worker:*", "worker_10"]
    assert complete(["superctl", "sta"]) == ["status", "start", "state"]
    assert server.methods() == ["names", "names", "names"]
    # superd unreachable: no names, no error
    assert complete(["superctl", "-s", str(sockdir / "x.sock"), "stop", "w"]) == []


def test_shell_with_a_real_pty(server, sockdir):
    child = pexpect.spawn(PYTHON, ["-m", "supervisor.cli.superctl", "-s", server.path, "shell"],
                          cwd=str(sockdir), env=sub_env(sockdir, TERM="dumb"),
                          encoding="utf-8", timeout=10, dimensions=(24, 200))
    try:
        child.expect_exact("superd> ")
        child.sendline("state")
        child.expect_exact("running")
        child.expect_exact("superd> ")
        # Tab completes a program name fetched from the daemon.
        child.send("status we\t")
        child.expect_exact("web")
        child.send("\r")
        child.expect(r"web\s+RUNNING\s+pid 123")
        child.expect_exact("superd> ")
        # An error does not leave the shell.
        child.sendline("status nope")
        child.expect_exact("superctl: no such process: nope")
        child.expect_exact("superd> ")
        child.sendline("help")
        child.expect_exact("restart")
        child.expect_exact("superd> ")
        child.sendeof()  # Ctrl-D
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert ["status", "web"] in [[r["method"], *r.get("params", {}).get("names", [])] for r in server.requests]
    assert "names" in server.methods()
    history = (sockdir / ".superctl_history").read_text()
    assert "status web" in history
