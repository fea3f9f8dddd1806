"""The two supervisors under test, behind one small interface.

The bench never imports either ``supervisor`` package (both have that name):
it talks to superd with newline-delimited JSON-RPC and to supervisord with
XML-RPC over its unix socket, each with a few lines of client code here, and
runs their control commands as subprocesses. superd with ``[http]`` (kind
``superd+http``) also answers the same XML-RPC over HTTP on a unix socket of
its own.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import time
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import _procs

# Variables that would make a daemon import the wrong ``supervisor``, talk to
# systemd, or pick up another config; PYTHONDONTWRITEBYTECODE would make a
# daemon compile its modules from source at every start.
_SCRUB = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "PYTHONUSERBASE", "NOTIFY_SOCKET",
          "SUPERD_SOCKET", "SUPERD_CONFIG", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


def clean_env(extra: Optional[dict] = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(extra or {})
    return env


class Unreachable(Exception):
    """The daemon's control socket is not there (yet) or answered nothing."""


# --------------------------------------------------------------------------- clients


def jsonrpc(path: str, method: str, params: Optional[dict] = None, timeout: float = 30.0):
    """One newline-delimited JSON-RPC 2.0 call to superd on a fresh connection."""
    request = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        request["params"] = params
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(json.dumps(request).encode() + b"\n")
            chunks = []
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise Unreachable(f"{path}: connection closed before a reply")
                chunks.append(chunk)
                if b"\n" in chunk:
                    break
    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError) as exc:
        raise Unreachable(f"{path}: {exc}") from None
    reply = json.loads(b"".join(chunks).split(b"\n", 1)[0])
    if "error" in reply:
        raise RuntimeError(f"superd {method}: {reply['error']}")
    return reply["result"]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._unix_path = path
        self._timeout = timeout

    def make_connection(self, host):  # noqa: D102 - xmlrpc API
        return _UnixHTTPConnection(self._unix_path, self._timeout)


