"""Config reload: SIGHUP and `superctl reload` apply the difference, and only the difference.

How the difference is found (config.diff) is in tests/unit/test_config_diff.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import pid_alive, wait_until

pytestmark = pytest.mark.timeout(60)

BASE = """
[program.keep]
command = "sleep 1000"
startsecs = 0
[program.change]
command = "sleep 1000"
startsecs = 0
[program.drop]
command = "sleep 1000"
startsecs = 0
"""


def rewrite(d, tmp_path, programs: str) -> None:
    path = tmp_path / "superd.toml"
    header = path.read_text().split("[program.", 1)[0]
    path.write_text(header + textwrap.dedent(programs))


def superctl(d, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args], capture_output=True, text=True, timeout=30
    )


def test_reload_applies_only_the_difference(superd_factory, tmp_path):
    d = superd_factory(BASE)
    before = {name: info["pid"] for name, info in d.status().items()}
    assert all(before.values())
    rewrite(
        d,
        tmp_path,
        BASE.replace('[program.drop]\ncommand = "sleep 1000"\nstartsecs = 0\n', "").replace(
            '[program.change]\ncommand = "sleep 1000"', '[program.change]\ncommand = "sleep 2000"'
        )
        + '[program.added]\ncommand = "sleep 1000"\nstartsecs = 0\n',
    )
    result = superctl(d, "reload")
    assert result.returncode == 0, result.stderr
    after = d.status()
    assert set(after) == {"keep", "change", "added"}
    assert after["keep"]["pid"] == before["keep"], "an untouched program keeps running"
    assert after["change"]["pid"] != before["change"] and after["change"]["state"] == "running"
    assert after["added"]["state"] == "running"
    assert not pid_alive(before["drop"]) and not pid_alive(before["change"])


def test_reload_without_change_restarts_nothing(superd_factory, tmp_path):
    d = superd_factory(BASE)
    before = {name: info["pid"] for name, info in d.status().items()}
    result = d.call("reload")
    assert result == {"added": [], "removed": [], "changed": [],
                      "groups": {"added": [], "changed": [], "removed": []}}
    assert {name: info["pid"] for name, info in d.status().items()} == before


def test_settings_of_superd_s_own_start_wait_for_its_next_start_and_say_so(superd_factory, tmp_path):
    d = superd_factory(BASE, daemon='cgroups = "auto"\n')
    before = {name: info["pid"] for name, info in d.status().items()}
    path = tmp_path / "superd.toml"
    path.write_text(path.read_text().replace('cgroups = "auto"', 'cgroups = "off"'))
    assert d.call("reload")
    assert "reload: cgroups take effect when superd starts again" in d.log()
    assert {name: info["pid"] for name, info in d.status().items()} == before


def test_invalid_config_changes_nothing_and_superd_keeps_running(superd_factory, tmp_path):
    d = superd_factory(BASE)
    before = {name: info["pid"] for name, info in d.status().items()}
    rewrite(d, tmp_path, BASE + '[program.broken]\ncommand = "x"\nstopwaitsecs = "soon"\n')
    result = superctl(d, "reload")
    assert result.returncode == 1
    assert "program.broken.stopwaitsecs" in result.stderr
    assert {name: info["pid"] for name, info in d.status().items()} == before
    assert d.call("state")["state"] == "running"
    assert "reload refused" in d.log()


def test_sighup_reloads(superd_factory, tmp_path):
    d = superd_factory(BASE)
    rewrite(d, tmp_path, BASE + '[program.late]\ncommand = "sleep 1000"\nstartsecs = 0\n')
    d.signal(signal.SIGHUP)
    wait_until(lambda: d.status().get("late", {}).get("state") == "running", 10)
    assert d.call("state")["state"] == "running"


def test_removed_program_stops_with_its_own_stop_settings(superd_factory, tmp_path):
    notes = tmp_path / "notes"
    prog = tmp_path / "prog_graceful.sh"
    prog.write_text(f"#!/bin/sh\ntrap 'echo got-usr1 >> {notes}; exit 0' USR1\necho up >> {notes}\n"
                    "while true; do sleep 0.05; done\n")
    prog.chmod(0o755)
    d = superd_factory(f'[program.graceful]\ncommand = "{prog}"\nstopsignal = "USR1"\nstartsecs = 0\n')
    # startsecs = 0: running at the spawn, before the shell has set its trap
    wait_until(lambda: notes.exists() and "up" in notes.read_text(), 10)
    rewrite(d, tmp_path, '[program.other]\ncommand = "sleep 1000"\nstartsecs = 0\n')
    assert d.call("reload")["removed"] == ["graceful"]
    assert notes.read_text().split() == ["up", "got-usr1"]


def test_shutdown_during_a_reload_stays_graceful(superd_factory, tmp_path):
    # "slow" takes a while to stop, so the reload is still waiting for it when
    # the shutdown begins; the shutdown must not trip over the reload.
    slow = tmp_path / "prog_slow.sh"
    slow.write_text("#!/bin/sh\ntrap 'sleep 1; exit 0' TERM\nwhile true; do sleep 0.05; done\n")
    slow.chmod(0o755)
    d = superd_factory(
        f'[program.slow]\ncommand = "{slow}"\nstartsecs = 0\npriority = 999\n'
        '[program.gone]\ncommand = "sleep 1000"\nstartsecs = 0\npriority = 1\n'
        '[program.stays]\ncommand = "sleep 1000"\nstartsecs = 0\npriority = 1\n'
    )
    rewrite(
        d,
        tmp_path,
        f'[program.slow]\ncommand = "{slow}"\nstartsecs = 0\npriority = 999\nstopwaitsecs = 9\n'
        '[program.stays]\ncommand = "sleep 1000"\nstartsecs = 0\npriority = 1\n',
    )
    d.signal(signal.SIGHUP)
    wait_until(lambda: "reload: added" in d.log(), 5)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(20) == 0
    assert "shutdown failed" not in d.log()
