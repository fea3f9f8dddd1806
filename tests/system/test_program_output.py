"""Program output with a real superd and real programs: capture, rotation, console, tail, reopen.

Each test polls with a deadline (``wait_until``); none sleeps to synchronise.
Log files and the ring without processes are in tests/unit/test_log_files.py.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import PYTHON, kill_tree, script, wait_until

pytestmark = pytest.mark.timeout(60)

N = 200_000

# Numbered lines as fast as possible: 64 KiB blocks that end mid-line.
FAST_LINES = """
import os, sys
n = int(sys.argv[1])
out = open(1, "wb", buffering=65536, closefd=False)
for i in range(n):
    out.write(b"%07d\\n" % i)
out.flush()
"""

# Numbered lines alternating between stdout and stderr, one write each.
ALTERNATING = """
import os, sys
n = int(sys.argv[1])
for i in range(n):
    os.write(1 if i % 2 == 0 else 2, b"%07d\\n" % i)
"""


def program(name: str, command: list, **settings) -> str:
    lines = [f"[program.{name}]", "command = " + json.dumps([str(c) for c in command])]
    settings.setdefault("startsecs", 0)
    settings.setdefault("autorestart", False)
    for key, value in settings.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n\n"


def numbers(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().splitlines()]


def ctl(d, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
                          capture_output=True, text=True, timeout=20, **kwargs)


# --------------------------------------------------------------------------
# Nothing lost


def test_200k_lines_reach_the_file_in_order(superd_factory, tmp_path):
    prog = script(tmp_path, "fast.py", FAST_LINES)
    d = superd_factory(program("fast", [prog, N]))
    d.wait_state("fast", "exited", 30)
    log = tmp_path / "logs" / "fast-stdout.log"
    assert numbers(log) == list(range(N))


def test_200k_lines_with_stderr_merged_keep_their_order(superd_factory, tmp_path):
    prog = script(tmp_path, "alternate.py", ALTERNATING)
    d = superd_factory(program("alt", [prog, N], stderr="stdout"))
    d.wait_state("alt", "exited", 40)
    assert numbers(tmp_path / "logs" / "alt-stdout.log") == list(range(N))
    assert not (tmp_path / "logs" / "alt-stderr.log").exists()


def test_stdout_and_stderr_to_their_own_files(superd_factory, tmp_path):
    prog = script(tmp_path, "alternate.py", ALTERNATING)
    err = tmp_path / "explicit" / "err.log"
    err.parent.mkdir()
    d = superd_factory(program("alt", [prog, 1000], stderr=str(err)))
    d.wait_state("alt", "exited", 20)
    assert numbers(tmp_path / "logs" / "alt-stdout.log") == list(range(0, 1000, 2))
    assert numbers(err) == list(range(1, 1000, 2))


def test_partial_last_line_is_kept(superd_factory, tmp_path):
    d = superd_factory(program("partial", ["sh", "-c", "printf 'first\\nno newline at the end'"]))
    d.wait_state("partial", "exited", 10)
    assert (tmp_path / "logs" / "partial-stdout.log").read_text() == "first\nno newline at the end\n"


def test_last_lines_before_a_crash_are_there_when_the_state_says_exited(superd_factory, tmp_path):
    prog = script(tmp_path, "crash.py", """
        import os, signal
        os.write(1, b"x" * 2000 + b"\\n")
        for i in range(3000):
            os.write(1, b"%06d " % i + b"y" * 500 + b"\\n")  # about 1.5 MB in the pipe
        os.write(2, b"last words\\n")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    d = superd_factory(program("crash", [prog]))
    info = d.wait_state("crash", "exited", 20)
    # Read right when the state is observed: the lines must already be there.
    err = (tmp_path / "logs" / "crash-stderr.log").read_text()
    out = (tmp_path / "logs" / "crash-stdout.log").read_text().splitlines()
    assert err == "last words\n"
    assert len(out) == 3001 and out[-1].startswith("002999 ")
    assert info["exitstatus"] == -signal.SIGKILL


def test_an_exit_is_handed_over_at_once(superd_factory, tmp_path):
    prog = script(tmp_path, "quick.py", """
        import os, sys, time
        time.sleep(0.3)
        print("bye", flush=True)
        open(sys.argv[1], "w").write(repr(time.time()))
        os._exit(3)
    """)
    stamp = tmp_path / "exited_at"
    d = superd_factory(program("quick", [prog, stamp]), daemon='log_level = "debug"')
    info = d.wait_state("quick", "exited", 10)
    # Its pipes were at EOF: the exit went on then, not at the end of the grace
    # that a descendant holding them open would get (EXIT_GRACE)...
    assert "quick: a descendant still holds its output open" not in d.log()
    # ...and the wall clock agrees, with room for a loaded machine.
    lag = info["since"] - float(stamp.read_text())
    assert lag < 1.0, f"the exit took {lag:.3f}s to reach the state machine"


