"""superd import-supervisord: supervisord.conf (INI) -> superd TOML.

Every conversion is checked the way superd will see it: the TOML is written to
a file and read back with superd's own config loader, then the values (and the
warnings printed on stderr) are compared with what they must be.
"""

from __future__ import annotations

import grp
import os
import platform
import pwd
import signal
import textwrap
from pathlib import Path
from typing import Optional

import pytest

from supervisor.config import Autorestart, Config, load, tomllib
from supervisor.migrate import convert, main, to_toml

pytestmark = pytest.mark.timeout(30)

ME = pwd.getpwuid(os.geteuid()).pw_name
MY_GROUP = grp.getgrgid(os.getegid()).gr_name
MB = 1 << 20


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def run(conf: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    """main() on ``conf``: exit code, stdout, stderr lines."""
    code = main([str(conf), *args])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def load_text(text: str, where: Path, environ: Optional[dict[str, str]] = None) -> Config:
    """The TOML as superd reads it, from a file in ``where``."""
    target = where / "superd.toml"
    target.write_text(text)
    return load(str(target), environ=environ or {})


def convert_and_load(conf: Path, capsys: pytest.CaptureFixture[str],
                     environ: Optional[dict[str, str]] = None) -> tuple[Config, list[str], str]:
    code, out, err = run(conf, capsys)
    assert code == 0, err
    return load_text(out, conf.parent.parent / "out", environ), err, out


def program_conf(tmp_path: Path, body: str, *, name: str = "app", extra: str = "") -> Path:
    """A supervisord.conf with one [program:NAME] holding ``body``."""
    return write(tmp_path / "etc" / "supervisord.conf",
                 f"[supervisord]\nnodaemon=true\n\n[program:{name}]\n"
                 + textwrap.dedent(body).strip() + "\n" + textwrap.dedent(extra))


@pytest.fixture(autouse=True)
def _out_dir(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()


# --------------------------------------------------------------------------
# A realistic deployment: web app + celery workers, group, include, sockets

@pytest.fixture
def shop(tmp_path: Path) -> dict[str, Path]:
    etc = tmp_path / "etc"
    main_conf = write(etc / "supervisord.conf", f"""
        ; supervisord.conf for the shop
        [unix_http_server]
        file=%(here)s/run/supervisor.sock   ; the control socket
        chmod=0770                          ; ops may use supervisorctl
        chown={ME}:{MY_GROUP}
        username=ops
        password={{SHA}}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d

        [inet_http_server]
        port=127.0.0.1:9001
        username=admin
        password=secret

        [supervisord]
        logfile=/var/log/supervisor/supervisord.log
        logfile_maxbytes=50MB
        logfile_backups=10
        loglevel=warn
        pidfile=/run/supervisord.pid
        nodaemon=true
        minfds=4096
        childlogdir=%(here)s/logs
        environment=APP_ENV="production",TZ=UTC

        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

        [supervisorctl]
        serverurl=unix://%(here)s/run/supervisor.sock

        [include]
        files = conf.d/*.conf

        [group:shop]
        programs=web,worker
        priority=500
        """)
    web = write(etc / "conf.d" / "web.conf", f"""
        [program:web]
        command=/srv/shop/venv/bin/gunicorn --workers 4 --bind 127.0.0.1:%(ENV_PORT)s shop.wsgi:application
        directory=/srv/shop
        environment=DJANGO_SETTINGS_MODULE="shop.settings",PATH="/srv/shop/venv/bin:%(ENV_PATH)s",
            ALLOWED_HOSTS="shop.example.com,www.shop.example.com"
        user={ME}
        autorestart=true
        stopsignal=QUIT
        stopwaitsecs=30
        stopasgroup=true
        redirect_stderr=true
        stdout_logfile=%(here)s/%(program_name)s.log
        stdout_logfile_maxbytes=50MB
        stdout_logfile_backups=5
        """)
    workers = write(etc / "conf.d" / "workers.conf", """
        # celery: 4 workers and the scheduler
        [program:worker]
        command=celery --app shop worker --hostname worker%(process_num)02d@%%h --loglevel INFO
        process_name=%(program_name)s_%(process_num)02d
        numprocs=4
        directory=/srv/shop
        priority=200
        stopwaitsecs=600
        killasgroup=true
        stdout_logfile=AUTO
        stdout_logfile_maxbytes=10MB
        stderr_logfile=NONE
        stdout_events_enabled=true

        [program:beat]
        command=celery --app shop beat --schedule %(ENV_STATE_DIR)s/beat-schedule
        autostart=no
        startsecs=0
        startretries=0
        exitcodes=0,2
        stdout_logfile=/dev/stdout
        stdout_logfile_maxbytes=0
        stderr_logfile=/dev/stderr
        stderr_logfile_maxbytes=0

        [eventlistener:crashmail]
        command=crashmail -a -m ops@example.com
        events=PROCESS_STATE_EXITED
        """)
    write(etc / "conf.d" / "README", "not a .conf file: [include] must not read it\n[program:nope]\n")
    return {"etc": etc, "main": main_conf, "web": web, "workers": workers}


SHOP_ENV = {"PORT": "8000", "PATH": "/usr/bin:/bin", "STATE_DIR": "/var/lib/shop"}


def test_shop_daemon_settings(shop: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cfg, _, _ = convert_and_load(shop["main"], capsys, SHOP_ENV)
    etc = shop["etc"]
    daemon = cfg.daemon
    assert daemon.socket == str(etc / "run" / "supervisor.sock")
    assert daemon.socket_mode == 0o770
    assert daemon.socket_group == MY_GROUP
    assert daemon.allow_groups == (MY_GROUP,)
    assert daemon.allow_users == (() if ME == "root" else (ME,))
    assert daemon.log_level == "warning"
    assert daemon.logs_dir == str(etc / "logs")
    assert (daemon.log_file, daemon.log_file_maxbytes, daemon.log_file_backups) == (
        "/var/log/supervisor/supervisord.log", 50 << 20, 10)
    # stop windows 30 s (web, priority 500), 600 s (worker, 200), 10 s (beat, 999):
    # 640 s plus superd's reserve and kill margins
    assert daemon.shutdown_timeout == 642


def test_shop_programs(shop: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cfg, _, _ = convert_and_load(shop["main"], capsys, SHOP_ENV)
    assert [p.name for p in cfg.programs] == ["beat", "crashmail", "web", "worker"]
    # supervisord's names: process_name and the group carry over
    assert [i.name for i in cfg.instances] == [
        "worker_00", "worker_01", "worker_02", "worker_03", "web", "beat", "crashmail"]
    assert [(g.name, g.programs) for g in cfg.groups] == [("shop", ("web", "worker"))]
    assert {i.name: i.group for i in cfg.instances} == {
        "worker_00": "shop", "worker_01": "shop", "worker_02": "shop", "worker_03": "shop", "web": "shop",
        "beat": "beat", "crashmail": "crashmail"}

    web = cfg.program("web")
    assert web.directory == "/srv/shop"
    assert web.user == ME
    assert web.priority == 500                      # the group's priority
    assert web.autorestart is Autorestart.ALWAYS
    assert web.stopsignal == signal.SIGQUIT
    assert web.stopwaitsecs == 30
    assert (web.stopasgroup, web.killasgroup) == (True, True)
    assert web.stdout_maxbytes == 50 * MB
    assert web.stdout_backups == 5
    instance = cfg.instance("web")
    assert instance.command == ("/srv/shop/venv/bin/gunicorn", "--workers", "4",
                                "--bind", "127.0.0.1:8000", "shop.wsgi:application")
    assert instance.environment == (
        ("APP_ENV", "production"), ("TZ", "UTC"),
        ("DJANGO_SETTINGS_MODULE", "shop.settings"),
        ("PATH", "/srv/shop/venv/bin:/usr/bin:/bin"),
        ("ALLOWED_HOSTS", "shop.example.com,www.shop.example.com"))
    # %(here)s is the folder of the file the line is in: the included one
    assert instance.stdout == str(shop["etc"] / "conf.d" / "web.log")
    assert instance.stderr == "stdout"

    worker = cfg.program("worker")
    assert (worker.numprocs, worker.priority, worker.stopwaitsecs) == (4, 200, 600)
    assert (worker.stopasgroup, worker.killasgroup) == (False, True)
    assert worker.autorestart is Autorestart.UNEXPECTED
    assert (worker.stdout, worker.stderr, worker.stdout_maxbytes) == ("auto", "null", 10 * MB)
    assert cfg.instance("worker_02").command == (
        "celery", "--app", "shop", "worker", "--hostname", "worker2@%h", "--loglevel", "INFO")
    assert cfg.instance("worker_02").environment == (("APP_ENV", "production"), ("TZ", "UTC"))

    beat = cfg.program("beat")
    assert beat.autostart is False
    assert (beat.startsecs, beat.startretries, beat.exitcodes) == (0, 0, frozenset({0, 2}))
    assert (beat.stdout, beat.stderr) == ("inherit", "inherit")  # /dev/stdout, maxbytes=0
    assert beat.priority == 999
    assert cfg.instance("beat").command[-1] == "/var/lib/shop/beat-schedule"
    assert cfg.program("nope") is None


def test_shop_warnings(shop: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(shop["main"], capsys)
    assert code == 0
    main_conf, workers = shop["main"], shop["workers"]
    expected = [
        f"note: {main_conf}: [supervisord] logfile: becomes log_file: superd writes its own log there "
        "as well as to stderr (its folder must exist)",
        f"warning: {main_conf}: [supervisord] minfds: superd does not raise resource limits: set "
        "them where superd starts (systemd LimitNOFILE=, docker --ulimit, ulimit); dropped",
        f"note: {main_conf}: [supervisord] pidfile: superd writes no pid file (superctl pid "
        "prints its pid); dropped",
        f"note: {main_conf}: [supervisord] loglevel: 'warn' becomes 'warning' (superd's levels: "
        "debug, info, warning, error)",
        f"warning: {main_conf}: [unix_http_server] username: superd has no password: it checks "
        "the peer's uid/gid on the socket (root, its own user, allow_users, allow_groups); dropped",
        f"warning: {main_conf}: [inet_http_server]: superd has no HTTP server, only its unix "
        "control socket; port 127.0.0.1:9001 is not carried over (superctl works over the socket)",
        f"note: {main_conf}: [group:shop] priority: web takes its group's priority 500",
        f"warning: {main_conf}: [group:shop] priority: superd orders programs by their own "
        "priority: worker keeps 200, the group's 500 is not carried over",
        f"warning: {workers}: [program:worker] command: %(process_num)02d: becomes "
        "${SUPERD_PROCESS_NUM}, a plain number: the format 02d is lost (no zero-padding)",
        f"warning: {workers}: [program:worker] stdout_events_enabled: superd has no event "
        "listeners; dropped",
    ]
    for line in expected:
        assert line in err
    # supervisorctl and rpcinterface sections: one note for all of them
    control = [line for line in err if "[supervisorctl]" in line or "[rpcinterface:" in line]
    assert control == [f"note: {main_conf}: [rpcinterface:supervisor], [supervisorctl]: only for "
                       "supervisorctl and XML-RPC, which superctl and its socket replace; dropped"]
    assert any(line.startswith(f"warning: {main_conf}: the programs' stopwaitsecs add up to 640 s "
                               "over 3 priorities") and "shutdown_timeout = 642" in line
               for line in err)
    # beat and web convert completely: nothing to say about them, nor about the group's members
    assert not [line for line in err if "[program:beat]" in line or "[program:web]" in line]
    assert not [line for line in err if "process_name" in line or "[group:shop]:" in line]
    assert all(line.startswith(("warning: ", "note: ")) for line in err)


def test_shop_output_is_deterministic_and_names_its_sources(
        shop: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    first = run(shop["main"], capsys)
    second = run(shop["main"], capsys)
    assert first == second
    out = first[1]
    assert out.startswith(f"# superd config converted from the supervisord config {shop['main']}\n"
                          "# and the files it includes: conf.d/web.conf, conf.d/workers.conf\n")
    assert "# [program:worker] in " in out and 'supervisord group "shop"' in out
    assert 'stdout_maxbytes = "50MB"' in out       # sizes stay readable
    assert "warning:" not in out and "note:" not in out


def test_output_file(shop: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "converted.toml"
    code, out, err = run(shop["main"], capsys, "-o", str(target))
    assert (code, out) == (0, "")
    cfg = load(str(target), environ=SHOP_ENV)
    assert cfg.program("crashmail").events == ("PROCESS_STATE_EXITED",)  # [eventlistener:crashmail]
    assert cfg.program("web") is not None
    # never over the supervisord config itself
    before = shop["main"].read_text()
    code, _, err = run(shop["main"], capsys, "--output", str(shop["main"]))
    assert code == 2
    assert err[-1] == f"superd import-supervisord: refusing to overwrite the supervisord config {shop['main']}"
    assert shop["main"].read_text() == before


# --------------------------------------------------------------------------
# Expansions

def test_expansions(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIO", "42")
    conf = write(tmp_path / "etc" / "supervisord.conf", """
        [supervisord]
        nodaemon=true
        environment=LOGS="/var/log/apps",GREETING_DEFAULT=hello

        [program:app]
        command=sh -c 'echo $$ ${HOME} $HOME %(ENV_GREETING)s$%(ENV_X)s 100%% %(program_name)s'
        environment=DATA="%(here)s/data",TEMPLATE="${name}",NODE=%(host_node_name)s,
            WHO="%(ENV_GREETING_DEFAULT)s"
        directory=%(ENV_DATA)s
        stdout_logfile=%(ENV_LOGS)s/%(group_name)s-%(program_name)s-%(process_num)02d.log
        priority=%(ENV_PRIO)s

        [group:apps]
        programs=app
        """)
    environ = {"GREETING": "hi", "X": "ex", "HOSTNAME": "box1", "HOME": "/home/u"}
    cfg, err, out = convert_and_load(conf, capsys, environ)
    etc = tmp_path / "etc"
    app = cfg.instance("app")
    # $$ and ${...} of the supervisord config stay literal; %(ENV_X)s becomes ${X}
    assert app.command == ("sh", "-c", "echo $$ ${HOME} $HOME hi$ex 100% app")
    assert 'command = "sh -c \'echo $$$ $${HOME} $HOME ${GREETING}$$${X} 100% app\'"' in out
    assert dict(app.environment) == {
        "LOGS": "/var/log/apps", "GREETING_DEFAULT": "hello",
        "DATA": str(etc / "data"), "TEMPLATE": "${name}", "NODE": "box1", "WHO": "hello"}
    # %(ENV_DATA)s names the program's own environment: its value, not ${DATA}
    assert app.directory == str(etc / "data")
    # a single process: %(process_num)02d is known, "00"
    assert app.stdout == "/var/log/apps/apps-app-00.log"
    assert app.program.priority == 42
    assert (f"warning: {conf}: [program:app] priority: superd does not expand variables in this "
            "setting; used the current value of $PRIO: '42'") in err
    # the host superd runs on, not the one that converted the config
    assert 'NODE = "${HOSTNAME}"' in out and platform.node() not in out.replace("box1", "")
    assert any("[program:app] environment: %(host_node_name)s: written as ${HOSTNAME}, expanded "
               "where superd runs" in line for line in err)
    again = load_text(out, tmp_path / "out", {**environ, "HOSTNAME": "box2"})
    assert dict(again.instance("app").environment)["NODE"] == "box2"


def test_expansion_problems_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPERD_TEST_UNSET", raising=False)
    conf = program_conf(tmp_path, """
        command=run 50% %(nonsense)s %(ENV_A-B)s
        user=%(ENV_SUPERD_TEST_UNSET)s
        numprocs=2
        umask=%(process_num)d
        """)
    cfg, err, _ = convert_and_load(conf, capsys)
    assert cfg.instance("app_0").command == ("run", "50%", "%(nonsense)s", "%(ENV_A-B)s")
    assert cfg.program("app").user is None
    assert cfg.program("app").umask is None
    for fragment in (
            '[program:app] command: a lone "%" (supervisord needs "%%"',
            "[program:app] command: %(nonsense)s: supervisord has no such expansion here",
            "[program:app] command: %(ENV_A-B)s: 'A-B' is not a name superd can expand",
            "[program:app] user: superd does not expand variables in this setting and "
            "$SUPERD_TEST_UNSET is not set here to resolve it now; dropped",
            "[program:app] umask: superd does not expand variables in this setting and the process "
            "number differs between instances; dropped"):
        assert any(fragment in line for line in err), fragment


# --------------------------------------------------------------------------
# Program settings

@pytest.mark.parametrize(("numprocs", "start", "pattern", "names", "written"), [
    (1, None, None, ["app"], False),
    (1, None, "%(program_name)s", ["app"], False),
    (3, None, "%(program_name)s_%(process_num)d", ["app_0", "app_1", "app_2"], False),
    (3, None, "%(program_name)s_%(process_num)s", ["app_0", "app_1", "app_2"], False),
    (3, 0, "app_%(process_num)d", ["app_0", "app_1", "app_2"], False),
    (2, None, "%(program_name)s-%(process_num)d", ["app-0", "app-1"], True),
    (12, None, "%(program_name)s_%(process_num)02d", [f"app_{n:02d}" for n in range(12)], True),
    (2, 1, "%(program_name)s_%(process_num)d", ["app_1", "app_2"], False),
    (2, 5, "%(program_name)s-%(process_num)03d-of-%(numprocs)d", ["app-005-of-2", "app-006-of-2"], True),
    (1, None, "web", ["web"], True),
    (1, 7, "%(group_name)s.%(process_num)d", ["app.7"], True),
])
def test_process_names_are_supervisords(tmp_path: Path, capsys: pytest.CaptureFixture[str], numprocs: int,
                                        start: Optional[int], pattern: Optional[str], names: list[str],
                                        written: bool) -> None:
    body = f"command=run ${{SUPERD_PROCESS_NUM}}\nnumprocs={numprocs}\n"
    body += "" if start is None else f"numprocs_start={start}\n"
    body += "" if pattern is None else f"process_name={pattern}\n"
    cfg, err, out = convert_and_load(program_conf(tmp_path, body), capsys)
    assert [i.name for i in cfg.instances] == names
    assert [i.num for i in cfg.instances] == list(range(start or 0, (start or 0) + numprocs))
    assert {i.group for i in cfg.instances} == {"app"}
    # the template is written only where superd's default names differ
    assert ("process_name = " in out) == written
    assert ("numprocs_start = " in out) == bool(start)
    assert not [line for line in err if "process_name" in line or "numprocs_start" in line]


@pytest.mark.parametrize(("numprocs", "pattern", "warning"), [
    (2, None, "has no %(process_num) while numprocs > 1 (supervisord refuses this); superd names the "
              "processes app_0, app_1"),
    (2, "app", "has no %(process_num) while numprocs > 1 (supervisord refuses this); superd names the "
               "processes app_0, app_1"),
    (1, "my app", "supervisord named a process 'my app'; superd's names take letters, digits, _, . and -: "
                  "dropped, superd names the processes app"),
    (1, "%(nope)s", "'%(nope)s' cannot be expanded ('nope'); superd names the processes app"),
])
def test_process_names_superd_cannot_keep(tmp_path: Path, capsys: pytest.CaptureFixture[str], numprocs: int,
                                          pattern: Optional[str], warning: str) -> None:
    body = f"command=run\nnumprocs={numprocs}\n" + ("" if pattern is None else f"process_name={pattern}\n")
    cfg, err, out = convert_and_load(program_conf(tmp_path, body), capsys)
    assert [i.name for i in cfg.instances] == (["app"] if numprocs == 1 else ["app_0", "app_1"])
    assert "process_name = " not in out
    assert [line.split("process_name: ", 1)[1] for line in err if "] process_name:" in line] == [warning]


@pytest.mark.parametrize(("supervisord", "superd"), [
    ("AUTO", "auto"), ("auto", "auto"), ("NONE", "null"), ("off", "null"),
    ("/dev/null", "null"), ("/dev/stdout", "console"), ("/dev/stderr", "console"),
    ("/var/log/app/out.log", "/var/log/app/out.log"),
])
def test_log_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str], supervisord: str,
                     superd: str) -> None:
    conf = program_conf(tmp_path, f"command=run\nstdout_logfile={supervisord}\n"
                                  f"stderr_logfile={supervisord}\n")
    cfg, err, _ = convert_and_load(conf, capsys)
    assert (cfg.instance("app").stdout, cfg.instance("app").stderr) == (superd, superd)
    assert err == []


@pytest.mark.parametrize(("size", "written", "parsed"), [
    ("50MB", '"50MB"', 50 * MB), ("50mb", '"50MB"', 50 * MB), ("10kb", '"10KB"', 10240),
    ("1GB", '"1GB"', 1 << 30), ("2048MB", '"2GB"', 2 << 30), ("1024", '"1KB"', 1024),
    ("3000", "3000", 3000), ("0", "0", 0),
])
def test_log_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str], size: str, written: str,
                   parsed: int) -> None:
    conf = program_conf(tmp_path, f"command=run\nstdout_logfile=/var/log/app.log\n"
                                  f"stdout_logfile_maxbytes={size}\nstderr_logfile_maxbytes={size}\n"
                                  "stdout_logfile_backups=0\nstderr_logfile_backups=3\n")
    cfg, err, out = convert_and_load(conf, capsys)
    app = cfg.program("app")
    assert (app.stdout_maxbytes, app.stderr_maxbytes) == (parsed, parsed)
    assert (app.stdout_backups, app.stderr_backups) == (0, 3)
    assert f"stdout_maxbytes = {written}" in out
    assert err == []


def test_log_settings_that_do_not_carry_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = program_conf(tmp_path, """
        command=run
        stdout_logfile=syslog
        stdout_logfile_maxbytes=1.5MB
        stderr_logfile=relative/err.log
        stderr_logfile_maxbytes=lots
        stderr_logfile_backups=-1
        stdout_capture_maxbytes=1MB
        stderr_capture_maxbytes=0
        stdout_syslog=true
        stderr_events_enabled=false
        """)
    cfg, err, _ = convert_and_load(conf, capsys)
    app = cfg.program("app")
    assert app.stdout == "console"
    assert cfg.instance("app").stderr == str(tmp_path / "out" / "relative" / "err.log")
    assert (app.stderr_maxbytes, app.stderr_backups) == (50 * MB, 10)    # superd's defaults
    prefix = f"warning: {conf}: [program:app] "
    assert err == [
        prefix + 'stdout_logfile: superd does not write to syslog: "console" instead (under '
                 "systemd, the journal)",
        prefix + "stderr_logfile: a relative path: supervisord resolves it against its working "
                 "directory, superd against the folder of its config file; better make it absolute",
        prefix + "stderr_logfile_maxbytes: 'lots': expected a size like \"50MB\" (bytes, KB, MB or "
                 "GB); dropped",
        prefix + "stderr_logfile_backups: '-1': expected an integer >= 0; dropped",
        prefix + "stdout_capture_maxbytes: superd has no capture mode (it feeds supervisord's "
                 "events); dropped",
        prefix + "stdout_syslog: superd does not write to syslog; under systemd, stdout = "
                 '"console" sends the output to the journal; dropped',
    ]


def test_redirect_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = program_conf(tmp_path, """
        command=run
        redirect_stderr=true
        stdout_logfile=/var/log/app.log
        stderr_logfile=/var/log/app.err
        stderr_logfile_maxbytes=1MB
        """)
    cfg, err, out = convert_and_load(conf, capsys)
    assert (cfg.instance("app").stdout, cfg.instance("app").stderr) == ("/var/log/app.log", "stdout")
    assert "stderr_maxbytes" not in out
    assert err == [f"note: {conf}: [program:app] stderr_logfile: ignored by supervisord too, since "
                   "redirect_stderr is true; dropped"]


@pytest.mark.parametrize(("word", "value"), [
    ("true", True), ("TRUE", True), ("yes", True), ("on", True), ("1", True),
    ("false", False), ("No", False), ("off", False), ("0", False),
])
def test_booleans(tmp_path: Path, capsys: pytest.CaptureFixture[str], word: str, value: bool) -> None:
    conf = program_conf(tmp_path, f"command=run\nautostart={word}\nstopasgroup={word}\n"
                                  f"killasgroup={word}\nautorestart={word}\n")
    cfg, err, _ = convert_and_load(conf, capsys)
    app = cfg.program("app")
    assert (app.autostart, app.stopasgroup, app.killasgroup) == (value, value, value)
    assert app.autorestart is (Autorestart.ALWAYS if value else Autorestart.NEVER)
    assert err == []


def test_program_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = program_conf(tmp_path, f"""
        command=/usr/bin/env python3 -m "my app" --flag='a b'
            --path C:\\temp
        autorestart=Unexpected
        exitcodes=0,3,255
        startsecs=5
        startretries=7
        stopsignal=sighup
        stopwaitsecs=0
        umask=027
        user={ME}
        priority=-5
        """)
    cfg, err, out = convert_and_load(conf, capsys)
    app = cfg.program("app")
    assert app.command == ("/usr/bin/env", "python3", "-m", "my app", "--flag=a b", "--path", "C:temp")
    assert app.autorestart is Autorestart.UNEXPECTED
    assert app.exitcodes == frozenset({0, 3, 255})
    assert (app.startsecs, app.startretries, app.stopwaitsecs) == (5, 7, 0)
    assert app.stopsignal == signal.SIGHUP
    assert 'stopsignal = "HUP"' in out
    assert app.umask == 0o027 and 'umask = "027"' in out
    assert (app.user, app.priority) == (ME, -5)
    assert err == []


def test_invalid_program_values_are_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = program_conf(tmp_path, """
        command=run
        autostart=maybe
        autorestart=sometimes
        exitcodes=0,256
        stopsignal=NOPE
        startretries=-1
        priority=high
        umask=089
        color=blue
        """)
    cfg, err, _ = convert_and_load(conf, capsys)
    app = cfg.program("app")
    assert (app.autostart, app.autorestart, app.exitcodes) == (True, Autorestart.UNEXPECTED, frozenset({0}))
    assert (app.stopsignal, app.startretries, app.priority, app.umask) == (signal.SIGTERM, 3, 999, None)
    keys = [line.split("[program:app] ")[1].split(":")[0] for line in err]
    assert keys == ["umask", "priority", "autostart", "autorestart", "exitcodes", "startretries",
                    "stopsignal", "color"]
    assert all(line.startswith("warning: ") and line.endswith("dropped") for line in err)


def test_environment_strings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = program_conf(tmp_path, """
        command=run
        environment=A="x,y", B='single, quoted' ,C=plain,D="",E="say \\"hi\\"",
            F=a=b,G="tab	here"
        """)
    cfg, err, _ = convert_and_load(conf, capsys)
    assert cfg.instance("app").environment == (
        ("A", "x,y"), ("B", "single, quoted"), ("C", "plain"), ("D", ""),
        ("E", 'say \\"hi\\"'), ("F", "a=b"), ("G", "tab\there"))
    assert err == []

    bad = program_conf(tmp_path, 'command=run\nenvironment=A="unterminated,B=2\n', name="bad")
    cfg, err, _ = convert_and_load(bad, capsys)
    assert cfg.instance("bad").environment == ()
    assert err == [f'warning: {bad}: [program:bad] environment: cannot parse (unbalanced " quote); dropped']


# --------------------------------------------------------------------------
# [supervisord], sockets, groups, odd sections

def test_daemon_umask_and_directory_go_to_the_programs(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path / "etc" / "supervisord.conf", """
        [supervisord]
        umask=007
        directory=/srv
        loglevel=blather

        [program:a]
        command=run

        [program:b]
        command=run
        umask=022
        directory=/opt
        """)
    cfg, err, _ = convert_and_load(conf, capsys)
    assert (cfg.program("a").umask, cfg.instance("a").directory) == (0o007, "/srv")
    assert (cfg.program("b").umask, cfg.instance("b").directory) == (0o022, "/opt")
    assert cfg.daemon.log_level == "debug"
    assert all(line.startswith("note: ") for line in err)

    # in the foreground supervisord applies neither
    conf.write_text(conf.read_text().replace("[supervisord]", "[supervisord]\nnodaemon=true"))
    cfg, err, _ = convert_and_load(conf, capsys)
    assert (cfg.program("a").umask, cfg.instance("a").directory) == (None, None)
    assert (f"note: {conf}: [supervisord] umask: supervisord applies it only when it daemonizes, "
            "and nodaemon is set; dropped") in err


def test_socket_open_to_everyone_and_unknown_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path / "etc" / "supervisord.conf", """
        [unix_http_server]
        file=/tmp/superd-migrate-test.sock
        chmod=0777
        backlog=5

        [supervisord]
        nodaemon=true
        user=nobody
        shinyness=11
        """)
    cfg, err, _ = convert_and_load(conf, capsys)
    assert (cfg.daemon.socket, cfg.daemon.socket_mode) == ("/tmp/superd-migrate-test.sock", 0o777)
    assert cfg.daemon.allow_users == () and cfg.daemon.allow_groups == ()
    assert err == [
        f"warning: {conf}: [supervisord] user: superd does not drop its own privileges: run "
        "superd as 'nobody' (systemd User=, docker USER), or give the programs user = 'nobody'; dropped",
        f"warning: {conf}: [supervisord] shinyness: unknown supervisord setting; dropped",
        f"warning: {conf}: [unix_http_server] chmod: supervisord let any local user reach the "
        "socket; superd accepts only root, its own user and the allow_users/allow_groups it names",
        f"warning: {conf}: [unix_http_server] backlog: unknown supervisord setting; dropped",
        f"warning: {conf}: no program was carried over",
    ]


def test_odd_sections_and_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path / "etc" / "supervisord.conf", """
        [supervisord]
        nodaemon=true

        [program:all]
        command=run

        [program:my app]
        command=run

        [program:nocommand]
        directory=/tmp

        [fcgi-program:php]
        command=php-cgi
        socket=unix:///run/php.sock

        [group:g]
        programs=all,ghost,php

        [unknown]
        x=1
        """)
    cfg, err, out = convert_and_load(conf, capsys)
    assert [p.name for p in cfg.programs] == ["all_", "my_app"]
    assert [(g.name, g.programs) for g in cfg.groups] == [("g", ("all_",))]  # by their superd names
    for fragment in (
            "[program:all]: superd program names take letters, digits, _, . and - and must be "
            "unique: named 'all_'",
            "[program:my app]: superd program names take letters, digits, _, . and - and must be "
            "unique: named 'my_app'",
            "[program:nocommand] command: missing (supervisord refuses this); the program is not "
            "carried over",
            "[group:g] programs: 'ghost' is an unknown program",
            "[group:g] programs: 'php' is an fcgi-program (not carried over)",
            "[fcgi-program:php]: superd does not create FastCGI sockets; not carried over",
            "[unknown]: unknown supervisord section; dropped"):
        assert any(fragment in line for line in err), fragment


def test_groups_carry_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path / "etc" / "supervisord.conf", """
        [supervisord]
        nodaemon=true

        [group:site]
        programs=gunicorn,nginx
        priority=300

        [group:web]
        programs=worker

        [group:empty]
        programs=php

        [program:gunicorn]
        command=gunicorn app:app

        [program:nginx]
        command=nginx -g 'daemon off;'
        priority=100

        [program:web]
        command=run-web

        [program:worker]
        command=work %(group_name)s %(process_num)d
        numprocs=2
        numprocs_start=1
        process_name=%(group_name)s-%(process_num)d

        [fcgi-program:php]
        command=php-cgi
        socket=unix:///run/php.sock
        """)
    cfg, err, out = convert_and_load(conf, capsys)
    assert [(g.name, g.programs) for g in cfg.groups] == [("site", ("gunicorn", "nginx")), ("web_", ("worker",))]
    assert {i.name: (i.group, i.program.priority) for i in cfg.instances} == {
        "gunicorn": ("site", 300), "nginx": ("site", 100), "web": ("web", 999),
        # supervisord's %(group_name)s is its group's, "web": so are the names
        "web-1": ("web_", 999), "web-2": ("web_", 999)}
    assert cfg.instance("web-2").command == ("work", "web", "2")
    assert out.index("[group.site]") < out.index("[program.gunicorn]")
    for line in (
            f"warning: {conf}: [group:web]: superd group names take letters, digits, _, . and - and may not be "
            "another program's: named 'web_'",
            f"warning: {conf}: [group:empty] programs: 'php' is an fcgi-program (not carried over)",
            f"note: {conf}: [group:site] priority: gunicorn takes its group's priority 300",
            f"warning: {conf}: [group:site] priority: superd orders programs by their own priority: nginx "
            "keeps 100, the group's 300 is not carried over"):
        assert line in err


def test_includes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc = tmp_path / "etc"
    conf = write(etc / "supervisord.conf", """
        [supervisord]
        nodaemon=true

        [include]
        files = programs/*.ini /nonexistent/*.conf more.conf

        [program:a]
        command=run a
        priority=5
        """)
    write(etc / "programs" / "b.ini", "[program:b]\ncommand=run b\n\n[include]\nfiles=../nested/*.conf\n")
    write(etc / "programs" / "a.ini", "[program:a]\npriority=7\nstopwaitsecs=3\n")   # merged into a
    write(etc / "more.conf", "[program:c]\ncommand=run %(here)s\n")
    write(etc / "nested" / "d.conf", "[program:d]\ncommand=run d\n")
    cfg, err, out = convert_and_load(conf, capsys)
    assert [p.name for p in cfg.programs] == ["a", "b", "c"]
    a = cfg.program("a")
    assert (a.command, a.priority, a.stopwaitsecs) == (("run", "a"), 7, 3)
    assert cfg.instance("c").command == ("run", str(etc))
    assert f"warning: {conf}: [include] files: no file matches '/nonexistent/*.conf'" in err
    assert (f"warning: {etc / 'programs' / 'b.ini'}: [include]: supervisord does not follow an "
            "[include] in an included file; ignored") in err
    assert "# and the files it includes: programs/a.ini, programs/b.ini, more.conf\n" in out


# --------------------------------------------------------------------------
# The TOML writer

def test_toml_writer_round_trips_awkward_strings() -> None:
    awkward = ['plain', 'with "double" quotes', "with 'single' quotes", "both ' and \"",
               "back\\slash", "C:\\path\\", "new\nline", "tab\there", "bell\x07", "del\x7f",
               "unicode ünï ✓", "", "trailing \\", "'", '"', "$${X}"]
    document = {"superd": {"log_level": "info"},
                'program."a.b"': {"command": awkward, "numprocs": 3, "autostart": False,
                                  "environment": {name: name for name in awkward if name}}}
    text = to_toml(document, ["header"], {'program."a.b"': ["a comment"]})
    data = tomllib.loads(text)
    assert data["program"]["a.b"]["command"] == awkward
    assert data["program"]["a.b"]["environment"] == {name: name for name in awkward if name}
    assert (data["program"]["a.b"]["numprocs"], data["program"]["a.b"]["autostart"]) == (3, False)
    assert text.startswith("# header\n")
    assert "# a comment\n[program.\"a.b\"]\n" in text


# --------------------------------------------------------------------------
# The command

def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-supervisord.conf"
    code, out, err = run(missing, capsys)
    assert (code, out) == (2, "")
    assert err == [f"superd import-supervisord: cannot read {missing}: No such file or directory"]


def test_not_ini(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path / "bad.conf", "command=run\n")
    code, out, err = run(bad, capsys)
    assert (code, out) == (2, "")
    assert err[0].startswith(f"superd import-supervisord: cannot read {bad}: not a supervisord "
                             "(INI) config: File contains no section headers")
    with pytest.raises(Exception, match="No such file"):
        convert(str(tmp_path / "nope.conf"))


def test_usage_errors() -> None:
    assert main([]) == 2
    assert main(["a.conf", "--bogus"]) == 2


def test_eventlistener_becomes_a_program_with_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path / "etc" / "supervisord.conf", """
        [supervisord]
        [eventlistener:mon]
        command=crashmail -a -m ops@example.com
        events=PROCESS_STATE_EXITED, TICK_60, PROCESS_LOG_STDOUT
        buffer_size=50
        stdout_logfile=/var/log/mon.log
        """)
    cfg, err, _ = convert_and_load(conf, capsys)
    program = cfg.program("mon")
    assert program.events == ("PROCESS_STATE_EXITED", "TICK_60") and program.buffer_size == 50
    assert cfg.instance("mon").stdout == "auto"
    assert any("PROCESS_LOG_STDOUT" in line and "dropped" in line for line in err)


def test_unrotated_dev_stdout_becomes_inherit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = program_conf(tmp_path, "command=run\nstdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n"
                                  "stderr_logfile=/dev/stderr\nstderr_logfile_maxbytes=0\n")
    cfg, err, _ = convert_and_load(conf, capsys)
    assert (cfg.instance("app").stdout, cfg.instance("app").stderr) == ("inherit", "inherit")
    assert err == []
