"""Unit tests for supervisor.config: reading, checking and expanding the TOML config."""

from __future__ import annotations

import ast
import datetime
import grp
import os
import pwd
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor import config
from supervisor.config import (
    Autorestart, ConfigError, DaemonSettings, Problem, default_paths, expand,
    find_config_file, load, parse, parse_signal, parse_size, read_socket_path,
    single_program,
)

pytestmark = pytest.mark.timeout(30)

MAIN = "/srv/app/superd.toml"
ENV = {"HOME": "/home/u", "PORT": "8000", "EMPTY": ""}
ME = pwd.getpwuid(os.geteuid()).pw_name
MY_GROUP = grp.getgrgid(os.getegid()).gr_name
NO_SUCH_USER = "superd-test-no-such-user"


def web(**keys: Any) -> dict[str, Any]:
    """A config with one program "web" holding ``keys`` (and a command)."""
    return {"program": {"web": {"command": "run", **keys}}}


def problems(data: dict[str, Any], path: str | None = MAIN, **kwargs: Any) -> list[str]:
    """The problems parse() reports, as strings."""
    with pytest.raises(ConfigError) as info:
        parse(data, path, ENV, **kwargs)
    assert str(info.value) == "\n".join(str(p) for p in info.value.problems)
    return [str(p) for p in info.value.problems]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --------------------------------------------------------------------------
# Problems and errors

def test_problem_str_has_file_key_and_message():
    assert str(Problem("/a.toml", "program.web.stopwaitsecs", "bad")) == "/a.toml: program.web.stopwaitsecs: bad"
    assert str(Problem(None, "command", "bad")) == "command: bad"
    assert str(Problem("/a.toml", "", "invalid TOML")) == "/a.toml: invalid TOML"


def test_config_error_lists_one_problem_per_line_without_repeats():
    p1, p2 = Problem("f", "a", "x"), Problem("f", "b", "y")
    error = ConfigError([p1, p2, p1])
    assert error.problems == [p1, p2]
    assert str(error) == "f: a: x\nf: b: y"


def test_all_problems_are_collected_at_once():
    data = {
        "superd": {"shutdown_timeout": 0, "log_level": "loud"},
        "program": {
            "web": {"command": "run", "stopwaitsecs": "ten", "numprocs": 0},
            "db": {"command": [], "autostart": "yes"},
        },
    }
    assert problems(data) == [
        f"{MAIN}: superd.shutdown_timeout: expected a number > 0, got 0 (integer)",
        f'{MAIN}: superd.log_level: expected one of "debug", "info", "warning", "error", got "loud" (string)',
        f'{MAIN}: program.web.stopwaitsecs: expected a number >= 0, got "ten" (string)',
        f"{MAIN}: program.web.numprocs: expected an integer from 1 to 10000, got 0 (integer)",
        f"{MAIN}: program.db.command: expected a non-empty array of strings, or a command string, got an array",
        f'{MAIN}: program.db.autostart: expected true or false, got "yes" (string)',
    ]


# --------------------------------------------------------------------------
# Defaults