def xmlrpc_call(path: str, method: str, *args, timeout: float = 30.0):
    """One XML-RPC call over HTTP on a unix socket (supervisord's, or superd's ``[http]``
    listener) on a fresh connection."""
    proxy = xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=_UnixTransport(path, timeout))
    target = proxy
    for part in method.split("."):
        target = getattr(target, part)
    try:
        return target(*args)
    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
            http.client.RemoteDisconnected) as exc:
        raise Unreachable(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- programs


@dataclass
class Program:
    name: str
    command: list[str]
    autostart: bool = True
    autorestart: str = "false"          # "true" | "false" | "unexpected"
    startsecs: float = 0
    stopwaitsecs: float = 1
    exitcodes: tuple = (0,)
    stdout: Optional[str] = None        # None: the daemon's default; "null"; or a file path
    stderr: Optional[str] = None        # None: the daemon's default; or "null"
    stdout_maxbytes: int = 1 << 30
    numprocs: int = 1                   # > 1: a pool of instances NAME_0, NAME_1, ...


@dataclass
class SuperdLaunch:
    """How superd and superctl are started from the checkout."""

    daemon: list[str]    # argv before "-c CONFIG"
    ctl: list[str]       # argv before "-s SOCKET status"
    pythonpath: str      # the checkout (and site-packages when site is skipped)


@dataclass
class Daemon:
    """One run of one supervisor in a directory of its own."""

    kind: str
    workdir: Path
    socket: str = ""
    proc: Optional[subprocess.Popen] = None
    launched_mono: float = 0.0
    launched_wall: float = 0.0
    programs: list[Program] = field(default_factory=list)

    # -- to be provided --------------------------------------------------------
    def argv(self, config: Path) -> list[str]: ...  # pragma: no cover
    def env(self) -> dict: ...  # pragma: no cover
    def config_text(self, programs: list[Program]) -> str: ...  # pragma: no cover
    def states(self) -> dict[str, str]: ...  # pragma: no cover
    def ready(self) -> bool: ...  # pragma: no cover
    def start_program(self, name: str) -> None: ...  # pragma: no cover
    def status_argv(self) -> list[str]: ...  # pragma: no cover
    def reload_argv(self) -> list[str]: ...  # pragma: no cover
    def daemon_side_all_running(self) -> Optional[float]: ...  # pragma: no cover
    def http_rpc_socket(self) -> Optional[str]: ...  # pragma: no cover

    # -- common ------------------------------------------------------------------
    def launch(self, programs: list[Program]) -> "Daemon":
        config = self.write_config(programs)
        self._out = open(self.workdir / "daemon.stdout", "wb")
        self._err = open(self.workdir / "daemon.stderr", "wb")
        self.launched_wall = time.time()
        self.launched_mono = time.monotonic()
        self.proc = _procs.launch(self.argv(config), cwd=str(self.workdir), env=self.env(),
                                  stdout=self._out, stderr=self._err)
        return self

    def write_config(self, programs: list[Program]) -> Path:
        """(Re)write the daemon's config file for ``programs``; a reload reads it again."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.programs = programs
        config = self.workdir / self.config_name
        config.write_text(self.config_text(programs))
        return config

    def instances(self) -> int:
        """How many processes the config runs (a pool counts each of its instances)."""
        return sum(p.numprocs for p in self.programs)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.kind} exited with {self.proc.returncode if self.proc else None}:\n{self.log_tail()}")

    def safe_states(self) -> Optional[dict[str, str]]:
        try:
            return self.states()
        except (Unreachable, OSError, socket.timeout, xmlrpc.client.Fault, RuntimeError):
            return None

    def wait_ready(self, timeout: float) -> None:
        def up():
            self.check_alive()
            try:
                return self.ready()
            except (Unreachable, OSError, xmlrpc.client.Fault, RuntimeError):
                return False

        if not _procs.wait_until(up, timeout, 0.01):
            raise RuntimeError(f"{self.kind} not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        parts = []
        for name in ("daemon.stderr", "daemon.stdout", "supervisord.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-chars:])
        return "\n".join(parts)

    def cleanup(self) -> None:
        """Kill the daemon and everything under it (by pid), close its files."""
        if self.proc is not None:
            if self.proc.poll() is None:
                _procs.kill_tree(self.proc.pid, self.proc)
            _procs.forget(self.proc)
        _procs.kill_seen()
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None:
                f.close()


class Superd(Daemon):
    config_name = "superd.toml"

    def cleanup(self) -> None:
        """Killed, superd leaves its cgroups behind for the next superd to sweep
        at its start: the bench removes them, so that no run is timed with
        the last one's 10,000 cgroups to remove."""
        pid = self.proc.pid if self.proc is not None else None
        super().cleanup()
        if pid is not None:
            _procs.remove_cgroup_tree(f"superd-{pid}")

    def __init__(self, workdir: Path, socket: str, launch: "SuperdLaunch", http_socket: str = "",
                 nice: Optional[int] = None) -> None:
        """``http_socket``: when given, the config gets ``[http]`` listening on this unix
        socket (superd imports its HTTP server, h11 included, only then); the kind is
        then ``superd+http``. ``nice``: the ``[superd] nice`` setting, when not superd's default."""
        super().__init__("superd+http" if http_socket else "superd", workdir)
        self.launch_with = launch
        self.socket = socket
        self.http_socket = http_socket
        self.nice = nice

    def argv(self, config: Path) -> list[str]:
        return [*self.launch_with.daemon, "-c", str(config)]

    def env(self) -> dict:
        return clean_env({"PYTHONPATH": self.launch_with.pythonpath})

    def config_text(self, programs: list[Program]) -> str:
        q = json.dumps  # a JSON string of plain text is a valid TOML basic string
        lines = [
            "[superd]",
            f"socket = {q(self.socket)}",
            f"run_dir = {q(str(self.workdir / 'run'))}",
            f"logs_dir = {q(str(self.workdir / 'logs'))}",
            *([f"nice = {self.nice}"] if self.nice is not None else []),
            "",
        ]
        if self.http_socket:
            lines += ["[http]", f"listen = {q('unix://' + self.http_socket)}", ""]
        for p in programs:
            restart = {"true": "true", "false": "false", "unexpected": '"unexpected"'}[p.autorestart]
            lines += [
                f"[program.{p.name}]",
                f"command = {q(p.command)}",
                f"autostart = {'true' if p.autostart else 'false'}",
                f"autorestart = {restart}",
                f"startsecs = {p.startsecs}",
                f"stopwaitsecs = {p.stopwaitsecs}",
                f"exitcodes = {list(p.exitcodes)}",
            ]
            if p.numprocs > 1:
                lines.append(f"numprocs = {p.numprocs}")
            if p.stdout is not None:
                lines.append(f"stdout = {q(p.stdout)}")
                if p.stdout not in ("null", "console"):
                    lines.append(f"stdout_maxbytes = {p.stdout_maxbytes}")
            if p.stderr is not None:
                lines.append(f"stderr = {q(p.stderr)}")
            lines.append("")
        return "\n".join(lines)

    def states(self) -> dict[str, str]:
        # Only the fields it reads, as superctl asks: the usage fields cost superd
        # kernel reads for every program, and the bench polls while it starts.
        return {p["name"]: p["state"] for p in jsonrpc(self.socket, "status", {"fields": ["name", "state"]})}

    def ready(self) -> bool:
        return jsonrpc(self.socket, "state", timeout=5)["state"] == "running"

    def start_program(self, name: str) -> None:
        jsonrpc(self.socket, "start", {"names": [name], "wait": False})

    def status_argv(self) -> list[str]:
        return [*self.launch_with.ctl, "-s", self.socket, "status"]

    def reload_argv(self) -> list[str]:
        return [*self.launch_with.ctl, "-s", self.socket, "reload"]

    def http_rpc_socket(self) -> Optional[str]:
        """The unix socket of its XML-RPC over HTTP (``[http]``), None without one."""
        return self.http_socket or None

    def daemon_side_all_running(self) -> Optional[float]:
        """Seconds from launch to the last RUNNING, by superd's own clock (``since``)."""
        procs = jsonrpc(self.socket, "status", {"fields": ["name", "state", "since"]})
        if not procs or any(p["state"] != "running" for p in procs):
            return None
        return max(float(p["since"]) for p in procs) - self.launched_wall


class Supervisord(Daemon):
    config_name = "supervisord.conf"

    def __init__(self, workdir: Path, socket: str, venv: Path) -> None:
        super().__init__("supervisord", workdir)
        self.venv = venv
        self.socket = socket

    def argv(self, config: Path) -> list[str]:
        return [str(self.venv / "bin" / "supervisord"), "-n", "-c", str(config)]

    def env(self) -> dict:
        return clean_env()

    def config_text(self, programs: list[Program]) -> str:
        w = self.workdir
        (w / "logs").mkdir(parents=True, exist_ok=True)
        lines = [
            "[unix_http_server]",
            f"file={self.socket}",
            "",
            "[supervisord]",
            "nodaemon=true",
            f"logfile={w / 'supervisord.log'}",
            "logfile_maxbytes=0",
            f"pidfile={w / 'supervisord.pid'}",
            f"childlogdir={w / 'logs'}",
            "loglevel=info",
            # The default: the bench has raised the soft descriptor limit to the hard one, which
            # supervisord inherits, so it needs no minfds to raise it (a larger minfds would only
            # make each child close more descriptors one by one before its exec).
            "minfds=1024",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{self.socket}",
            "",
        ]
        for p in programs:
            lines += [
                f"[program:{p.name}]",
                "command=" + " ".join(_ini_word(a) for a in p.command),
                f"autostart={'true' if p.autostart else 'false'}",
                f"autorestart={p.autorestart}",
                f"startsecs={int(p.startsecs)}",
                f"stopwaitsecs={int(p.stopwaitsecs)}",
                f"exitcodes={','.join(str(c) for c in p.exitcodes)}",
            ]
            if p.numprocs > 1:
                lines += [f"numprocs={p.numprocs}", "process_name=%(program_name)s_%(process_num)d"]
            if p.stdout == "null":
                lines.append("stdout_logfile=NONE")
            elif p.stdout is not None:
                lines += [f"stdout_logfile={p.stdout}", f"stdout_logfile_maxbytes={p.stdout_maxbytes}",
                          "stdout_logfile_backups=0"]
            if p.stderr == "null":
                lines.append("stderr_logfile=NONE")
            lines.append("")
        return "\n".join(lines)

    def states(self) -> dict[str, str]:
        return {p["name"]: p["statename"].lower() for p in xmlrpc_call(self.socket, "supervisor.getAllProcessInfo")}

    def ready(self) -> bool:
        return xmlrpc_call(self.socket, "supervisor.getState", timeout=5)["statename"] == "RUNNING"

    def start_program(self, name: str) -> None:
        xmlrpc_call(self.socket, "supervisor.startProcess", name, False)

    def http_rpc_socket(self) -> Optional[str]:
        """supervisord always serves XML-RPC over HTTP here: its ``[unix_http_server]``
        (the control socket supervisorctl and the bench use)."""
        return self.socket

    def status_argv(self) -> list[str]:
        return [str(self.venv / "bin" / "supervisorctl"), "-c", str(self.workdir / self.config_name), "status"]

    def reload_argv(self) -> list[str]:
        """``update`` re-reads the config (``reread``) and applies the difference."""
        return [str(self.venv / "bin" / "supervisorctl"), "-c", str(self.workdir / self.config_name), "update"]

    _RUNNING_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO success: (\S+) entered RUNNING state")

    def daemon_side_all_running(self) -> Optional[float]:
        """Seconds from launch to the last "entered RUNNING state" line of supervisord's log."""
        last = None
        seen = 0
        try:
            text = (self.workdir / "supervisord.log").read_text(errors="replace")
        except OSError:
            return None
        for line in text.splitlines():
            m = self._RUNNING_LINE.match(line)
            if m:
                seen += 1
                stamp = time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S")) + int(m[2]) / 1000
                last = stamp if last is None else max(last, stamp)
        if last is None or seen < self.instances():
            return None
        return last - self.launched_wall


def _ini_word(word: str) -> str:
    """supervisord splits ``command`` like a shell; quote what needs it."""
    if re.fullmatch(r"[\w@%+=:,./-]+", word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"
