"""What a program finds when superd starts it: environment, fds, signals, group, directory.

Its identity with ``user = ...`` (superd as root) is in tests/privileged/test_spawn_as_user.py.
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.conftest import PYTHON, script, wait_until

pytestmark = pytest.mark.timeout(30)

# Writes what it sees as JSON to argv[1], then sleeps.
INSPECT = """
import json, os, sys, time
fds = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
info = {
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "umask": os.umask(0),
    "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
    "pid": os.getpid(), "pgid": os.getpgrp(), "sid": os.getsid(0),
    "fds": fds,
    "stdin": os.readlink("/proc/self/fd/0"),
    "sigblk": status["SigBlk"].strip(), "sigign": status["SigIgn"].strip(),
}
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(info, f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(1000)
"""


def inspect(superd_factory, tmp_path, settings: str = "", *, env=None, preexec=None) -> tuple[dict, object]:
    prog = script(tmp_path, "inspect.py", INSPECT)
    out = tmp_path / "seen.json"
    d = superd_factory(
        f'[program.probe]\ncommand = ["{prog}", "{out}"]\nstartsecs = 0\n{settings}\n',
        env=env,
    )
    wait_until(out.exists, 10, what="the probe's report")
    return json.loads(out.read_text()), d


def test_environment_is_superds_plus_the_programs_plus_superd_variables(superd_factory, tmp_path):
    seen, d = inspect(
        superd_factory,
        tmp_path,
        'environment = { GREETING = "hello ${WHO}", PORT = 8000 }',
        env={"WHO": "world", "INHERITED": "yes", "NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "5"},
    )
    env = seen["env"]
    assert env["GREETING"] == "hello world"
    assert env["PORT"] == "8000"
    assert env["INHERITED"] == "yes"
    assert env["SUPERD_PROCESS_NAME"] == "probe"
    assert env["SUPERD_GROUP"] == "probe"
    assert env["SUPERD_PROCESS_NUM"] == "0"
    assert env["SUPERD_SOCKET"] == str(d.socket)
    # superd's own systemd variables are not handed down.
    assert "NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env


def test_own_process_group_stdin_devnull_and_no_leaked_fds(superd_factory, tmp_path):
    seen, d = inspect(superd_factory, tmp_path)
    assert seen["pgid"] == seen["pid"], "each program leads its own process group"
    assert seen["stdin"] == "/dev/null"
    extra = {fd: target for fd, target in seen["fds"].items() if int(fd) > 2 and "/proc/" not in target}
    assert extra == {}, f"descriptors leaked into the program: {extra}"


def test_signal_mask_and_ignored_signals_are_clean_even_if_superds_were_not(superd_factory, tmp_path):
    # Start superd itself with SIGUSR1 and SIGHUP ignored and SIGUSR2 blocked, as a
    # careless parent might; its programs must still see defaults.
    # The probe is grep itself, exec'd by superd (a Python probe would ignore
    # SIGPIPE and SIGXFSZ on its own).
    out = tmp_path / "sigs.txt"
    config = tmp_path / "superd.toml"
    config.write_text(
        f'[superd]\nsocket = "{tmp_path}/s.sock"\n[program.probe]\n'
        f'command = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]\n'
        f'stdout = "{out}"\nstartsecs = 0\nautorestart = false\n'
    )

    def careless_parent():
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})

    proc = subprocess.Popen(
        [PYTHON, "-m", "supervisor", "-c", str(config)],
        preexec_fn=careless_parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: out.exists() and out.read_text().count("\n") == 2, 10)
        seen = dict(line.split(":") for line in out.read_text().splitlines())
        assert int(seen["SigBlk"], 16) == 0
        assert int(seen["SigIgn"], 16) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_directory_and_umask(superd_factory, tmp_path):
    work = tmp_path / "work dir"
    work.mkdir()
    seen, _ = inspect(superd_factory, tmp_path, f'directory = "{work}"\numask = "027"')
    assert seen["cwd"] == str(work)
    assert seen["umask"] == 0o027


def test_missing_command_is_reported_with_its_reason(superd_factory, tmp_path):
    d = superd_factory('[program.ghost]\ncommand = "/nonexistent/ghost --flag"\nstartretries = 1\n')
    info = d.wait_state("ghost", "fatal", timeout=10)
    assert "cannot execute '/nonexistent/ghost'" in info["description"]
    assert "no such file" in info["description"]
    assert "spawn error" in d.log()


def test_not_executable_is_reported(superd_factory, tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program\n")
    d = superd_factory(f'[program.plain]\ncommand = "{plain}"\nstartretries = 0\n')
    info = d.wait_state("plain", "fatal")
    assert "permission denied" in info["description"]


def test_output_to_a_file_and_null(superd_factory, tmp_path):
    out = tmp_path / "out.log"
    d = superd_factory(
        f'[program.talker]\ncommand = ["sh", "-c", "echo to-out; echo to-err >&2"]\n'
        f'stdout = "{out}"\nstderr = "stdout"\nautorestart = false\nstartsecs = 0\n'
        '[program.quiet]\ncommand = ["sh", "-c", "echo hidden"]\nstdout = "null"\nautorestart = false\nstartsecs = 0\n'
    )
    d.wait_state("talker", "exited")
    d.wait_state("quiet", "exited")
    assert out.read_text().split() == ["to-out", "to-err"]
    assert "hidden" not in d.output()


def test_crash_loop_backs_off_instead_of_spinning(superd_factory, tmp_path):
    d = superd_factory('[program.crasher]\ncommand = "false"\nstartsecs = 0\nautorestart = true\n')
    wait_until(lambda: d.status("crasher")["crasher"]["restarts"] >= 3, 10)
    info = d.status("crasher")["crasher"]
    # 0 s, 1 s, 2 s...: after ~3 s there were a handful of restarts, not thousands.
    wait_until(lambda: d.status("crasher")["crasher"]["state"] == "backoff", 5)
    assert d.status("crasher")["crasher"]["restarts"] < 6
    assert "restarting in" in d.status("crasher")["crasher"]["description"]
    assert info["exitstatus"] == 1


def test_first_restart_after_a_good_run_is_immediate(superd_factory, tmp_path):
    marks = tmp_path / "marks"
    d = superd_factory(
        f'[program.blip]\ncommand = ["sh", "-c", "date +%s.%N >> {marks}; sleep 1.2; exit 3"]\n'
        "startsecs = 0\nautorestart = true\n"
    )
    wait_until(lambda: marks.exists() and len(marks.read_text().split()) >= 2, 10)
    first, second = (float(x) for x in marks.read_text().split()[:2])
    gap = second - first - 1.2
    # Straight from exited to starting, no backoff in between (a quick exit
    # would have waited 1 s in backoff); the wall clock agrees, generously.
    assert "blip: exited -> starting" in d.log() and "blip: exited -> backoff" not in d.log(), d.log()
    assert gap < 1.0, f"restart took {gap * 1000:.0f} ms after the exit"
    assert d.status("blip")["blip"]["restarts"] >= 1