def test_daemon_defaults(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    daemon = parse({}, MAIN, {"XDG_RUNTIME_DIR": "/run/user/1000"}).daemon
    assert daemon == DaemonSettings(
        socket="/run/user/1000/superd.sock", socket_mode=0o600, socket_group=None,
        allow_users=(), allow_groups=(), run_dir="/run/user/1000/superd",
        shutdown_timeout=25.0, log_level="info", log_format="text",
        logs_dir="/run/user/1000/superd/logs", include=())


def test_daemon_defaults_as_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    daemon = parse({}, MAIN, {"XDG_RUNTIME_DIR": "/run/user/0"}).daemon
    assert (daemon.socket, daemon.run_dir, daemon.logs_dir) == (
        "/run/superd.sock", "/run/superd", "/var/log/superd")


def test_program_defaults():
    cfg = parse(web(), MAIN, ENV)
    assert cfg.path == MAIN
    [p] = cfg.programs
    assert p.name == "web"
    assert p.command == ("run",)
    assert p.directory is None
    assert p.environment == ()
    assert p.user is None
    assert p.umask is None
    assert p.numprocs == 1
    assert p.priority == 999
    assert p.autostart is True
    assert p.autorestart is Autorestart.UNEXPECTED
    assert p.exitcodes == frozenset({0})
    assert p.startsecs == 1.0
    assert p.startretries == 3
    assert p.stopsignal is signal.SIGTERM
    assert p.stopwaitsecs == 10.0
    assert p.stopasgroup is False
    assert p.killasgroup is False
    assert p.exit_with is False
    assert (p.stdout, p.stderr) == ("auto", "auto")
    assert p.stdout_maxbytes == p.stderr_maxbytes == 50 * 1024 * 1024
    assert p.stdout_backups == p.stderr_backups == 10
    assert p.source == MAIN
    [i] = cfg.instances
    assert (i.name, i.group, i.num, i.program) == ("web", "web", 0, p)
    assert (i.command, i.environment, i.directory, i.stdout, i.stderr) == (
        ("run",), (), None, "auto", "auto")


# --------------------------------------------------------------------------
# Good values of every key

def test_daemon_values(tmp_path):
    table = {
        "socket": "/run/x.sock", "socket_mode": "0660", "socket_group": MY_GROUP,
        "allow_users": [ME], "allow_groups": [MY_GROUP], "run_dir": "/run/x",
        "shutdown_timeout": 7.5, "log_level": "DEBUG", "log_format": "json",
        "logs_dir": "/var/log/x", "include": ["conf.d/*.toml"],
    }
    daemon = parse({"superd": table}, str(tmp_path / "superd.toml"), ENV).daemon
    assert daemon == DaemonSettings(
        socket="/run/x.sock", socket_mode=0o660, socket_group=MY_GROUP, allow_users=(ME,),
        allow_groups=(MY_GROUP,), run_dir="/run/x", shutdown_timeout=7.5, log_level="debug",
        log_format="json", logs_dir="/var/log/x", include=(str(tmp_path / "conf.d/*.toml"),))


@pytest.mark.parametrize("value, expected", [(None, "auto"), ("auto", "auto"), ("OFF", "off"), ("off", "off")])
def test_cgroups(value, expected):
    table = {} if value is None else {"cgroups": value}
    assert parse({"superd": table}, MAIN, ENV).daemon.cgroups == expected


@pytest.mark.parametrize("value, expected", [(None, 60.0), (0.5, 0.5), (120, 120.0)])
def test_client_timeout(value, expected):
    table = {} if value is None else {"client_timeout": value}
    assert parse({"superd": table}, MAIN, ENV).daemon.client_timeout == expected


@pytest.mark.parametrize("mode, expected", [
    ("0600", 0o600), ("660", 0o660), ("0o640", 0o640), ("0", 0), ("0777", 0o777),
])
def test_socket_mode_is_octal(mode, expected):
    assert parse({"superd": {"socket_mode": mode}}, MAIN, ENV).daemon.socket_mode == expected


def test_program_values():
    p = parse(web(
        command=["gunicorn", "app:app", ""], directory="/srv", environment={"A": "1", "B": 2, "C": 1.5},
        user=ME, umask="027", numprocs=1, priority=-5, autostart=False, autorestart=True,
        exitcodes=[0, 2, 255], startsecs=0, startretries=0, stopsignal="int", stopwaitsecs=2.5,
        stopasgroup=True, killasgroup=False, exit_with=True, stdout="/tmp/o.log", stderr="stdout",
        stdout_maxbytes="1KB", stdout_backups=0, stderr_maxbytes=0, stderr_backups=3,
    ), MAIN, ENV).programs[0]
    assert p.command == ("gunicorn", "app:app", "")
    assert p.directory == "/srv"
    assert p.environment == (("A", "1"), ("B", "2"), ("C", "1.5"))
    assert (p.user, p.umask, p.priority, p.autostart) == (ME, 0o027, -5, False)
    assert p.autorestart is Autorestart.ALWAYS
    assert p.exitcodes == frozenset({0, 2, 255})
    assert (p.startsecs, p.startretries, p.stopwaitsecs) == (0.0, 0, 2.5)
    assert p.stopsignal is signal.SIGINT
    assert (p.stopasgroup, p.killasgroup, p.exit_with) == (True, False, True)
    assert (p.stdout, p.stderr) == ("/tmp/o.log", "stdout")
    assert (p.stdout_maxbytes, p.stdout_backups, p.stderr_maxbytes, p.stderr_backups) == (1024, 0, 0, 3)


@pytest.mark.parametrize("value, expected", [
    (True, Autorestart.ALWAYS), (False, Autorestart.NEVER), ("unexpected", Autorestart.UNEXPECTED),
])
def test_autorestart(value, expected):
    assert parse(web(autorestart=value), MAIN, ENV).programs[0].autorestart is expected


@pytest.mark.parametrize("keys, killasgroup", [
    ({}, False), ({"stopasgroup": True}, True), ({"stopasgroup": False}, False),
    ({"stopasgroup": True, "killasgroup": False}, False),
    ({"stopasgroup": False, "killasgroup": True}, True),
])
def test_killasgroup_defaults_to_stopasgroup(keys, killasgroup):
    assert parse(web(**keys), MAIN, ENV).programs[0].killasgroup is killasgroup


def killasgroup_warning(file: str | Path, program: str = "web") -> str:
    return (f"{file}: program.{program}.killasgroup: has no effect: a stop always ends every process "
            "of the program (its group and descendants)")


@pytest.mark.parametrize("value", [True, False])
def test_killasgroup_is_accepted_with_a_warning(value):
    cfg = parse(web(killasgroup=value), MAIN, ENV)
    assert cfg.programs[0].killasgroup is value
    assert cfg.warnings == (killasgroup_warning(MAIN),)


def test_no_warning_without_killasgroup():
    assert parse(web(stopasgroup=True), MAIN, ENV).warnings == ()
    assert single_program(["sleep", "1"]).warnings == ()


def test_warning_names_the_file_that_sets_killasgroup(tmp_path):
    main = write(tmp_path / "superd.toml", '[superd]\ninclude = ["conf.d/*.toml"]\n'
                                           '[program.api]\ncommand = "run"\nkillasgroup = true\n')
    extra = write(tmp_path / "conf.d/web.toml", '[program.web]\ncommand = "run"\nkillasgroup = false\n')
    assert load(str(main), ENV).warnings == (killasgroup_warning(main, "api"), killasgroup_warning(extra))


def test_a_warning_does_not_hide_problems():
    assert problems(web(killasgroup=True, stopwaitsecs="ten")) == [
        f'{MAIN}: program.web.stopwaitsecs: expected a number >= 0, got "ten" (string)']


@pytest.mark.parametrize("stream, value", [
    ("stdout", "auto"), ("stdout", "console"), ("stdout", "null"),
    ("stderr", "auto"), ("stderr", "console"), ("stderr", "null"), ("stderr", "stdout"),
])
def test_stream_keywords_are_kept(stream, value):
    [inst] = parse(web(**{stream: value}), MAIN, ENV).instances
    assert getattr(inst, stream) == value


# --------------------------------------------------------------------------
# Wrong values: the exact key path, what was expected, what was given

BAD_DAEMON = [
    ("socket", 5, 'expected a string, got 5 (integer)'),
    ("socket_mode", 600, 'expected an octal string like "0600", got 600 (integer); octal modes must be quoted'),
    ("socket_mode", "0800", 'expected an octal string like "0600", got "0800" (string)'),
    ("socket_mode", "7777", 'expected an octal string like "0600", got "7777" (string)'),
    ("socket_group", "superd-test-no-such-group", 'no such group "superd-test-no-such-group"'),
    ("socket_group", 0, "expected a non-empty string, got 0 (integer)"),
    ("allow_users", ME, f'expected an array of user names, got "{ME}" (string)'),
    ("allow_groups", {}, "expected an array of group names, got a table"),
    ("run_dir", "", 'expected a non-empty string, got "" (string)'),
    ("shutdown_timeout", 0, "expected a number > 0, got 0 (integer)"),
    ("shutdown_timeout", True, "expected a number > 0, got true (boolean)"),
    ("shutdown_timeout", float("inf"), "expected a number > 0, got inf (float)"),
    ("client_timeout", 0, "expected a number > 0, got 0 (integer)"),
    ("client_timeout", "60", 'expected a number > 0, got "60" (string)'),
    ("log_level", "trace", 'expected one of "debug", "info", "warning", "error", got "trace" (string)'),
    ("log_format", "xml", 'expected one of "text", "json", got "xml" (string)'),
    ("log_file", "", 'expected a non-empty string, got "" (string)'),
    ("log_file_maxbytes", "50 parsecs", 'expected a size like "50MB" (B, KB, MB or GB), got "50 parsecs" (string)'),
    ("log_file_backups", -1, "expected an integer >= 0, got -1 (integer)"),
    ("logs_dir", ["/x"], "expected a non-empty string, got an array"),
    ("include", "conf.d/*.toml", 'expected an array of glob patterns, got "conf.d/*.toml" (string)'),
    ("cgroups", "on", 'expected one of "auto", "off", got "on" (string)'),
    ("cgroups", False, 'expected one of "auto", "off", got false (boolean)'),
    ("nice", 5, "expected an integer from -20 to 0, got 5 (integer)"),
    ("nice", -21, "expected an integer from -20 to 0, got -21 (integer)"),
    ("nice", "-10", 'expected an integer from -20 to 0, got "-10" (string)'),
    ("log_timestamps", 1, "expected true or false, got 1 (integer)"),
]


@pytest.mark.parametrize("key, value, message", BAD_DAEMON)
def test_bad_daemon_value(key, value, message):
    assert problems({"superd": {key: value}}) == [f"{MAIN}: superd.{key}: {message}"]


def test_bad_items_in_daemon_arrays_are_keyed_by_index():
    data = {"superd": {"allow_users": [ME, NO_SUCH_USER], "include": ["ok", 3]}}
    assert problems(data) == [
        f'{MAIN}: superd.allow_users[1]: no such user "{NO_SUCH_USER}"',
        f"{MAIN}: superd.include[1]: expected a non-empty string, got 3 (integer)",
    ]


READY_WHAT = ('expected "notify", "tcp:PORT", "tcp:HOST:PORT", "http://HOST:PORT/PATH", '
              '{ exec = "cmd", interval = 1, timeout = 5 }, { tcp = "HOST:PORT", interval = 0.1, timeout = 1 } '
              'or { http = "http://...", interval = 0.2, timeout = 2 }')


BAD_PROGRAM = [
    ("command", "", 'expected a non-empty array of strings, or a command string, got "" (string)'),
    ("command", 5, "expected a non-empty array of strings, or a command string, got 5 (integer)"),
    ("command", "'unclosed", "cannot split the command string: No closing quotation"),
    ("directory", 1, "expected a non-empty string, got 1 (integer)"),
    ("environment", ["A=1"], 'expected a table of NAME = "value", got an array'),
    ("user", NO_SUCH_USER, f'no such user "{NO_SUCH_USER}"'),
    ("umask", 22, 'expected an octal string like "022", got 22 (integer); octal modes must be quoted'),
    ("umask", "abc", 'expected an octal string like "022", got "abc" (string)'),
    ("numprocs", 0, "expected an integer from 1 to 10000, got 0 (integer)"),
    ("numprocs", 2.0, "expected an integer from 1 to 10000, got 2.0 (float)"),
    ("numprocs", True, "expected an integer from 1 to 10000, got true (boolean)"),
    ("numprocs", 10001, "expected an integer from 1 to 10000, got 10001 (integer)"),
    ("numprocs_start", -1, "expected an integer >= 0, got -1 (integer)"),
    ("process_name", "web-%d", 'a lone "%" in "web-%d": write "%%" for a literal "%", or %(field)s for a field'),
    ("process_name", "", 'expected a non-empty string, got "" (string)'),
    ("priority", "1", 'expected an integer, got "1" (string)'),
    ("priority", False, "expected an integer, got false (boolean)"),
    ("autostart", 1, "expected true or false, got 1 (integer)"),
    ("autorestart", "always", 'expected true, false or "unexpected", got "always" (string)'),
    ("autorestart", "true", 'expected true, false or "unexpected", got "true" (string)'),
    ("exitcodes", 0, "expected an array of exit codes, got 0 (integer)"),
    ("startsecs", -1, "expected a number >= 0, got -1 (integer)"),
    ("startsecs", True, "expected a number >= 0, got true (boolean)"),
    ("startretries", 1.5, "expected an integer >= 0, got 1.5 (float)"),
    ("startretries", -1, "expected an integer >= 0, got -1 (integer)"),
    ("stopsignal", "TREM", 'expected a signal name like "TERM" or a signal number, got "TREM" (string)'),
    ("stopsignal", "STOP", "SIGSTOP cannot be handled by a process; use another signal"),
    ("stopwaitsecs", "10", 'expected a number >= 0, got "10" (string)'),
    ("stopwaitsecs", float("nan"), "expected a number >= 0, got nan (float)"),
    ("stopasgroup", "false", 'expected true or false, got "false" (string)'),
    ("killasgroup", 0, "expected true or false, got 0 (integer)"),
    ("exit_with", datetime.date(2024, 1, 31), "expected true or false, got 2024-01-31 (date)"),
    ("exit_with", None, "expected true or false, got None (NoneType)"),
    ("stdout", "stdout", 'expected "auto", "console", "null", "inherit" or a file path, got "stdout" (string)'),
    ("stdout", "stderr", 'expected "auto", "console", "null", "inherit" or a file path, got "stderr" (string)'),
    ("stdout", "", 'expected "auto", "console", "null", "inherit" or a file path, got "" (string)'),
    ("stderr", "stderr", 'expected "auto", "console", "null", "stdout", "inherit" or a file path, '
     'got "stderr" (string)'),
    ("stderr", False, 'expected "auto", "console", "null", "stdout", "inherit" or a file path, got false (boolean)'),
    ("stdout_maxbytes", "50 furlongs", 'expected a size like "50MB" (B, KB, MB or GB), got "50 furlongs" (string)'),
    ("stdout_maxbytes", -1, 'expected a size like "50MB" (B, KB, MB or GB), got -1 (integer)'),
    ("stdout_backups", "10", 'expected an integer >= 0, got "10" (string)'),
    ("stderr_maxbytes", 1.5, 'expected a size like "50MB" (B, KB, MB or GB), got 1.5 (float)'),
    ("stderr_backups", -2, "expected an integer >= 0, got -2 (integer)"),
    ("ready", "http:8000", READY_WHAT + ', got "http:8000" (string)'),
    ("ready", "tcp:", READY_WHAT + ', got "tcp:" (string)'),
    ("ready", True, READY_WHAT + ", got true (boolean)"),
    ("ready", {"interval": 1}, READY_WHAT + ", got a table"),
    ("ready", "tcp:70000", 'expected a TCP port from 1 to 65535 in "70000"'),
    ("ready", "tcp:db:", 'expected a TCP port from 1 to 65535 in "db:"'),
    ("ready", "tcp::80", 'expected HOST:PORT or PORT, got ":80"'),
    ("ready_timeout", 0, "expected a number > 0, got 0 (integer)"),
    ("depends_on", "db", 'expected an array of program names, or a table like { db = "ready", '
                   'migrate = "completed" }, got "db" (string)'),
    ("stop_sequence", [], "expected at least one step (after the last one, SIGKILL)"),
    ("stop_sequence", {"signal": "TERM", "wait": 1}, 'expected an array of steps like { signal = "TERM", '
                      'wait = 10 } or { exec = "cmd", wait = 10 }, got a table'),
    ("stop_command", [], "expected a non-empty array of strings, or a command string, got an array"),
    ("sockets", "web", 'expected an array of socket names, like ["web"], got "web" (string)'),
    # Restart policy, health, resources (more in test_health_config.py).
    ("restart_delay", -1, "expected a number >= 0, got -1 (integer)"),
    ("restart_burst", 1.5, "expected an integer >= 0, got 1.5 (float)"),
    ("restart_interval", 0, "expected a number > 0, got 0 (integer)"),
    ("restart_backoff_max", 0.5, "expected a number >= 1, got 0.5 (float)"),
    ("alive", "notify", '"notify" is for ready; for a notify program use watchdog = SECONDS'),
    ("watchdog", 0, "expected a number > 0, got 0 (integer)"),
    ("memory_restart", "lots", 'expected a size like "50MB" (B, KB, MB or GB), got "lots" (string)'),
    ("memory_max", 0, 'expected a size above 0 like "400MB", got 0 (integer)'),
    ("cpu_max", 0, "expected a number > 0, got 0 (integer)"),
    ("pids_max", 0, "expected an integer >= 1, got 0 (integer)"),
    ("rlimits", 5, 'expected a table like { nofile = 65536, core = "unlimited" }, got 5 (integer)'),
    ("nice", 20, "expected an integer from -20 to 19, got 20 (integer)"),
    ("oom_score_adj", -1001, "expected an integer from -1000 to 1000, got -1001 (integer)"),
    ("env_file", 5, 'expected a path or an array of paths ("-" in front: optional), got 5 (integer)'),
    # Hooks, event listeners, timestamps.
    ("before_start", [], "expected a non-empty array of strings, or a command string, got an array"),
    ("after_stop", 5, "expected a non-empty array of strings, or a command string, got 5 (integer)"),
    ("hook_timeout", 0, "expected a number > 0, got 0 (integer)"),
    ("log_timestamps", "yes", 'expected true or false, got "yes" (string)'),
    ("events", "PROCESS_STATE", 'expected an array of supervisord event types like "PROCESS_STATE_EXITED", '
     'got "PROCESS_STATE" (string)'),
    ("buffer_size", 0, "expected an integer from 1 to 100000, got 0 (integer)"),
    ("stdin", "yes", 'expected true or false, got "yes" (string)'),
]


@pytest.mark.parametrize("key, value, message", BAD_PROGRAM)
def test_bad_program_value(key, value, message):
    assert problems(web(**{key: value})) == [f"{MAIN}: program.web.{key}: {message}"]


def test_every_key_is_tested_for_a_bad_value():
    assert {key for key, _, _ in BAD_DAEMON} == set(config.DAEMON_KEYS)
    assert {key for key, _, _ in BAD_PROGRAM} == set(config.PROGRAM_KEYS)


def test_bad_items_are_keyed_by_index_or_name():
    data = web(command=["run", 5], exitcodes=[0, 256, "1"],
               environment={"OK": "1", "BAD=NAME": "x", "FLAG": True})
    assert problems(data) == [
        f"{MAIN}: program.web.command[1]: expected a string, got 5 (integer)",
        f"{MAIN}: program.web.exitcodes[1]: expected an integer from 0 to 255, got 256 (integer)",
        f'{MAIN}: program.web.exitcodes[2]: expected an integer from 0 to 255, got "1" (string)',
        f'{MAIN}: program.web.environment."BAD=NAME": invalid variable name (empty, or has "=" or NUL)',
        f"{MAIN}: program.web.environment.FLAG: expected a string or a number, got true (boolean)",
    ]


def test_command_array_with_empty_first_item_is_refused():
    assert problems(web(command=["", "x"])) == [
        f"{MAIN}: program.web.command: expected a non-empty array of strings, or a command string, got an array"]


def test_missing_command():
    assert problems({"program": {"web": {"priority": 1}}}) == [
        f"{MAIN}: program.web.command: missing; every program needs a command"]


def test_program_must_be_a_table():
    assert problems({"program": {"web": "run"}}) == [
        f'{MAIN}: program.web: expected a table, got "run" (string)']
    assert problems({"program": "web"}) == [f'{MAIN}: program: expected a table, got "web" (string)']
    assert problems({"superd": []}) == [f"{MAIN}: superd: expected a table, got an array"]


def test_user_needs_root_unless_it_is_superd_itself(monkeypatch):
    root = pwd.getpwuid(0).pw_name
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    assert problems(web(user=root)) == [
        f'{MAIN}: program.web.user: running as user "{root}" needs root (superd runs as uid 4242)']


def test_user_is_fine_as_root_or_as_self(monkeypatch):
    assert parse(web(user=ME), MAIN, ENV).programs[0].user == ME
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    root = pwd.getpwuid(0).pw_name
    assert parse(web(user=root), MAIN, ENV).programs[0].user == root


# --------------------------------------------------------------------------
# Unknown keys and tables

def test_unknown_top_level_key():
    assert problems({"programs": {}, "debug": True}) == [
        f'{MAIN}: programs: unknown key (did you mean "program"?); expected only [superd], [program.NAME], '
        "[group.NAME], [socket.NAME] and [http] tables",
        f"{MAIN}: debug: unknown key; expected only [superd], [program.NAME], [group.NAME], [socket.NAME] "
        "and [http] tables",
    ]


def test_unknown_daemon_key():
    [problem] = problems({"superd": {"sockets": "/x"}})
    assert problem.startswith(f'{MAIN}: superd.sockets: unknown key (did you mean "socket"?); '
                              "expected one of socket, socket_mode,")
    assert problem.endswith("logs_dir, include, cgroups, nice, log_timestamps")


def test_unknown_program_key_is_refused_and_quoted_when_needed():
    found = problems(web(autorestarts=True, **{"odd key": 1}))
    assert [p.split(": unknown key")[0] for p in found] == [
        f"{MAIN}: program.web.autorestarts", f'{MAIN}: program.web."odd key"']
    assert "expected one of command, directory, environment," in found[0]


# --------------------------------------------------------------------------
# Program names, numprocs, conflicts, order

@pytest.mark.parametrize("name", ["web", "Web2", "a.b-c_d", "0day"])
def test_good_program_names(name):
    assert parse({"program": {name: {"command": "x"}}}, MAIN, ENV).programs[0].name == name


@pytest.mark.parametrize("name, key", [
    ("_web", "_web"), ("-x", "-x"), ("a:b", '"a:b"'), ("a b", '"a b"'), ("", '""'), ("é", '"é"'),
])
def test_bad_program_names(name, key):
    assert problems({"program": {name: {"command": "x"}}}) == [
        f'{MAIN}: program.{key}: invalid program name: expected letters, digits, "_", "." or "-", '
        "starting with a letter or digit"]


def test_all_is_reserved():
    assert problems({"program": {"all": {"command": "x"}}}) == [
        f'{MAIN}: program.all: "all" is reserved (it means every program)']


def test_numprocs_names_instances():
    cfg = parse(web(numprocs=3), MAIN, ENV)
    assert [(i.name, i.group, i.num) for i in cfg.instances] == [
        ("web_0", "web", 0), ("web_1", "web", 1), ("web_2", "web", 2)]
    assert cfg.instance("web") is None
    assert cfg.instance("web_2").num == 2
    assert cfg.program("web").numprocs == 3


def test_instance_name_conflicting_with_a_program():
    data = {"program": {"web": {"command": "x", "numprocs": 2}, "web_1": {"command": "y"}}}
    assert problems(data) == [
        f'{MAIN}: program.web_1: the name "web_1" is used twice: by instance web_1 of program "web" '
        'and by program "web_1"']


def test_group_name_conflicting_with_an_instance():
    data = {"program": {"a": {"command": "x", "numprocs": 2}, "a_0": {"command": "y", "numprocs": 2}}}
    assert problems(data) == [
        f'{MAIN}: program.a_0: the name "a_0" is used twice: by instance a_0 of program "a" '
        'and by program "a_0"']


def test_programs_by_name_instances_by_priority_then_name_and_number():
    data = {"program": {
        "web": {"command": "x", "numprocs": 11, "priority": 10},
        "db": {"command": "x", "priority": 1},
        "cache": {"command": "x", "priority": 10},
        "zz": {"command": "x"},
    }}
    cfg = parse(data, MAIN, ENV)
    assert [p.name for p in cfg.programs] == ["cache", "db", "web", "zz"]
    assert [i.name for i in cfg.instances] == (
        ["db", "cache"] + [f"web_{n}" for n in range(11)] + ["zz"])


def test_lookup_of_unknown_names():
    cfg = parse(web(), MAIN, ENV)
    assert cfg.program("nope") is None and cfg.instance("nope") is None
    assert cfg.program("web") is cfg.programs[0]
    assert cfg.instance("web") is cfg.instances[0]


# --------------------------------------------------------------------------
# Command strings

@pytest.mark.parametrize("command, argv", [
    ("gunicorn app:app", ("gunicorn", "app:app")),
    ("sh -c 'echo $HOME; exit 3'", ("sh", "-c", "echo $HOME; exit 3")),
    ('printf "%s\\n" "a b"', ("printf", "%s\\n", "a b")),
    ("a\\ b  c", ("a b", "c")),
    ("run # not a comment", ("run", "#", "not", "a", "comment")),
])
def test_command_string_is_split_like_a_shell(command, argv):
    assert parse(web(command=command), MAIN, ENV).programs[0].command == argv


# --------------------------------------------------------------------------
# ${} expansion

@pytest.mark.parametrize("text, result", [
    ("${HOME}", "/home/u"),
    ("x${PORT}y${PORT}", "x8000y8000"),
    ("${NOPE:-fallback}", "fallback"),
    ("${EMPTY:-fallback}", "fallback"),
    ("${PORT:-9}", "8000"),
    ("${NOPE:-}", ""),
    ("${NOPE:-a b:-c}", "a b:-c"),
    ("$$", "$"),
    ("$${HOME}", "${HOME}"),
    ("$$$$", "$$"),
    ("$HOME and $1", "$HOME and $1"),
    ("cost: 5$", "cost: 5$"),
    ("${EMPTY}", ""),
])
def test_expand(text, result):
    assert expand(text, ENV) == result


@pytest.mark.parametrize("text, message", [
    ("${NOPE}", "undefined variable ${NOPE} (set it in superd's environment, or give a default: ${NOPE:-value})"),
    ("${1}", 'bad variable reference "${1}": expected ${NAME} or ${NAME:-default}; write "$$" for a literal "$"'),
    ("${HOME", 'bad variable reference "${": expected ${NAME} or ${NAME:-default}; write "$$" for a literal "$"'),
    ("${A-b}", 'bad variable reference "${A-b}": expected ${NAME} or ${NAME:-default}; write "$$" for a literal "$"'),
])
def test_expand_refuses(text, message):
    with pytest.raises(config.Invalid) as info:
        expand(text, ENV)
    assert str(info.value) == message


def test_expansion_in_command_environment_directory_and_streams():
    [inst] = parse(web(
        command=["serve", "--port=${PORT}", "${NOPE:-a b}", "$$HOME", "$HOME"],
        environment={"PORT": "${PORT}", "RAW": "$$x", "N": 3},
        directory="${HOME}/app", stdout="${HOME}/out.log", stderr="logs/${SUPERD_PROCESS_NAME}.err",
    ), MAIN, ENV).instances
    assert inst.command == ("serve", "--port=8000", "a b", "$HOME", "$HOME")
    assert inst.environment == (("PORT", "8000"), ("RAW", "$x"), ("N", "3"))
    assert inst.directory == "/home/u/app"
    assert inst.stdout == "/home/u/out.log"
    assert inst.stderr == "/srv/app/logs/web.err"
    assert inst.program.command[1] == "--port=${PORT}"  # the program keeps the raw text


def test_command_string_is_split_before_expansion():
    [inst] = parse(web(command="echo ${GREETING} '${GREETING}'"), MAIN, {"GREETING": "hello world"}).instances
    assert inst.command == ("echo", "hello world", "hello world")


def test_per_instance_variables():
    cfg = parse(web(numprocs=2, command="run --id=${SUPERD_PROCESS_NUM} ${SUPERD_PROCESS_NAME} ${SUPERD_GROUP}",
                    environment={"WORKER": "${SUPERD_PROCESS_NAME}"}),
                MAIN, {"SUPERD_PROCESS_NUM": "from-env"})
    assert [i.command for i in cfg.instances] == [
        ("run", "--id=0", "web_0", "web"), ("run", "--id=1", "web_1", "web")]
    assert [i.environment for i in cfg.instances] == [(("WORKER", "web_0"),), (("WORKER", "web_1"),)]


def test_instance_environment_is_not_merged_with_superds():
    [inst] = parse(web(environment={"A": "1"}), MAIN, ENV).instances
    assert inst.environment == (("A", "1"),)


def test_undefined_variables_are_reported_with_their_key_once_per_program():
    data = web(numprocs=3, command=["run", "x", "${NOPE}"], environment={"X": "${ALSO_NOPE}"},
               directory="${NO_DIR}", stdout="${NO_OUT}")
    found = problems(data)
    assert [p.split(": undefined variable")[0] for p in found] == [
        f"{MAIN}: program.web.command[2]", f"{MAIN}: program.web.environment.X",
        f"{MAIN}: program.web.directory", f"{MAIN}: program.web.stdout"]
    assert "${NOPE}" in found[0] and "${NO_OUT}" in found[3]


def test_expanding_to_nothing_where_something_is_needed():
    assert problems(web(command=["${EMPTY}", "x"], directory="${EMPTY}")) == [
        f'{MAIN}: program.web.command[0]: "${{EMPTY}}" expands to an empty string',
        f'{MAIN}: program.web.directory: "${{EMPTY}}" expands to an empty string',
    ]


def test_environ_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("SUPERD_TEST_VAR", "from-os")
    [inst] = parse(web(command="echo ${SUPERD_TEST_VAR}"), MAIN).instances
    assert inst.command == ("echo", "from-os")


# --------------------------------------------------------------------------
# Relative paths

def test_relative_daemon_paths_are_relative_to_the_config_folder():
    daemon = parse({"superd": {"socket": "run/s.sock", "run_dir": "../run", "logs_dir": "/abs/logs",
                               "include": ["conf.d/*.toml", "/etc/x/*.toml"]}}, MAIN, ENV).daemon
    assert (daemon.socket, daemon.run_dir, daemon.logs_dir) == (
        "/srv/app/run/s.sock", "/srv/run", "/abs/logs")
    assert daemon.include == ("/srv/app/conf.d/*.toml", "/etc/x/*.toml")


def test_empty_socket_means_no_control_socket():
    assert parse({"superd": {"socket": ""}}, MAIN, ENV).daemon.socket == ""


def test_relative_program_paths_are_relative_to_the_config_folder():
    [inst] = parse(web(directory="app", stdout="logs/out.log", stderr="./null"), MAIN, ENV).instances
    assert (inst.directory, inst.stdout, inst.stderr) == (
        "/srv/app/app", "/srv/app/logs/out.log", "/srv/app/null")
    assert inst.program.directory == "app"


def test_base_dir_overrides_the_config_folder():
    cfg = parse({"superd": {"socket": "s.sock"}, **web(directory=".")}, MAIN, ENV, base_dir="/elsewhere")
    assert cfg.daemon.socket == "/elsewhere/s.sock"
    assert cfg.instances[0].directory == "/elsewhere"


def test_without_a_path_relative_paths_use_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cfg = parse(web(directory="d"), None, ENV)
    assert cfg.path is None and cfg.programs[0].source is None
    assert cfg.instances[0].directory == str(tmp_path / "d")


# --------------------------------------------------------------------------
# Files: load(), TOML errors, includes

def test_load_reads_the_file(tmp_path):
    path = write(tmp_path / "superd.toml", """
[superd]
socket = "superd.sock"
[program.web]
command = "serve --port ${PORT}"
directory = "app"
""")
    cfg = load(str(path), ENV)
    assert cfg.path == str(path)
    assert cfg.daemon.socket == str(tmp_path / "superd.sock")
    assert cfg.instances[0].command == ("serve", "--port", "8000")
    assert cfg.instances[0].directory == str(tmp_path / "app")
    assert cfg.programs[0].source == str(path)


def test_load_makes_the_path_absolute(tmp_path, monkeypatch):
    write(tmp_path / "superd.toml", "")
    monkeypatch.chdir(tmp_path)
    assert load("superd.toml", ENV).path == str(tmp_path / "superd.toml")


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path / "superd.toml", '[program.web]\ncommand = "x"\npriority = = 3\n')
    with pytest.raises(ConfigError) as info:
        load(str(path), ENV)
    [problem] = info.value.problems
    assert problem.file == str(path)
    assert problem.message.startswith("invalid TOML: ")
    assert "line 3" in problem.message