def test_a_grandchild_holding_the_pipe_does_not_hold_the_exit(superd_factory, tmp_path):
    prog = script(tmp_path, "leaver.py", """
        import os, subprocess, sys, time
        # The grandchild inherits stdout and writes one more line later: when
        # it is told to stop (superd stops what a program leaves behind), or
        # after 30 s, far beyond this test's deadlines.
        ready = sys.argv[1] + ".ready"
        subprocess.Popen(["sh", "-c", 'trap "echo late line; exit 0" TERM; touch "$1"; sleep 30 & wait; echo late line',
                          "sh", ready])
        while not os.path.exists(ready):
            time.sleep(0.001)
        print("parent done", flush=True)
        open(sys.argv[1], "w").write(repr(time.time()))
        os._exit(0)
    """)
    stamp = tmp_path / "exited_at"
    d = superd_factory(program("leaver", [prog, stamp]), daemon='log_level = "debug"')
    info = d.wait_state("leaver", "exited", 10)
    # The exit went on while the grandchild still held the pipe (it would for
    # 30 s): superd did not wait for the pipe's EOF.
    assert "leaver: a descendant still holds its output open; going on without waiting" in d.log()
    lag = info["since"] - float(stamp.read_text())
    assert lag < 5.0, f"the exit waited {lag:.3f}s for a pipe a grandchild holds"
    log = tmp_path / "logs" / "leaver-stdout.log"
    assert "parent done\n" in log.read_text()
    # The pipe is still read: the grandchild's line arrives after the exit was handed over.
    wait_until(lambda: "late line" in log.read_text(), 10, what="the grandchild's line")


# --------------------------------------------------------------------------
# Console


def test_console_lines_are_prefixed_aligned_and_never_mixed(superd_factory, tmp_path):
    prog = script(tmp_path, "chatty.py", """
        import os, random, sys
        name, n = sys.argv[1], int(sys.argv[2])
        rnd = random.Random(name)
        for i in range(n):
            line = f"{name} {i:05d} " + "x" * rnd.randrange(0, 300) + "\\n"
            cut = rnd.randrange(1, len(line))
            os.write(1, line[:cut].encode())  # lines arrive in pieces
            os.write(1, line[cut:].encode())
        os.write(1, f"{name} end-without-newline".encode())
    """)
    names = ["a", "bb", "web_0", "worker_long", "z"]
    count = 4000
    config = "".join(program(n, [prog, n, count], stdout="console") for n in names)
    d = superd_factory(config)
    for n in names:
        d.wait_state(n, "exited", 30)
    width = max(map(len, names))
    seen: dict[str, list[str]] = {n: [] for n in names}
    pattern = re.compile(r"^(\S+) *\| (\S+) (\d{5}) x*$|^(\S+) *\| (\S+) end-without-newline$")
    for line in d.output().splitlines():
        match = pattern.match(line)
        assert match, f"mixed or unprefixed line: {line[:120]!r}"
        assert line.index("|") == width + 1, f"prefix not aligned: {line[:40]!r}"
        prefix, name = (match[1], match[2]) if match[1] else (match[4], match[5])
        assert prefix == name, f"line of {name} prefixed {prefix}"
        seen[name].append(match[3] or "end")
    for n in names:
        assert seen[n] == [f"{i:05d}" for i in range(count)] + ["end"], n
    assert "\x1b[" not in d.output(), "no colours when stdout is not a terminal"


