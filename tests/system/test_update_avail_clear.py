"""``superctl update`` (apply the config, reported by group as supervisorctl
does), ``avail`` (what is configured, in use or not yet) and ``clear`` (empty
a process's logs and what ``tail`` keeps)."""

from __future__ import annotations

import pytest

from supervisor.client import ActionFailed, InvalidConfig, NoSuchName
from tests.conftest import wait_until
from tests.system.test_reload import rewrite, superctl

pytestmark = pytest.mark.timeout(90)

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

EDITED = """
[program.keep]
command = "sleep 1000"
startsecs = 0
[program.change]
command = "sleep 2000"
startsecs = 0
[program.pool]
command = "sleep 1000"
numprocs = 2
autostart = false
startsecs = 0
"""


def test_update_applies_and_reports_by_group(graceful_superd, tmp_path):
    d = graceful_superd(BASE)
    keep = d.status("keep")["keep"]["pid"]
    quiet = superctl(d, "update")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")  # nothing changed: nothing said

    rewrite(d, tmp_path, EDITED)
    listed = superctl(d, "avail")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split()[1:] for line in listed.stdout.splitlines()}
    assert rows == {"keep": ["in", "use", "auto", "999:999"], "change": ["in", "use", "auto", "999:999"],
                    "drop": ["in", "use", "auto", "999:999"], "pool_0": ["avail", "manual", "999:999"],
                    "pool_1": ["avail", "manual", "999:999"]}
    assert "keep" + " " * 29 + "in use    auto      999:999" in listed.stdout.splitlines()  # supervisorctl's columns

    result = superctl(d, "update")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["drop: stopped", "drop: removed process group",
                                          "change: stopped", "change: updated process group",
                                          "pool: added process group"]
    status = d.status()
    assert set(status) == {"keep", "change", "pool_0", "pool_1"}
    assert status["keep"]["pid"] == keep
    assert status["pool_0"]["state"] == "stopped"  # autostart = false
    assert all(row.split()[1] == "in" for row in superctl(d, "avail").stdout.splitlines())


def test_update_with_names_applies_only_when_nothing_else_changes(graceful_superd, tmp_path):
    d = graceful_superd(BASE)
    rewrite(d, tmp_path, BASE.replace('command = "sleep 1000"\nstartsecs = 0\n[program.drop]',
                                      'command = "sleep 2000"\nstartsecs = 0\n[program.drop]'))
    before_change = d.status("change")["change"]["pid"]
    unrelated = superctl(d, "update", "keep")
    assert (unrelated.returncode, unrelated.stdout) == (0, "")  # keep has no change: nothing applied
    assert d.status("change")["change"]["pid"] == before_change
    named = superctl(d, "update", "change")
    assert named.returncode == 0, named.stderr
    assert named.stdout.splitlines() == ["change: stopped", "change: updated process group"]

    rewrite(d, tmp_path, EDITED)  # (change is sleep 2000 already) removes drop, adds pool
    before = {n: i["pid"] for n, i in d.status().items()}
    refused = superctl(d, "update", "pool")
    assert refused.returncode == 1
    assert "also changes drop:" in refused.stderr and "without names" in refused.stderr
    assert {n: i["pid"] for n, i in d.status().items()} == before  # nothing done

    missing = superctl(d, "update", "nope")
    assert missing.returncode == 4 and "no such process: nope" in missing.stderr
    with d.client() as client:
        with pytest.raises(NoSuchName):
            client.update(["nope"])
        with pytest.raises(ActionFailed, match="also changes"):
            client.update(["pool"])
        assert client.update(["all"])["groups"] == {"added": ["pool"], "changed": [], "removed": ["drop"]}


GROUPED = """
[program.gunicorn]
command = "sleep 1000"
startsecs = 0
[program.nginx]
command = "sleep 1000"
startsecs = 0
[program.pool]
command = "sleep 1000"
numprocs = 2
startsecs = 0
[group.web]
programs = ["gunicorn", "nginx"]
"""


