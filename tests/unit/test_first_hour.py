"""Issue #19 ("the first hour"), the parts that need no real superd: progress
reports of long starts, stops and restarts (the client, superctl and the
server's sender), and a Client that finds its socket itself.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from supervisor.cli import superctl as ctl
from supervisor.client import Client, SocketNotFound
from supervisor.control import protocol
from supervisor.control.locate import find_socket
from supervisor.control.progress import ProgressSender

from tests.fake_superd import HANDLED, RpcError, config_file

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def env(monkeypatch, sockdir):
    monkeypatch.delenv("SUPERD_SOCKET", raising=False)
    monkeypatch.delenv("SUPERD_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(sockdir))
    monkeypatch.chdir(sockdir)
    return sockdir


def superctl(*args):
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    return runner.invoke(ctl.cli, list(args), prog_name="superctl", catch_exceptions=False)


def _reporting_restart(params, conn):
    """A restart that reports its steps before answering, as superd does."""
    req_id = conn._handler.server.fake.requests[-1]["id"]
    for name in params["names"]:
        for step in ("stopping", "stopped", "starting", "running", "ready (1 of 1)"):
            conn.notify(protocol.PROGRESS, {"name": name, "step": step})
    conn.notify("tail", ["not ours"])  # another kind of notification: skipped
    conn.send({"jsonrpc": "2.0", "id": req_id, "result": [
        {"name": n, "ok": True, "state": "running", "pid": 5, "message": "started"} for n in params["names"]]})
    return HANDLED


# --------------------------------------------------------------------------
# Progress: client and superctl


def test_client_hands_progress_reports_to_its_callback(server):
    server.on("restart", _reporting_restart)
    steps = []
    with Client(server.path) as c:
        results = c.restart(["worker:0"], rolling=True, progress=steps.append, progress_after=0.5)
        assert [r["name"] for r in results] == ["worker:0"]
        assert c.version()["pid"] == 4242  # the connection is still in step
    assert server.last("restart")["params"] == {"names": ["worker:0"], "wait": True, "rolling": True,
                                                "progress": 0.5}
    assert [s["step"] for s in steps] == ["stopping", "stopped", "starting", "running", "ready (1 of 1)"]


def test_client_without_a_callback_asks_for_no_progress(server):
    with Client(server.path) as c:
        c.restart(["web"])
        c.start(["web"], wait=False, progress=print)  # nothing to report without waiting
    assert server.requests[-2]["params"] == {"names": ["web"], "wait": True}
    assert server.requests[-1]["params"] == {"names": ["web"], "wait": False}


def test_an_older_superd_refusing_progress_gets_the_request_again_without(server):
    def old_restart(params, conn):
        if "progress" in params:
            raise RpcError(protocol.INVALID_PARAMS,
                           "unknown param(s): progress; expected: names, wait, timeout, rolling")
        return [{"name": "web", "ok": True, "state": "running", "pid": 5, "message": "restarted"}]

    server.on("restart", old_restart)
    with Client(server.path) as c:
        assert c.restart("web", progress=print)[0]["message"] == "restarted"
    assert [r["params"].get("progress") for r in server.requests] == [0.0, None]


def test_superctl_prints_each_step_on_stderr(server, env):
    server.on("restart", _reporting_restart)
    r = superctl("-s", server.path, "restart", "--rolling", "worker:0")
    assert r.exit_code == 0
    assert r.stdout == "worker:0: started\n"
    assert r.stderr == ("worker:0: stopping\nworker:0: stopped\nworker:0: starting\n"
                        "worker:0: running\nworker:0: ready (1 of 1)\n")
    assert server.last("restart")["params"]["progress"] == ctl.PROGRESS_AFTER


# --------------------------------------------------------------------------
# Progress: the server's sender


class _Writer:
    def __init__(self):
        self.lines = []

    def is_closing(self):
        return False

    def write(self, data):
        self.lines += [json.loads(line) for line in data.splitlines()]


class _Proc:
    def __init__(self, name):
        self.name = name


def test_sender_holds_steps_back_until_its_delay_then_sends_them_as_they_come():
    async def scenario():
        writer = _Writer()
        sender = ProgressSender(writer, 0.05)
        sender(_Proc("a"), "stopping")
        assert writer.lines == []  # a quick request sends nothing
        deadline = asyncio.get_running_loop().time() + 5
        while not writer.lines and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        sender(_Proc("a"), "stopped")
        sender.close()
        sender(_Proc("a"), "starting")  # after the response: nothing
        return writer.lines

    lines = asyncio.run(scenario())
    assert lines == [{"jsonrpc": "2.0", "method": "progress", "params": {"name": "a", "step": "stopping"}},
                     {"jsonrpc": "2.0", "method": "progress", "params": {"name": "a", "step": "stopped"}}]


def test_sender_of_a_quick_request_sends_nothing():
    async def scenario():
        writer = _Writer()
        sender = ProgressSender(writer, 5)
        sender(_Proc("a"), "stopping")
        sender.close()
        await asyncio.sleep(0)
        return writer.lines

    assert asyncio.run(scenario()) == []


# --------------------------------------------------------------------------
# Client(): the socket found as superctl finds it


def test_client_without_a_path_takes_superd_socket(env, monkeypatch):
    monkeypatch.setenv("SUPERD_SOCKET", "/run/elsewhere.sock")
    assert Client().path == "/run/elsewhere.sock"
    assert Client("/run/given.sock").path == "/run/given.sock"


def test_client_without_a_path_reads_the_config_superd_would(env, server, monkeypatch):
    config_file(env, server.path)  # ./superd.toml
    with Client() as c:
        assert c.path == server.path
        assert c.version()["pid"] == 4242
    other = config_file(env, "/run/other.sock", name="other.toml")
    monkeypatch.setenv("SUPERD_CONFIG", str(other))
    assert Client().path == "/run/other.sock"


def test_client_without_a_path_and_an_unreadable_config(env, monkeypatch):
    (env / "broken.toml").write_text("[superd\n")
    monkeypatch.setenv("SUPERD_CONFIG", str(env / "broken.toml"))
    with pytest.raises(SocketNotFound) as caught:
        Client()
    assert "cannot read the socket path" in str(caught.value)
    assert caught.value.exit_code == protocol.EXIT_USAGE


def test_find_socket_default_without_any_config(env):
    assert find_socket(environ={"XDG_RUNTIME_DIR": "/run/user/1000"}).startswith("/")


# --------------------------------------------------------------------------
# superd import-supervisord: what the first hour of a migration trips on


def _convert(tmp_path, text, monkeypatch):
    from supervisor.migrate.conversion import convert

    monkeypatch.delenv("HORIZON_ENABLED", raising=False)
    conf = tmp_path / "supervisord.conf"
    conf.write_text("[supervisord]\nnodaemon=true\n\n" + text)
    return convert(str(conf))


def test_migrate_an_hour_long_stopwaitsecs_gets_a_proposal(tmp_path, monkeypatch):
    result = _convert(tmp_path, "[program:horizon]\ncommand=php artisan horizon\nstopwaitsecs=3600\n",
                      monkeypatch)
    advice = [m for m in result.warnings if "horizon (stopwaitsecs = 3600)" in m]
    assert len(advice) == 1, result.messages
    assert "cannot fit a container's stop grace period" in advice[0]
    assert "Proposed: stopwaitsecs = 60 and shutdown_timeout = 62" in advice[0]
    assert any("over 1 priority," in m for m in result.warnings)  # one priority, not "1 priorities"


def test_migrate_autostart_from_the_environment_is_explained(tmp_path, monkeypatch):
    result = _convert(tmp_path, "[program:horizon]\ncommand=run\nautostart=%(ENV_HORIZON_ENABLED)s\n",
                      monkeypatch)
    assert "autostart =" not in result.toml
    assert any("autostart: %(ENV_HORIZON_ENABLED)s: superd's autostart is a plain true or false" in m
               and "the program always starts" in m and "superctl start horizon" in m
               for m in result.warnings), result.messages


def test_migrate_host_node_name_is_expanded_where_superd_runs(tmp_path, monkeypatch):
    import platform

    result = _convert(tmp_path, "[program:web]\ncommand=run --node %(host_node_name)s\n", monkeypatch)
    assert 'command = "run --node ${HOSTNAME}"' in result.toml
    assert platform.node() not in result.toml.split("\n", 2)[2]  # after the header naming the file
    assert any("written as ${HOSTNAME}, expanded where superd runs" in m for m in result.warnings)


def test_migrate_dev_stdout_says_inherit_or_console_in_the_toml(tmp_path, monkeypatch):
    result = _convert(tmp_path, "[program:a]\ncommand=run\nstdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n\n"
                                "[program:b]\ncommand=run\nstdout_logfile=/dev/stdout\n", monkeypatch)
    assert '# stdout = "inherit": /dev/stdout unrotated' in result.toml
    assert '# stdout = "console" (/dev/stdout): each line prefixed' in result.toml
    assert result.messages == []