def test_duplicate_table_is_a_toml_error(tmp_path):
    path = write(tmp_path / "superd.toml", '[program.web]\ncommand = "x"\n[program.web]\ncommand = "y"\n')
    with pytest.raises(ConfigError, match="invalid TOML"):
        load(str(path), ENV)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(str(tmp_path / "nope.toml"), ENV)
    assert str(info.value) == f"{tmp_path / 'nope.toml'}: cannot read the file: No such file or directory"
    with pytest.raises(ConfigError, match="Is a directory"):
        load(str(tmp_path), ENV)
    (tmp_path / "latin1.toml").write_bytes(b'x = "\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(str(tmp_path / "latin1.toml"), ENV)


def test_includes_are_read_in_sorted_order_relative_to_the_main_file(tmp_path):
    main = write(tmp_path / "superd.toml", '[superd]\ninclude = ["conf.d/*.toml", "none/*.toml"]\n'
                                           '[program.main]\ncommand = "m"\n')
    write(tmp_path / "conf.d/b.toml", '[program.b]\ncommand = "b"\nstdout = "b.log"\n')
    write(tmp_path / "conf.d/a.toml", '[program.a1]\ncommand = "a"\n[program.a2]\ncommand = "a"\n')
    write(tmp_path / "conf.d/ignored.txt", "not toml")
    cfg = load(str(main), ENV)
    assert [(p.name, p.source) for p in cfg.programs] == [
        ("a1", str(tmp_path / "conf.d/a.toml")), ("a2", str(tmp_path / "conf.d/a.toml")),
        ("b", str(tmp_path / "conf.d/b.toml")), ("main", str(main))]
    # a relative path in an included file is relative to that file's folder
    assert cfg.instance("b").stdout == str(tmp_path / "conf.d/b.log")


def test_include_matching_the_main_file_or_a_file_twice_reads_it_once(tmp_path):
    main = write(tmp_path / "superd.toml", '[superd]\ninclude = ["*.toml", "x.toml"]\n')
    write(tmp_path / "x.toml", '[program.x]\ncommand = "x"\n')
    assert [p.name for p in load(str(main), ENV).programs] == ["x"]


def test_program_defined_in_two_files(tmp_path):
    main = write(tmp_path / "superd.toml", '[superd]\ninclude = ["conf.d/*.toml"]\n[program.web]\ncommand = "x"\n')
    other = write(tmp_path / "conf.d/web.toml", '[program.web]\ncommand = "y"\n')
    with pytest.raises(ConfigError) as info:
        load(str(main), ENV)
    assert str(info.value) == f"{other}: program.web: defined twice: in {main} and in {other}"


def test_superd_table_and_unknown_tables_are_refused_in_includes(tmp_path):
    main = write(tmp_path / "superd.toml", '[superd]\ninclude = ["conf.d/*.toml"]\n')
    inc = write(tmp_path / "conf.d/x.toml", '[superd]\nsocket = "/x"\n[other]\n[program.x]\ncommand = "x"\n')
    with pytest.raises(ConfigError) as info:
        load(str(main), ENV)
    assert [str(p) for p in info.value.problems] == [
        f"{inc}: superd: [superd] is only allowed in the main config file",
        f"{inc}: other: unknown key; expected only [program.NAME], [group.NAME] and [socket.NAME] tables",
    ]


def test_problems_in_included_files_name_that_file(tmp_path):
    main = write(tmp_path / "superd.toml", '[superd]\ninclude = ["conf.d/*.toml"]\n[program.ok]\ncommand="x"\n')
    bad = write(tmp_path / "conf.d/bad.toml", '[program.bad]\ncommand = "x"\nstopwaitsecs = "ten"\n')
    broken = write(tmp_path / "conf.d/broken.toml", "[program.broken\n")
    with pytest.raises(ConfigError) as info:
        load(str(main), ENV)
    assert [p.file for p in info.value.problems] == [str(broken), str(bad)]
    assert str(info.value.problems[1]) == (
        f'{bad}: program.bad.stopwaitsecs: expected a number >= 0, got "ten" (string)')


def test_parse_reads_includes_relative_to_base_dir(tmp_path):
    write(tmp_path / "inc/x.toml", '[program.x]\ncommand = "x"\n')
    cfg = parse({"superd": {"include": ["inc/*.toml"]}}, None, ENV, base_dir=str(tmp_path))
    assert [p.name for p in cfg.programs] == ["x"]


# --------------------------------------------------------------------------
# parse_size, parse_signal

@pytest.mark.parametrize("value, size", [
    (0, 0), ("0", 0), (512, 512), ("512", 512), ("512B", 512), ("1KB", 1024), ("1kb", 1024),
    ("1K", 1024), ("1KiB", 1024), ("10 MB", 10 << 20), ("50MB", 50 << 20), ("1GB", 1 << 30),
    ("2g", 2 << 30), (" 3 mb ", 3 << 20),
])
def test_parse_size(value, size):
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["", "MB", "-1", "1.5MB", "1TB", "1 M B", "ten", True, 1.0, None, [], -5])
def test_parse_size_refuses(value):
    with pytest.raises(ValueError, match=r'expected a size like "50MB"'):
        parse_size(value)


