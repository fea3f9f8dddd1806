#!/usr/bin/env python3
"""Requests lost while a web server is restarted under load, with and without a held socket.

    python3 bench/zero_downtime.py                 # 5 restarts per setup, 4 clients
    python3 bench/zero_downtime.py --restarts 10 --clients 8 --json out.json

gunicorn (2 sync workers) serves a one-line WSGI app; a load generator (a few
threads, one new connection per request, 10 s timeout) runs throughout while
the program is restarted ``--restarts`` times, each restart waiting until the
server answers again and a second of steady load has passed. Setups:

- ``superd-held``: superd holds ``[socket.web]``; gunicorn gets it through
  LISTEN_FDS/LISTEN_PID (``superctl restart web``).
- ``superd-own``: superd without a socket table; gunicorn binds the port itself.
- ``supervisord-own``: supervisord 4.3 the same way (``supervisorctl restart
  web``), when bench/.venv-supervisord exists (``bench/run.py`` makes it).

Every process it starts is killed by pid, with its descendants, at the end.
See docs/benchmarks.md, "Restarts under load".
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = REPO / ".venv" / "bin" / "python"
SUPERVISORD_VENV = HERE / ".venv-supervisord"
APP = """
import os
def app(environ, start_response):
    body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [body]
"""


class Load:
    def __init__(self, port: int, clients: int) -> None:
        self.port = port
        self.ok = 0
        self.failed: collections.Counter = collections.Counter()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                try:
                    conn.request("GET", "/")
                    status = conn.getresponse().status
                finally:
                    conn.close()
                failure = None if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as exc:
                failure = type(exc).__name__
            with self.lock:
                if failure is None:
                    self.ok += 1
                else:
                    self.failed[failure] += 1
            if failure == "ConnectionRefusedError":
                time.sleep(0.001)  # a refused connect costs nothing: do not spin

    def served(self) -> int:
        with self.lock:
            return self.ok

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.05)


def kill_tree(pid: int) -> None:
    import psutil

    try:
        parent = psutil.Process(pid)
        parent.suspend()
        victims = [parent] + parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for victim in victims:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=5)


def setup(kind: str, work: Path, port: int) -> tuple[list[str], list[str], dict]:
    """(daemon argv, restart argv, env) for one setup."""
    (work / "app.py").write_text(APP)
    if kind.startswith("superd"):
        gunicorn = f"{PYTHON} -m gunicorn -w 2 --chdir {work} app:app"
        held = kind == "superd-held"
        text = f"""
            [superd]
            socket = "{work}/superd.sock"
            run_dir = "{work}/run"
            logs_dir = "{work}/logs"
            {'[socket.web]' if held else ''}
            {f'listen = "tcp://127.0.0.1:{port}"' if held else ''}
            [program.web]
            command = "{gunicorn}{'' if held else f' -b 127.0.0.1:{port}'}"
            {'sockets = ["web"]' if held else ''}
            stopwaitsecs = 30
        """
        (work / "superd.toml").write_text(textwrap.dedent(text))
        env = dict(os.environ, PYTHONPATH=str(REPO))
        return ([str(PYTHON), "-m", "supervisor", "-c", str(work / "superd.toml")],
                [str(PYTHON), "-m", "supervisor.cli.superctl", "-s", f"{work}/superd.sock", "restart", "web"], env)
    venv = SUPERVISORD_VENV / "bin"
    text = f"""
        [unix_http_server]
        file = {work}/supervisor.sock
        [supervisord]
        logfile = {work}/supervisord.log
        pidfile = {work}/supervisord.pid
        childlogdir = {work}
        nodaemon = true
        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        [supervisorctl]
        serverurl = unix://{work}/supervisor.sock
        [program:web]
        command = {venv}/python -m gunicorn -w 2 --chdir {work} -b 127.0.0.1:{port} app:app
        stopwaitsecs = 30
    """
    (work / "supervisord.conf").write_text(textwrap.dedent(text))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return ([str(venv / "supervisord"), "-c", str(work / "supervisord.conf")],
            [str(venv / "supervisorctl"), "-c", str(work / "supervisord.conf"), "restart", "web"], env)


def measure(kind: str, restarts: int, clients: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"zd-{kind}-"))
    port = free_port()
    daemon_argv, restart_argv, env = setup(kind, work, port)
    daemon = subprocess.Popen(daemon_argv, env=env, cwd=work, stdout=subprocess.DEVNULL,
                              stderr=open(work / "daemon.log", "wb"))
    try:
        wait(lambda: answers(port), 60, f"{kind}: gunicorn to answer")
        load = Load(port, clients)
        times = []
        try:
            for _ in range(restarts):
                before = load.served()
                wait(lambda: load.served() > before + 50, 60, f"{kind}: steady load")
                time.sleep(1)
                started = time.monotonic()
                subprocess.run(restart_argv, env=env, check=True, capture_output=True, timeout=120)
                wait(lambda: answers(port), 60, f"{kind}: gunicorn to answer again")
                times.append(time.monotonic() - started)
            before = load.served()
            wait(lambda: load.served() > before + 50, 60, f"{kind}: steady load after the last restart")
        finally:
            load.stop()
        return {"setup": kind, "restarts": restarts, "clients": clients, "served": load.ok,
                "failed": sum(load.failed.values()), "failures": dict(load.failed),
                "restart_s_median": sorted(times)[len(times) // 2]}
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(40)
            except subprocess.TimeoutExpired:
                pass
        kill_tree(daemon.pid)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--only", choices=("superd-held", "superd-own", "supervisord-own"), action="append")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    kinds = args.only or ["superd-held", "superd-own"] + (
        ["supervisord-own"] if (SUPERVISORD_VENV / "bin" / "supervisord").exists() else [])
    results = []
    for kind in kinds:
        result = measure(kind, args.restarts, args.clients)
        results.append(result)
        print(f"{kind:<16} served {result['served']:>7}  failed {result['failed']:>6} "
              f"({result['failed'] / args.restarts:.0f} per restart)  {result['failures']}  "
              f"restart {result['restart_s_median']:.2f}s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"load": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
