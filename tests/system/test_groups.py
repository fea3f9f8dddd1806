"""``[group.NAME]``, ``process_name`` and ``numprocs_start`` in a real superd:
superctl's names (``web:*``, ``web:``, ``group:web``, ``web:gunicorn``), status
and its JSON, the events, the environment a process gets, a reload that moves
a program to another group without restarting it, and XML-RPC's group methods.

How names resolve and configs are checked is in tests/unit/test_groups.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import xmlrpc.client

import pytest

from tests.conftest import PYTHON, pid_alive, wait_until

pytestmark = pytest.mark.timeout(90)

GROUPED = """
[group.web]
programs = ["gunicorn", "nginx"]

[program.gunicorn]
command = ["sh", "-c", "echo group=$SUPERD_GROUP/$SUPERVISOR_GROUP_NAME name=$SUPERVISOR_PROCESS_NAME; exec sleep 300"]
startsecs = 0

[program.nginx]
command = ["sleep", "300"]
startsecs = 0

[program.worker]
command = ["sh", "-c", "echo I am $SUPERD_PROCESS_NAME number $SUPERD_PROCESS_NUM; exec sleep 300"]
numprocs = 2
numprocs_start = 1
process_name = "worker-%(process_num)02d"
startsecs = 0
"""


def superctl(d, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERD_SOCKET", "SUPERD_CONFIG")}
    return subprocess.run([PYTHON, "-m", "supervisor.cli.superctl", "-s", str(d.socket), *args],
                          capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)


def running(d, *names: str) -> dict[str, int]:
    """Wait until every named process runs; their pids."""
    def all_running():
        status = d.status()
        return all(status[n]["state"] == "running" for n in names) and {n: status[n]["pid"] for n in names}
    return wait_until(all_running, 15, what=f"{', '.join(names)} running")  # type: ignore[return-value]


def states(d) -> dict[str, str]:
    return {name: info["state"] for name, info in d.status().items()}


def rewrite(d, programs: str) -> None:
    path = d.dir / "superd.toml"
    header = path.read_text().split("[group.", 1)[0].split("[program.", 1)[0]
    path.write_text(header + programs)


def test_superctl_names_a_group_as_supervisorctl_does(graceful_superd):
    d = graceful_superd(GROUPED)
    pids = running(d, "gunicorn", "nginx", "worker-01", "worker-02")

    status = superctl(d, "status", "web:*")
    assert status.returncode == 0, status.stderr
    lines = [line.split()[:2] for line in status.stdout.splitlines()]
    assert lines == [["web:gunicorn", "RUNNING"], ["web:nginx", "RUNNING"]]
    everything = superctl(d, "status").stdout.splitlines()
    assert [line.split()[0] for line in everything] == ["web:gunicorn", "web:nginx", "worker-01", "worker-02"]
    listed = json.loads(superctl(d, "status", "--json").stdout)
    assert [(p["name"], p["group"], p["program"]) for p in listed] == [
        ("gunicorn", "web", "gunicorn"), ("nginx", "web", "nginx"),
        ("worker-01", "worker", "worker"), ("worker-02", "worker", "worker")]

    # what the shell completes: processes, programs, groups
    assert d.call("names") == ["gunicorn", "nginx", "worker-01", "worker-02", "worker", "web", "web:*", "worker:*"]

    # supervisorctl's "web:" and the SPEC's "group:web" are the whole group too
    assert superctl(d, "stop", "web:").returncode == 0
    assert states(d) == {"gunicorn": "stopped", "nginx": "stopped", "worker-01": "running", "worker-02": "running"}
    assert superctl(d, "start", "web:*").returncode == 0
    assert states(d)["gunicorn"] == states(d)["nginx"] == "running"
    assert superctl(d, "stop", "group:web").returncode == 0
    assert states(d)["gunicorn"] == states(d)["nginx"] == "stopped"
    assert superctl(d, "start", "web").returncode == 0
    assert states(d)["gunicorn"] == states(d)["nginx"] == "running"

    # one process by supervisord's namespec, a program by its name
    before = {name: info["pid"] for name, info in d.status().items()}
    assert superctl(d, "restart", "web:nginx").returncode == 0
    after = {name: info["pid"] for name, info in d.status().items()}
    assert after["nginx"] != before["nginx"] and after["gunicorn"] == before["gunicorn"]
    assert superctl(d, "stop", "worker").returncode == 0
    assert states(d)["worker-01"] == states(d)["worker-02"] == "stopped"
    assert superctl(d, "start", "worker:worker-02").returncode == 0
    assert states(d)["worker-02"] == "running" and states(d)["worker-01"] == "stopped"
    assert pids["worker-01"] and not pid_alive(pids["worker-01"])

    # names that mean nothing: exit 4, superd goes on
    for name in ("web:nope", "web:worker-01", "nope:*", "group:nope"):
        result = superctl(d, "stop", name)
        assert (result.returncode, result.stderr) == (4, f"superctl: no such process: {name}\n")
    assert d.call("state")["state"] == "running"


def test_processes_get_their_group_and_events_carry_it(graceful_superd):
    d = graceful_superd(GROUPED)
    running(d, "gunicorn", "worker-01", "worker-02")
    wait_until(lambda: "group=" in superctl(d, "tail", "gunicorn").stdout, what="gunicorn's line")
    assert superctl(d, "tail", "gunicorn").stdout.strip() == "group=web/web name=gunicorn"
    wait_until(lambda: "I am" in superctl(d, "tail", "worker-02").stdout, what="worker-02's line")
    assert superctl(d, "tail", "worker-02").stdout.strip() == "I am worker-02 number 2"

    assert superctl(d, "restart", "web:gunicorn").returncode == 0
    events = [json.loads(line) for line in superctl(d, "events", "--json", "web:*").stdout.splitlines()]
    process_events = [e for e in events if e["type"] == "process"]
    assert {e["name"] for e in process_events} == {"gunicorn", "nginx"}
    assert {e["group"] for e in process_events} == {"web"}
    assert ("running", "stopping") in [(e["from_state"], e["to_state"]) for e in process_events
                                       if e["name"] == "gunicorn"]


def test_a_reload_moves_a_program_between_groups_without_restarting_it(graceful_superd):
    d = graceful_superd(GROUPED)
    before = running(d, "gunicorn", "nginx", "worker-01", "worker-02")
    rewrite(d, GROUPED.replace('programs = ["gunicorn", "nginx"]', 'programs = ["gunicorn"]')
            + '\n[group.batch]\nprograms = ["worker", "nginx"]\n')
    result = superctl(d, "reload")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "nginx: regrouped", "worker-01: regrouped", "worker-02: regrouped"]
    after = d.status()
    assert {name: info["pid"] for name, info in after.items()} == before   # nothing restarted
    assert {name: info["group"] for name, info in after.items()} == {
        "gunicorn": "web", "nginx": "batch", "worker-01": "batch", "worker-02": "batch"}
    assert "regrouped nginx (web -> batch)" in d.log()
    # the names follow at once
    assert superctl(d, "stop", "batch:*").returncode == 0
    assert states(d) == {"gunicorn": "running", "nginx": "stopped", "worker-01": "stopped", "worker-02": "stopped"}
    assert superctl(d, "status", "web:nginx").returncode == 4
    reload_events = [json.loads(line) for line in superctl(d, "events", "--json").stdout.splitlines()
                     if '"reload"' in line]
    assert reload_events[-1]["regrouped"] == ["nginx", "worker-01", "worker-02"]


def test_a_bad_group_is_refused_at_start_and_at_reload(graceful_superd, superd_factory):
    d = superd_factory('[group.web]\nprograms = ["gunicron"]\n[program.gunicorn]\ncommand = "sleep 300"\n',
                       ready=False)
    assert d.wait_exit(30) == 2
    assert 'group.web.programs[0]: no program named "gunicron" (did you mean "gunicorn"?)' in d.log()

    d = graceful_superd(GROUPED, name="ok.toml")
    before = running(d, "gunicorn", "nginx")
    (d.dir / "ok.toml").write_text((d.dir / "ok.toml").read_text() + '\n[group.batch]\nprograms = ["nginx"]\n')
    result = superctl(d, "reload")
    assert result.returncode == 1
    assert 'group.batch.programs[0]: "nginx" is in group "web" already: a program belongs to one group' in \
        result.stderr
    assert {n: i["pid"] for n, i in d.status().items() if n in before} == before
    assert d.status("web:*").keys() == {"gunicorn", "nginx"}


def test_xmlrpc_follows_the_group(graceful_superd):
    from tests.system.test_http import PASSWORD, USER, free_port

    port = free_port()
    d = graceful_superd(GROUPED + f'\n[http]\nlisten = "127.0.0.1:{port}"\nusername = "{USER}"\n'
                                  f'password = "{PASSWORD}"\n')
    running(d, "gunicorn", "nginx")
    rpc = xmlrpc.client.ServerProxy(f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/RPC2").supervisor
    info = rpc.getProcessInfo("web:gunicorn")
    assert (info["name"], info["group"], info["statename"]) == ("gunicorn", "web", "RUNNING")
    assert {(p["group"], p["name"]) for p in rpc.getAllProcessInfo()} == {
        ("web", "gunicorn"), ("web", "nginx"), ("worker", "worker-01"), ("worker", "worker-02")}
    stopped = rpc.stopProcessGroup("web")
    assert [(r["group"], r["name"], r["description"]) for r in stopped] == [
        ("web", "gunicorn", "OK"), ("web", "nginx", "OK")]
    assert rpc.startProcess("web:", True) == [
        {"name": "gunicorn", "group": "web", "status": 80, "description": "OK"},
        {"name": "nginx", "group": "web", "status": 80, "description": "OK"}]
    assert [r["name"] for r in rpc.startProcessGroup("web")] == []   # all running already
    assert rpc.stopProcess("worker:worker-02") is True
    with pytest.raises(xmlrpc.client.Fault) as fault:
        rpc.getProcessInfo("worker:gunicorn")
    assert fault.value.faultString == "BAD_NAME: worker:gunicorn"
    assert d.call("state")["state"] == "running"


def test_xmlrpc_config_info_reports_the_groups_priority(graceful_superd):
    """getAllConfigInfo's group_prio is the group's priority, as supervisord's:
    a [group.NAME]'s (supervisord's 999 when it sets none), the program's own
    for a program in no group (its group is the program itself)."""
    from tests.system.test_http import PASSWORD, USER, free_port

    port = free_port()
    programs = """