def test_update_names_read_as_every_command_reads_them(graceful_superd, tmp_path):
    """``group:web``, ``web:``, ``GROUP:NAME`` and an instance of a numprocs
    program, each read in the running config and the new one."""
    d = graceful_superd(GROUPED)
    pids = {n: i["pid"] for n, i in d.status().items()}
    edited = GROUPED.replace('[program.nginx]\ncommand = "sleep 1000"', '[program.nginx]\ncommand = "sleep 2000"')
    rewrite(d, tmp_path, edited)
    named = superctl(d, "update", "group:web")
    assert named.returncode == 0, named.stderr
    assert named.stdout.splitlines() == ["web: stopped", "web: updated process group"]
    status = d.status()
    assert status["nginx"]["pid"] != pids["nginx"] and status["gunicorn"]["pid"] == pids["gunicorn"]

    edited = edited.replace('[program.gunicorn]\ncommand = "sleep 1000"', '[program.gunicorn]\ncommand = "sleep 2000"')
    rewrite(d, tmp_path, edited)
    assert superctl(d, "update", "pool:pool_1").stdout == ""  # pool has no change: nothing applied
    named = superctl(d, "update", "web:")
    assert named.returncode == 0, named.stderr
    assert named.stdout.splitlines() == ["web: stopped", "web: updated process group"]
    assert d.status("gunicorn")["gunicorn"]["pid"] != pids["gunicorn"]

    edited = edited.replace("numprocs = 2", "numprocs = 3")
    rewrite(d, tmp_path, edited)
    named = superctl(d, "update", "pool_1")
    assert named.returncode == 0, named.stderr
    assert named.stdout.splitlines() == ["pool: stopped", "pool: updated process group"]
    assert set(d.status()) == {"gunicorn", "nginx", "pool_0", "pool_1", "pool_2"}

    # api only in the new config: its names are read there.
    rewrite(d, tmp_path, edited + '[program.fresh]\ncommand = "sleep 1000"\nstartsecs = 0\n'
                                  '[group.api]\nprograms = ["fresh"]\n')
    named = superctl(d, "update", "api:fresh")
    assert named.returncode == 0, named.stderr
    assert named.stdout.splitlines() == ["api: added process group"]
    assert d.status("fresh")["fresh"]["group"] == "api"

    missing = superctl(d, "update", "group:nope")
    assert missing.returncode == 4 and "no such process: group:nope" in missing.stderr
    missing = superctl(d, "update", "web:pool_1")
    assert missing.returncode == 4 and "no such process: web:pool_1" in missing.stderr


def test_update_with_an_invalid_config_changes_nothing(graceful_superd, tmp_path):
    d = graceful_superd(BASE)
    before = {n: i["pid"] for n, i in d.status().items()}
    rewrite(d, tmp_path, BASE + "[program.broken]\nstartsecs = -1\n")
    result = superctl(d, "update")
    assert result.returncode == 1
    assert "config not reloaded" in result.stderr and "program.broken" in result.stderr
    assert {n: i["pid"] for n, i in d.status().items()} == before
    listed = superctl(d, "avail")  # what is in use is still listed, with the problem
    assert listed.returncode == 1 and "cannot be read" in listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["change", "drop", "keep"]
    with d.client() as client:
        with pytest.raises(InvalidConfig):
            client.update()
    assert d.call("state")["state"] == "running"


def test_clear_empties_log_files_and_the_tail_ring(graceful_superd, tmp_path):
    d = graceful_superd("""
        [program.talk]
        command = ["sh", "-c", "echo to-file; echo to-err >&2; exec sleep 300"]
        startsecs = 0
        [program.shout]
        command = ["sh", "-c", "echo to-console; exec sleep 300"]
        stdout = "console"
        startsecs = 0
    """)
    out, err = tmp_path / "logs" / "talk-stdout.log", tmp_path / "logs" / "talk-stderr.log"
    wait_until(lambda: out.exists() and err.exists() and out.read_text() and err.read_text(), what="the logs")
    wait_until(lambda: superctl(d, "tail", "shout").stdout.strip() == "to-console", what="the console ring")

    result = superctl(d, "clear", "talk", "shout")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["talk: cleared", "shout: cleared"]
    assert out.read_text() == "" and err.read_text() == ""
    assert superctl(d, "tail", "talk").stdout == "" and superctl(d, "tail", "shout").stdout == ""

    missing = superctl(d, "clear", "nope")
    assert missing.returncode == 4 and "no such process: nope" in missing.stderr
    assert sorted(superctl(d, "clear", "all").stdout.splitlines()) == ["shout: cleared", "talk: cleared"]
    assert superctl(d, "clear").returncode == 2  # a name is required
    assert d.call("state")["state"] == "running"