@pytest.mark.parametrize("value, sig", [
    ("TERM", signal.SIGTERM), ("SIGTERM", signal.SIGTERM), ("term", signal.SIGTERM),
    ("sigterm", signal.SIGTERM), (15, signal.SIGTERM), ("15", signal.SIGTERM),
    ("HUP", signal.SIGHUP), ("INT", signal.SIGINT), ("QUIT", signal.SIGQUIT),
    ("KILL", signal.SIGKILL), (9, signal.SIGKILL), ("USR1", signal.SIGUSR1), ("usr2", signal.SIGUSR2),
    (" WINCH ", signal.SIGWINCH), ("IOT", signal.SIGABRT), ("RTMIN", signal.SIGRTMIN),
])
def test_parse_signal(value, sig):
    assert parse_signal(value) is sig


@pytest.mark.parametrize("value", ["", "TREM", "SIG", "SIGSIGTERM", 0, -15, 999, "0", True, 15.0, None, "SIG_DFL"])
def test_parse_signal_refuses(value):
    with pytest.raises(ValueError, match="expected a signal name"):
        parse_signal(value)


def test_parse_signal_refuses_stop_unless_allowed():
    for value in ("STOP", "SIGSTOP", int(signal.SIGSTOP)):
        with pytest.raises(ValueError, match="SIGSTOP cannot be handled"):
            parse_signal(value)
        assert parse_signal(value, allow_stop=True) is signal.SIGSTOP


