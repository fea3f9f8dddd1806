"""Hooks: before_start before every start, after_stop after every stop or
exit with the exit variables, a failing before_start, a hook killed at its timeout."""

from __future__ import annotations

import pytest

from tests.conftest import script, wait_until

pytestmark = pytest.mark.timeout(90)


def record(tmp_path):
    return script(tmp_path, "record", """
        import os, sys
        with open(os.environ["HOOK_LOG"], "a") as f:
            keys = ("SUPERD_PROCESS_NAME", "SUPERD_EXIT_CODE", "SUPERD_EXIT_SIGNAL", "SUPERD_STATE", "SUPERVISOR_ENABLED")
            f.write(" ".join([sys.argv[1]] + [k + "=" + os.environ.get(k, "-") for k in keys]) + "\\n")
    """)


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_hook_order_and_exit_variables(graceful_superd, tmp_path):
    log = tmp_path / "hooks.log"
    rec = record(tmp_path)
    app = script(tmp_path, "app", """
        import os, sys, time
        with open(os.environ["HOOK_LOG"], "a") as f:
            f.write("app pid=%d\\n" % os.getpid())
        flag = os.environ["FLAG"]
        if not os.path.exists(flag):
            open(flag, "w").close()
            time.sleep(1.5)
            sys.exit(7)
        time.sleep(3600)
    """)
    d = graceful_superd(f"""
        [program.app]
        command = "{app}"
        startsecs = 1
        before_start = "{rec} before"
        after_stop = "{rec} after"
        environment = {{ HOOK_LOG = "{log}", FLAG = "{tmp_path / 'flag'}" }}
    """)
    wait_until(lambda: len(lines(log)) >= 5 and d.state_of("app") == "running", 30, what="crash and restart")
    with d.client() as c:
        c.stop(["app"])
    wait_until(lambda: len(lines(log)) >= 6, 20, what="after_stop of the stop")
    got = lines(log)
    kinds = [line.split()[0] for line in got]
    assert kinds == ["before", "app", "after", "before", "app", "after"], got
    assert "SUPERD_EXIT_CODE=7" in got[2] and "SUPERD_STATE=EXITED" in got[2] and "SUPERVISOR_ENABLED=1" in got[2]
    assert "SUPERD_PROCESS_NAME=app" in got[0]
    assert "SUPERD_EXIT_SIGNAL=SIGTERM" in got[5] and "SUPERD_STATE=STOPPED" in got[5]
    assert "SUPERD_EXIT_CODE= " in got[5]


def test_failing_before_start_is_a_failed_start(graceful_superd, tmp_path):
    fail = script(tmp_path, "fail", "import sys; print('migrations pending'); sys.exit(3)\n")
    d = graceful_superd(f"""
        [program.app]
        command = "sleep 3600"
        before_start = "{fail}"
        startretries = 1
    """)
    info = wait_until(lambda: (s := d.status("app")["app"])["state"] == "fatal" and s, 30, what="fatal")
    assert "before_start exited with code 3" in info["description"]
    assert "migrations pending" in info["description"]
    assert info["pid"] is None
    assert "migrations pending" in d.log()


def test_hanging_hook_is_killed_at_its_timeout(graceful_superd, tmp_path):
    hang = script(tmp_path, "hang", """
        import os, subprocess, sys, time
        child = subprocess.Popen(["sleep", "3600"])
        open(sys.argv[1], "w").write(str(child.pid))
        time.sleep(3600)
    """)
    pidfile = tmp_path / "child.pid"
    d = graceful_superd(f"""
        [program.app]
        command = "sleep 3600"
        before_start = "{hang} {pidfile}"
        hook_timeout = 1
        startretries = 0
    """)
    info = wait_until(lambda: (s := d.status("app")["app"])["state"] == "fatal" and s, 30, what="fatal")
    assert "before_start timed out after 1s" in info["description"]
    child = int(pidfile.read_text())
    import psutil

    def gone():
        try:
            return psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    wait_until(gone, 10, what="the hook's group to be killed")


def test_stop_while_before_start_runs(graceful_superd, tmp_path):
    hang = script(tmp_path, "slow", "import time; time.sleep(3600)\n")
    d = graceful_superd(f"""
        [program.app]
        command = "sleep 3600"
        before_start = "{hang}"
    """)
    wait_until(lambda: "running before_start" in d.status("app")["app"]["description"], 20, what="hook running")
    with d.client() as c:
        c.stop(["app"])
    assert d.state_of("app") == "stopped"
