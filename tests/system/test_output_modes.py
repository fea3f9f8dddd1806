"""log_timestamps on file and console lines; stdout/stderr = "inherit" passing
lines through byte for byte, and tail saying they are not captured."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import PYTHON, script, wait_until

pytestmark = pytest.mark.timeout(60)

STAMP = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) "


def test_timestamps_on_file_and_console_lines(graceful_superd, tmp_path):
    talk = script(tmp_path, "talk", """
        import sys, time
        print("one"); print("two", flush=True)
        sys.stderr.write("err line\\n"); sys.stderr.flush()
        time.sleep(3600)
    """)
    d = graceful_superd(f"""
        [program.filed]
        command = "{talk}"
        [program.shown]
        command = "{talk}"
        stdout = "console"
        stderr = "console"
        [program.plain]
        command = "{talk}"
        log_timestamps = false
    """, daemon="log_timestamps = true\n")
    logs = tmp_path / "logs"
    wait_until(lambda: (logs / "filed-stdout.log").exists() and b"two" in (logs / "filed-stdout.log").read_bytes(),
               what="filed's lines")
    data = (logs / "filed-stdout.log").read_bytes()
    assert re.fullmatch(STAMP + b"one\n" + STAMP + b"two\n", data), data
    wait_until(lambda: b"err line" in (logs / "filed-stderr.log").read_bytes(), what="stderr line")
    assert re.fullmatch(STAMP + b"err line\n", (logs / "filed-stderr.log").read_bytes())
    wait_until(lambda: "two" in d.output() and "err line" in d.log(), what="console lines")
    assert re.search(rb"shown \| " + STAMP + b"one\n", d.stdout_path.read_bytes())
    assert re.search(rb"shown \| " + STAMP + b"err line\n", d.stderr_path.read_bytes())
    wait_until(lambda: b"two" in (logs / "plain-stdout.log").read_bytes(), what="plain's lines")
    assert (logs / "plain-stdout.log").read_bytes() == b"one\ntwo\n"


def test_inherit_passes_json_through_byte_for_byte(graceful_superd, tmp_path):
    payload = '{"level":"info","msg":"caf\\u00e9 \\u2603","n":1}\n{"partial":'
    js = script(tmp_path, "json", f"""
        import sys, time
        sys.stdout.write({payload!r}); sys.stdout.flush()
        sys.stderr.write("to stderr\\n"); sys.stderr.flush()
        time.sleep(3600)
    """)
    d = graceful_superd(f"""
        [program.js]
        command = "{js}"
        stdout = "inherit"
        stderr = "inherit"
        log_timestamps = true
    """)
    wait_until(lambda: payload.encode() in d.stdout_path.read_bytes(), what="the JSON on superd's stdout")
    assert d.stdout_path.read_bytes() == payload.encode()
    wait_until(lambda: "to stderr\n" in d.log(), what="stderr")
    assert "js |" not in d.log()
    assert not (tmp_path / "logs" / "js-stdout.log").exists()
    out = subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), "tail", "js"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "not captured" in out.stderr