# --------------------------------------------------------------------------
# single_program

def test_single_program(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    env = {"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/u"}
    cfg = single_program(["/usr/bin/python3.11", "-c", "print('${HOME} $$')"], stopwaitsecs=3, environ=env)
    assert cfg.path is None
    [p] = cfg.programs
    assert p.name == "python3.11"
    assert p.command == ("/usr/bin/python3.11", "-c", "print('${HOME} $$')")
    assert p.autorestart is Autorestart.NEVER
    assert (p.exit_with, p.autostart, p.startsecs, p.startretries) == (True, True, 0, 0)
    assert (p.stopwaitsecs, p.stopasgroup, p.killasgroup) == (3, False, True)
    assert (p.stdout, p.stderr) == ("console", "console")
    [i] = cfg.instances
    assert (i.name, i.group, i.num, i.command) == ("python3.11", "python3.11", 0, p.command)
    assert (i.stdout, i.stderr, i.environment, i.directory) == ("console", "console", (), None)
    assert cfg.daemon == DaemonSettings(
        socket="", run_dir="/run/user/1000/superd", logs_dir="/run/user/1000/superd/logs",
        shutdown_timeout=8)


def test_single_program_defaults_and_socket(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = single_program(["sleep", "1"], socket="s.sock")
    assert cfg.daemon.socket == str(tmp_path / "s.sock")
    assert cfg.programs[0].stopwaitsecs == 10
    assert cfg.daemon.shutdown_timeout == 15
    assert cfg.instance("sleep").program is cfg.program("sleep")


@pytest.mark.parametrize("argv0, name", [
    ("./my app", "my_app"), ("/bin/-weird", "weird"), ("___", "main"), ("all", "main"), ("x:y", "x_y"),
])
def test_single_program_name_is_sanitised(argv0, name):
    assert single_program([argv0]).programs[0].name == name


def test_single_program_refuses_nothing_to_run_and_bad_stopwaitsecs():
    with pytest.raises(ConfigError) as info:
        single_program([], stopwaitsecs=-1)
    assert str(info.value) == (
        "command: expected a command to run after --\n"
        "--stopwaitsecs: expected a number >= 0, got -1 (integer)")


# --------------------------------------------------------------------------
# find_config_file, read_socket_path, default_paths

def test_find_config_file_precedence(tmp_path, monkeypatch):
    etc = write(tmp_path / "etc/superd.toml", "")
    monkeypatch.setattr(config, "CONFIG_SEARCH_PATH", ("superd.toml", str(etc)))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    env = {"SUPERD_CONFIG": "/from/env.toml"}
    assert find_config_file(None, {}) == str(etc)
    write(work / "superd.toml", "")
    assert find_config_file(None, {}) == str(work / "superd.toml")
    assert find_config_file(None, {"SUPERD_CONFIG": ""}) == str(work / "superd.toml")
    assert find_config_file(None, env) == "/from/env.toml"  # returned even though missing
    assert find_config_file("/explicit.toml", env) == "/explicit.toml"
    etc.unlink()
    (work / "superd.toml").unlink()
    assert find_config_file(None, {}) is None


def test_default_search_path():
    assert config.CONFIG_SEARCH_PATH == ("superd.toml", "/etc/superd/superd.toml")


def test_read_socket_path_ignores_problems_elsewhere(tmp_path):
    path = write(tmp_path / "superd.toml", '[superd]\nsocket = "s.sock"\nbogus = 1\n'
                                           'include = ["missing/*.toml"]\n[program.x]\nstopwaitsecs = "ten"\n')
    assert read_socket_path(str(path), ENV) == str(tmp_path / "s.sock")


def test_read_socket_path_default_and_empty(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    env = {"XDG_RUNTIME_DIR": "/run/user/1000"}
    path = write(tmp_path / "a.toml", '[program.x]\ncommand = 1\n')
    assert read_socket_path(str(path), env) == "/run/user/1000/superd.sock"
    write(path, '[superd]\nsocket = 5\n')
    assert read_socket_path(str(path), env) == "/run/user/1000/superd.sock"
    write(path, '[superd]\nsocket = ""\n')
    assert read_socket_path(str(path), env) == ""
    write(path, 'superd = "x"\n')
    assert read_socket_path(str(path), env) == "/run/user/1000/superd.sock"


def test_read_socket_path_agrees_with_load(tmp_path):
    path = write(tmp_path / "superd.toml", '[superd]\nsocket = "../x/s.sock"\n')
    assert read_socket_path(str(path), ENV) == load(str(path), ENV).daemon.socket == str(tmp_path.parent / "x/s.sock")


def test_read_socket_path_raises_for_unreadable_or_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        read_socket_path(str(tmp_path / "nope.toml"), ENV)
    path = write(tmp_path / "broken.toml", "[superd\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        read_socket_path(str(path), ENV)


@pytest.mark.parametrize("uid, environ, paths", [
    (0, {"XDG_RUNTIME_DIR": "/run/user/0"}, ("/run/superd.sock", "/run/superd", "/var/log/superd")),
    (1000, {"XDG_RUNTIME_DIR": "/run/user/1000"},
     ("/run/user/1000/superd.sock", "/run/user/1000/superd", "/run/user/1000/superd/logs")),
    (1000, {}, ("/tmp/superd-1000/superd.sock", "/tmp/superd-1000/superd", "/tmp/superd-1000/superd/logs")),
    (1000, {"XDG_RUNTIME_DIR": ""}, ("/tmp/superd-1000/superd.sock", "/tmp/superd-1000/superd",
                                     "/tmp/superd-1000/superd/logs")),
    (7, {"XDG_RUNTIME_DIR": "relative"}, ("/tmp/superd-7/superd.sock", "/tmp/superd-7/superd",
                                          "/tmp/superd-7/superd/logs")),
])
def test_default_paths(uid, environ, paths):
    assert default_paths(uid, environ) == dict(zip(("socket", "run_dir", "logs_dir"), paths, strict=True))


def test_default_paths_use_the_effective_uid(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_paths(environ={})["socket"] == "/run/superd.sock"
    monkeypatch.setattr(os, "geteuid", lambda: 1234)
    assert default_paths(environ={})["socket"] == "/tmp/superd-1234/superd.sock"


# --------------------------------------------------------------------------
# Import cost

def test_module_imports_only_the_standard_library():
    tree = ast.parse(Path(config.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported - {"__future__"} <= set(sys.stdlib_module_names) | {"tomllib", "tomli"}
    assert not imported & {"asyncio", "psutil", "click", "json", "subprocess"}


def test_every_module_of_the_package_imports_only_the_standard_library():
    for module in sorted(Path(config.__file__).parent.glob("*.py")):
        tree = ast.parse(module.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
        assert imported - {"__future__"} <= set(sys.stdlib_module_names) | {"tomllib", "tomli"}, module.name
        assert not imported & {"asyncio", "psutil", "click", "json", "subprocess"}, module.name


def test_socket_path_longer_than_a_unix_address_can_hold_is_refused(tmp_path):
    long_path = "/tmp/" + "s" * 120 + ".sock"
    with pytest.raises(config.ConfigError) as info:
        parse({"superd": {"socket": long_path}}, str(tmp_path / "c.toml"), {})
    assert "superd.socket" in str(info.value) and "107 bytes" in str(info.value)


# -- readiness, dependencies, stop sequences --------------------------------------

def test_ready_forms_are_parsed_per_instance():
    cfg = parse(web(numprocs=2, ready="tcp:800${SUPERD_PROCESS_NUM}"), MAIN, ENV)
    assert [str(i.ready) for i in cfg.instances] == ["tcp:127.0.0.1:8000", "tcp:127.0.0.1:8001"]
    assert cfg.instances[0].ready.interval == config.TCP_INTERVAL
    cfg = parse(web(ready={"tcp": "[::1]:${PORT}", "interval": 0.5, "timeout": 2}), MAIN, ENV)
    ready = cfg.instances[0].ready
    assert (ready.host, ready.port, ready.interval, ready.timeout) == ("::1", 8000, 0.5, 2.0)
    assert str(ready) == "tcp:[::1]:8000"
    cfg = parse(web(ready={"exec": "check --name ${SUPERD_PROCESS_NAME}", "timeout": 3}), MAIN, ENV)
    ready = cfg.instances[0].ready
    assert (ready.kind, ready.command, ready.interval, ready.timeout) == ("exec", ("check", "--name", "web"), 1.0, 3.0)
    assert parse(web(ready="NOTIFY"), MAIN, ENV).instances[0].ready.kind == "notify"
    assert parse(web(), MAIN, ENV).instances[0].ready is None


def test_ready_problems_are_keyed_inside_the_table():
    assert problems(web(ready={"exec": ["check", 5], "every": 1, "timeout": -1})) == [
        f"{MAIN}: program.web.ready.exec[1]: expected a string, got 5 (integer)",
        f"{MAIN}: program.web.ready.every: unknown key; expected one of exec, interval, timeout",
        f"{MAIN}: program.web.ready.timeout: expected a number > 0, got -1 (integer)",
    ]
    assert problems(web(ready={"tcp": "db:${NOPE}"})) == [
        f"{MAIN}: program.web.ready.tcp: undefined variable ${{NOPE}} (set it in superd's environment, "
        "or give a default: ${NOPE:-value})",
        f'{MAIN}: program.web.ready.tcp: expected a TCP port from 1 to 65535 in "db:${{NOPE}}"',
    ]


def test_stop_sequence_steps_and_their_problems():
    cfg = parse(web(stop_sequence=[{"signal": "TSTP", "wait": 20}, {"exec": "drain ${SUPERD_PROCESS_NAME}", "wait": 5},
                                   {"signal": 15, "wait": 10}]), MAIN, ENV)
    inst = cfg.instances[0]
    assert [(s.signal, s.command, s.wait) for s in inst.stop_plan()] == [
        (signal.SIGTSTP, (), 20.0), (None, ("drain", "web"), 5.0), (signal.SIGTERM, (), 10.0)]
    assert inst.stop_time() == 35.0
    assert problems(web(stop_sequence=[{"signal": "TSTP"}, {"wait": 1}, {"signal": "INT", "exec": "x", "wait": 1},
                                       {"signal": "TERM", "wait": -1}, 3])) == [
        f"{MAIN}: program.web.stop_sequence[0].wait: missing",
        f"{MAIN}: program.web.stop_sequence[1].signal: missing",
        f"{MAIN}: program.web.stop_sequence[2].signal: unknown key; expected one of exec, wait",
        f"{MAIN}: program.web.stop_sequence[3].wait: expected a number >= 0, got -1 (integer)",
        f'{MAIN}: program.web.stop_sequence[4]: expected {{ signal = "TERM", wait = 10 }} or '
        '{ exec = "cmd", wait = 10 }, got 3 (integer)',
    ]


def test_stop_sequence_excludes_the_one_step_keys():
    assert problems(web(stop_sequence=[{"signal": "TERM", "wait": 1}], stopsignal="INT", stopwaitsecs=3,
                        stop_command="drain")) == [
        f"{MAIN}: program.web.stopsignal: not with stop_sequence: the sequence says which signals and how long",
        f"{MAIN}: program.web.stopwaitsecs: not with stop_sequence: the sequence says which signals and how long",
        f"{MAIN}: program.web.stop_command: not with stop_sequence: add it as a first step {{ exec = ..., wait = ... }}",
    ]


def test_stop_command_is_a_first_step_with_stopwaitsecs():
    inst = parse(web(stop_command=["drain", "${SUPERD_PROCESS_NAME}"], stopsignal="INT", stopwaitsecs=4),
                 MAIN, ENV).instances[0]
    assert [(s.signal, s.command, s.wait) for s in inst.stop_plan()] == [
        (None, ("drain", "web"), 4.0), (signal.SIGINT, (), 4.0)]
    plain = parse(web(stopsignal="INT", stopwaitsecs=4), MAIN, ENV).instances[0]
    assert [(s.signal, s.wait) for s in plain.stop_plan()] == [(signal.SIGINT, 4.0)]


def test_depends_on_unknown_repeated_and_cycles():
    data = {"program": {
        "a": {"command": "x", "depends_on": ["b", "nope"]},
        "b": {"command": "x", "depends_on": ["c"]},
        "c": {"command": "x", "depends_on": ["a"]},
        "d": {"command": "x", "depends_on": ["d"]},
        "e": {"command": "x", "depends_on": ["a", "a"]},
    }}
    assert problems(data) == [
        f'{MAIN}: program.e.depends_on[1]: "a" is listed twice',
        f'{MAIN}: program.a.depends_on[1]: no program named "nope" (programs: a, b, c, d, e)',
        f"{MAIN}: program.a.depends_on: dependency cycle: a -> b -> c -> a",
        f"{MAIN}: program.d.depends_on: dependency cycle: d -> d",
    ]


def test_depends_on_a_diamond_is_fine():
    data = {"program": {
        "web": {"command": "x", "depends_on": ["cache", "db"]},
        "cache": {"command": "x", "depends_on": ["db"]},
        "db": {"command": "x"},
    }}
    cfg = parse(data, MAIN, ENV)
    assert [(d.program, d.condition) for d in cfg.program("web").depends_on] == [("cache", "ready"), ("db", "ready")]


def test_depends_on_conditions():
    data = {"program": {
        "web": {"command": "x", "depends_on": {"migrate": "completed", "db": "READY", "cache": "started"}},
        "migrate": {"command": "x"}, "db": {"command": "x"}, "cache": {"command": "x"},
    }}
    deps = parse(data, MAIN, ENV).program("web").depends_on
    assert [(d.program, d.condition) for d in deps] == [("migrate", "completed"), ("db", "ready"), ("cache", "started")]
    data["program"]["web"]["depends_on"] = {"db": "healthy"}
    assert problems(data) == [
        f'{MAIN}: program.web.depends_on.db: expected one of "ready", "started", "completed", got "healthy" (string)']
    data["program"]["web"]["depends_on"] = {"nope": "ready"}
    assert problems(data) == [
        f'{MAIN}: program.web.depends_on.nope: no program named "nope" (programs: cache, db, migrate, web)']


def test_completed_needs_a_program_that_can_complete():
    data = {"program": {"web": {"command": "x", "depends_on": {"migrate": "completed"}},
                        "migrate": {"command": "x", "autorestart": True}}}
    assert problems(data) == [
        f'{MAIN}: program.web.depends_on.migrate: "migrate" has autorestart = true: it never completes '
        '(give it autorestart = false or "unexpected")']


def test_a_command_step_needs_time():
    assert problems(web(stop_sequence=[{"exec": "drain", "wait": 0}])) == [
        f"{MAIN}: program.web.stop_sequence[0].wait: expected a number > 0, got 0 (integer)"]


def test_events_superd_cannot_send_are_refused_with_why():
    assert problems(web(events=["PROCESS_STATE", "PROCESS_LOG", "TICK_7"])) == [
        f'{MAIN}: program.web.events[1]: "PROCESS_LOG" is a supervisord event superd cannot send: '
        "superd does not copy program output to event listeners",
        f'{MAIN}: program.web.events[2]: unknown event type "TICK_7"; expected one of '
        + ", ".join(config.eventkeys.SUPPORTED_EVENTS),
    ]
    assert problems(web(events=["PROCESS_STATE"], stdout="console")) == [
        f"{MAIN}: program.web.stdout: an event listener's stdout is its channel to superd: leave stdout unset"]


def test_a_command_string_splits_as_shlex_splits_it():
    """Plain command strings take a fast path (str.split); whatever the
    string, the result is shlex's, and what shlex refuses is refused."""
    import random
    import shlex

    from supervisor.config.checks import Invalid, command

    rng = random.Random(7)
    alphabet = ["a", "b", "-", "/", "=", "#", "$", " ", "  ", "\t", "\n", "\r", "'", '"', "\\",
                "\x0b", "\x0c", "\xa0", "\u2003", "é"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        try:
            want = tuple(shlex.split(text))
        except ValueError:
            with pytest.raises(Invalid):
                command(text)
            continue
        if not want or not want[0]:
            with pytest.raises(Invalid):
                command(text)
        else:
            assert command(text) == want, repr(text)