def test_console_back_pressure_slows_the_program_not_superd(tmp_path):
    """superd's stdout is a pipe nobody reads: the program blocks, superd stays responsive and small."""
    prog = script(tmp_path, "flood.py", """
        import sys
        i = 0
        while True:
            sys.stdout.write(f"{i:09d} " + "z" * 100 + "\\n")
            i += 1
    """)
    sock = tmp_path / "superd.sock"
    config = tmp_path / "superd.toml"
    config.write_text(f'[superd]\nsocket = "{sock}"\nlogs_dir = "{tmp_path}/logs"\nrun_dir = "{tmp_path}/run"\n'
                      + program("flood", [prog], stdout="console"))
    err = open(tmp_path / "superd.stderr", "wb")
    proc = subprocess.Popen([PYTHON, "-m", "supervisor", "-c", str(config)], stdout=subprocess.PIPE,
                            stderr=err, stdin=subprocess.DEVNULL)
    try:
        from supervisor.client import Client

        def answering():
            try:
                with Client(str(sock), timeout=2) as c:
                    return c.call("status")[0]["state"] == "running"
            except Exception:
                return False

        wait_until(answering, 15, what="superd to answer")
        superd = psutil.Process(proc.pid)
        flood = wait_until(lambda: superd.children(), 10)[0]
        # The program fills its pipe and superd's stdout pipe, then blocks.
        wait_until(lambda: flood.cpu_percent(0.2) < 20, 15, what="the program to be blocked by its full pipe")
        rss = superd.memory_info().rss
        began = time.monotonic()
        assert answering(), "superd must answer while its stdout is full"
        assert time.monotonic() - began < 1.0
        time.sleep(0.5)  # nothing to synchronise on: superd must simply not grow meanwhile
        assert superd.memory_info().rss < rss + (8 << 20)
        # Reading superd's stdout lets everything flow again, in whole lines.
        lines = [proc.stdout.readline() for _ in range(20000)]
        prefix = b"flood | "
        assert all(line.startswith(prefix) and len(line) == len(prefix) + 111 for line in lines)
    finally:
        kill_tree(proc.pid)
        proc.wait(5)
        err.close()


# --------------------------------------------------------------------------
# Rotation and reopening


def test_rotation_keeps_at_most_backups_plus_one_files_and_the_newest_lines_live(superd_factory, tmp_path):
    prog = script(tmp_path, "big.py", """
        import sys
        out = open(1, "wb", buffering=1 << 16, closefd=False)
        for i in range(60000):
            out.write(b"%06d " % i + b"r" * 93 + b"\\n")  # 100 bytes a line: 6 MB
        out.flush()
    """)
    d = superd_factory(program("big", [prog], stdout_maxbytes="1MB", stdout_backups=3))
    d.wait_state("big", "exited", 30)
    logs = tmp_path / "logs"
    files = sorted(p.name for p in logs.iterdir() if p.name.startswith("big-stdout"))
    assert files == ["big-stdout.log", "big-stdout.log.1", "big-stdout.log.2", "big-stdout.log.3"]
    ordered = [logs / "big-stdout.log.3", logs / "big-stdout.log.2", logs / "big-stdout.log.1", logs / "big-stdout.log"]
    for path in ordered:
        assert path.stat().st_size <= 1 << 20, f"{path.name} is {path.stat().st_size} bytes"
    lines = [line for path in ordered for line in path.read_bytes().splitlines()]
    assert all(len(line) == 100 for line in lines), "a line was cut by the rotation"
    got = [int(line[:6]) for line in lines]
    assert got == list(range(got[0], 60000)), "the kept lines are not the newest, contiguous ones"
    assert len(got) > 30000  # four files of about 1 MB each
    assert int((logs / "big-stdout.log").read_bytes().splitlines()[-1][:6]) == 59999


def test_usr2_reopens_files_renamed_by_logrotate(superd_factory, tmp_path):
    prog = script(tmp_path, "ticker.py", """
        import os, time
        i = 0
        while True:
            os.write(1, b"%d\\n" % i)
            i += 1
            time.sleep(0.005)
    """)
    d = superd_factory(program("ticker", [prog], autorestart=True))
    log = tmp_path / "logs" / "ticker-stdout.log"
    wait_until(lambda: log.exists() and log.stat().st_size > 50, 10)
    rotated = log.with_name("ticker-stdout.log.1")
    log.rename(rotated)  # what logrotate does before its postrotate script
    d.signal(signal.SIGUSR2)
    wait_until(lambda: log.exists() and len(log.read_text().splitlines()) > 5, 3, what="a new log file")
    old, new = numbers(rotated), numbers(log)
    assert old + new == list(range(len(old) + len(new))), "lines lost or repeated across the reopen"
    assert "SIGUSR2: reopening log files" in d.log()
    assert "reopened 2 log files" in d.log()  # its stdout and stderr


# --------------------------------------------------------------------------
# Failures


def test_unwritable_log_paths_cost_nothing_but_the_output(superd_factory, tmp_path):
    prog = script(tmp_path, "steady.py", """
        import os, time
        i = 0
        while True:
            os.write(1, b"%d\\n" % i)
            i += 1
            time.sleep(0.02)
    """)
    missing = tmp_path / "missing" / "out.log"
    d = superd_factory(program("nodir", [prog], stdout=str(missing))
                       + program("full", [prog], stdout="/dev/full"))
    first = d.status()
    assert first["nodir"]["state"] == first["full"]["state"] == "running"
    wait_until(lambda: "cannot open" in d.log() and "cannot write /dev/full" in d.log(), 10,
               what="both failures to be logged")
    missing.parent.mkdir()  # the folder comes back: the file is retried and written
    wait_until(lambda: missing.exists() and missing.stat().st_size > 0, 10, what="the retry to succeed")
    wait_until(lambda: f"writing {missing} again" in d.log(), 5)
    # /dev/full has been retried meanwhile (every 5 s) and failed again, quietly.
    text = d.log()
    assert text.count(f"cannot open {missing}") == 1, text
    assert text.count("cannot write /dev/full") == 1, text
    later = d.status()
    for name in ("nodir", "full"):
        assert later[name]["state"] == "running" and later[name]["pid"] == first[name]["pid"]
    assert d.proc.poll() is None


