"""``[socket.NAME]`` tables and a program's ``sockets``: parsing, checks, ${SUPERD_FD_NAME}, the reload diff."""

from __future__ import annotations

import textwrap

import pytest

from supervisor.config import ConfigError, parse, tomllib
from supervisor.config.diff import compare
from supervisor.config.sockets import changed_sockets, parse_listen
from supervisor.config.problems import Invalid

pytestmark = pytest.mark.timeout(10)


def load(text: str):
    return parse(tomllib.loads(textwrap.dedent(text)), "/etc/app/superd.toml", environ={})


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [f"{p.key}: {p.message}" for p in info.value.problems]


@pytest.mark.parametrize("text, expected", [
    ("tcp://127.0.0.1:8000", {"kind": "tcp", "host": "127.0.0.1", "port": 8000}),
    ("tcp://localhost:80", {"kind": "tcp", "host": "127.0.0.1", "port": 80}),
    ("tcp://[::1]:8000", {"kind": "tcp", "host": "::1", "port": 8000}),
    ("tcp://:8000", {"kind": "tcp", "host": "", "port": 8000}),
    ("unix:///run/app.sock", {"kind": "unix", "path": "/run/app.sock"}),
    ("unix://app.sock", {"kind": "unix", "path": "/etc/app/app.sock"}),
])
def test_listen_forms(text, expected):
    assert parse_listen(text, "/etc/app") == expected


@pytest.mark.parametrize("text, words", [
    ("http://127.0.0.1:80", "expected"),
    ("tcp://127.0.0.1", "TCP port"),
    ("tcp://127.0.0.1:0", "TCP port"),
    ("tcp://127.0.0.1:65536", "TCP port"),
    ("tcp://example.com:80", "IP address"),
    ("tcp://::1:80", "IP address"),
    ("tcp://[127.0.0.1]:80", "IPv6"),
    ("unix://", "path"),
    ("unix:///" + "x" * 120, "longer"),
])
def test_bad_listen_values(text, words):
    with pytest.raises(Invalid, match=words):
        parse_listen(text, "/")


def test_sockets_and_fd_variables():
    cfg = load("""
        [socket.web]
        listen = "tcp://127.0.0.1:8000"
        backlog = 64
        [socket.admin]
        listen = "unix:///run/admin.sock"
        mode = "0660"
        [program.web]
        command = "uvicorn --fd ${SUPERD_FD_web} --admin-fd ${SUPERD_FD_admin} app"
        environment = { WEB_FD = "${SUPERD_FD_web}" }
        sockets = ["web", "admin"]
        numprocs = 2
    """)
    assert [s.name for s in cfg.sockets] == ["admin", "web"]
    web = {s.name: s for s in cfg.sockets}["web"]
    assert (web.backlog, web.address, web.source) == (64, "127.0.0.1:8000", "/etc/app/superd.toml")
    assert {s.name: s for s in cfg.sockets}["admin"].mode == 0o660
    for instance in cfg.instances:
        assert instance.command == ("uvicorn", "--fd", "3", "--admin-fd", "4", "app")
        assert dict(instance.environment) == {"WEB_FD": "3"}
    assert cfg.program("web").sockets == ("web", "admin")


def test_problems_name_the_socket_or_the_program_key():
    found = problems("""
        [socket.web]
        listen = "tcp://127.0.0.1:8000"
        mode = "0600"
        colour = "blue"
        [socket.good]
        listen = "tcp://127.0.0.1:8001"
        [socket.copy]
        listen = "tcp://127.0.0.1:8001"
        [socket.bad-name]
        listen = "unix:///run/x.sock"
        [socket.nolisten]
        backlog = 0
        [program.web]
        command = "app"
        sockets = ["web", "web", "nope"]
        [program.other]
        command = "app"
        sockets = ["nope"]
    """)
    assert "socket.web.mode: only for Unix sockets (listen = \"unix:///path\")" in found
    assert any(p.startswith("socket.web.colour: unknown key") for p in found)
    assert "socket.copy.listen: 127.0.0.1:8001 is socket.good's address already" in found
    assert any(p.startswith('socket.bad-name: invalid socket name') for p in found)
    assert any(p.startswith("socket.nolisten.listen: missing") for p in found)
    assert any(p.startswith("socket.nolisten.backlog: expected an integer >= 1") for p in found)
    assert 'program.web.sockets[1]: "web" is listed twice' in found
    assert any(p.startswith('program.other.sockets[0]: no socket named "nope"') for p in found)


def test_a_changed_socket_table_changes_its_programs_only():
    base = textwrap.dedent("""
        [socket.web]
        listen = "tcp://127.0.0.1:8000"
        [socket.spare]
        listen = "tcp://127.0.0.1:8001"
        [program.web]
        command = "app"
        sockets = ["web"]
        [program.other]
        command = "app"
        sockets = ["spare"]
        [program.plain]
        command = "app"
    """)
    old = load(base)
    assert compare(old, load(base)).empty
    new = load(base.replace("8000", "9000"))
    difference = compare(old, new)
    assert difference.changed == ("web",)
    assert set(difference.unchanged) == {"other", "plain"}
    assert changed_sockets(old.sockets, new.sockets) == {"web"}
    gone = load(base.replace('sockets = ["spare"]', "").replace('[socket.spare]\nlisten = "tcp://127.0.0.1:8001"', ""))
    assert changed_sockets(old.sockets, gone.sockets) == {"spare"}
    assert compare(old, gone).changed == ("other",)  # its sockets key changed