[group.web]
programs = ["gunicorn", "nginx"]
priority = 100

[group.batch]
programs = ["cron"]

[program.gunicorn]
command = ["sleep", "300"]
startsecs = 0
priority = 5

[program.nginx]
command = ["sleep", "300"]
startsecs = 0

[program.cron]
command = ["sleep", "300"]
startsecs = 0
priority = 7

[program.worker]
command = ["sleep", "300"]
startsecs = 0
priority = 300
"""
    d = graceful_superd(programs + f'\n[http]\nlisten = "127.0.0.1:{port}"\nusername = "{USER}"\n'
                                   f'password = "{PASSWORD}"\n')
    running(d, "gunicorn", "nginx", "cron", "worker")
    # on disk only (not reloaded): a program of group web with its own priority
    path = d.dir / "superd.toml"
    path.write_text(path.read_text().replace('programs = ["gunicorn", "nginx"]',
                                             'programs = ["gunicorn", "nginx", "late"]')
                    + '\n[program.late]\ncommand = ["sleep", "300"]\npriority = 1\nautostart = false\n'
                    + '\n[group.jobs]\nprograms = ["nightly"]\npriority = 50\n'
                    + '\n[program.nightly]\ncommand = ["sleep", "300"]\npriority = 2\n')
    rpc = xmlrpc.client.ServerProxy(f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/RPC2").supervisor
    infos = {i["name"]: (i["group"], i["inuse"], i["group_prio"], i["process_prio"])
             for i in rpc.getAllConfigInfo()}
    assert infos == {
        "gunicorn": ("web", True, 100, 5),      # its own priority is not its group's
        "nginx": ("web", True, 100, 100),       # it takes its group's
        "cron": ("batch", True, 999, 7),        # a group without one: supervisord's default
        "worker": ("worker", True, 300, 300),   # in no group: the program is its group
        "late": ("web", False, 100, 1),         # what a reload would add
        "nightly": ("jobs", False, 50, 2),      # in a group only the file on disk has
    }