# --------------------------------------------------------------------------
# tail


def test_tail_n_from_files_rings_and_merged_streams(superd_factory, tmp_path):
    prog = script(tmp_path, "both.py", """
        import os, time
        for i in range(100):
            os.write(1, b"out %d\\n" % i)
            os.write(2, b"err %d\\n" % i)
        time.sleep(60)
    """)
    d = superd_factory(program("filed", [prog], autorestart=True)
                       + program("ringed", [prog], stdout="null", stderr="console", autorestart=True)
                       + program("merged", [prog], stderr="stdout", autorestart=True)
                       + program("pool", ["sleep", "60"], numprocs=2))
    for name in ("filed", "ringed"):
        wait_until(lambda: ctl(d, "tail", "-n", "1", name, "stderr").stdout == "err 99\n", 10)
    wait_until(lambda: ctl(d, "tail", "-n", "1", "merged").stdout == "err 99\n", 10)
    assert ctl(d, "tail", "-n", "3", "filed").stdout == "out 97\nout 98\nout 99\n"
    assert ctl(d, "tail", "filed", "stderr").stdout.splitlines() == [f"err {i}" for i in range(90, 100)]
    null = ctl(d, "tail", "-n", "2", "ringed")
    assert null.returncode != 0 and 'not captured: it goes to /dev/null (stdout = "null")' in null.stderr
    assert ctl(d, "tail", "-n", "4", "merged", "stderr").stdout == "out 98\nerr 98\nout 99\nerr 99\n"
    assert ctl(d, "tail", "nosuch").returncode == 4
    group = ctl(d, "tail", "pool")
    assert group.returncode == 2 and "pool_0" in group.stderr


def test_tail_follow_streams_new_lines_until_the_client_goes(superd_factory, tmp_path):
    prog = script(tmp_path, "ticker.py", """
        import os, time
        i = 0
        while True:
            os.write(1, b"tick %d\\n" % i)
            i += 1
            time.sleep(0.05)
    """)
    d = superd_factory(program("ticker", [prog], autorestart=True), daemon='log_level = "debug"')
    log = tmp_path / "logs" / "ticker-stdout.log"
    wait_until(lambda: log.exists() and log.stat().st_size > 30, 10)
    follower = subprocess.Popen([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), "tail", "-f", "-n", "2", "ticker"],
                                stdout=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout], daemon=True).start()
    try:
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 25 and time.monotonic() < deadline:
            try:
                got.append(lines.get(timeout=max(0.01, deadline - time.monotonic())).rstrip("\n"))
            except queue.Empty:
                break
        assert len(got) == 25, got
        ticks = [int(line.split()[1]) for line in got]
        assert ticks == list(range(ticks[0], ticks[0] + 25)), "lines missing or repeated in tail -f"
    finally:
        follower.terminate()
        follower.wait(5)
    # The follow ends with its client: nothing keeps running for it.
    wait_until(lambda: "tail -f of ticker stdout ended" in d.log(), 10, what="the follow to end")


# --------------------------------------------------------------------------
# superd's own log


def test_json_log_is_one_object_a_line(superd_factory, tmp_path):
    d = superd_factory(program("oops", ["sh", "-c", "echo to-the-file; sleep 0.2; exit 3"]),
                       daemon='log_format = "json"')
    d.wait_state("oops", "exited", 10)
    d.call("shutdown")
    d.wait_exit(10)
    entries = [json.loads(line) for line in d.log().splitlines()]
    assert entries and all({"time", "level", "message"} <= set(e) for e in entries)
    assert any(e["message"] == "oops: running -> exited: exited with code 3, unexpected" and e["level"] == "warning"
               for e in entries), entries




def test_a_fifo_nobody_reads_does_not_hang_superd(superd_factory, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    d = superd_factory(f'[program.talker]\ncommand = ["sh", "-c", "while true; do echo x; sleep 0.1; done"]\nstdout = "{fifo}"\nstartsecs = 0\n')
    assert d.state_of("talker") == "running"
    wait_until(lambda: "cannot open" in d.log(), 5, what="the open failure to be reported")
    assert d.call("state")["state"] == "running"
