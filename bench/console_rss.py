#!/usr/bin/env python3
"""superd's resident memory under chatty console programs, over time.

    .venv/bin/python bench/console_rss.py                    # 200 programs, 600 s
    .venv/bin/python bench/console_rss.py --programs 200 --seconds 120 --every 10

Starts superd from this checkout with N programs that print a line every few
milliseconds to ``stdout = "console"``; superd's own stdout goes to /dev/null.
Prints superd's RSS every ``--every`` seconds and, at the end, the growth from
the first sample taken after the warm-up (every ring full) to the last. Issue
#20 asks for it to stay within 10 % over 10 minutes. Everything it starts is
killed by pid at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent

PRINTER = """
import os, sys, time
n = 0
name = os.environ["SUPERD_PROCESS_NAME"].encode()
while True:
    os.write(1, b"%s says hello, line %d, with some words to make it look like a log line\\n" % (name, n))
    n += 1
    time.sleep(0.005)
"""


def _ready(sock: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(sock)
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"state"}\n')
                if b'"running"' in s.recv(4096):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("superd did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--every", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="superd-rss-"))
    printer = work / "printer.py"
    printer.write_text(PRINTER)
    sock = str(work / "superd.sock")
    config = work / "superd.toml"
    config.write_text(
        f'[superd]\nsocket = "{sock}"\nlogs_dir = "{work / "logs"}"\nrun_dir = "{work / "run"}"\n'
        f'[program.p]\ncommand = ["{sys.executable}", "{printer}"]\nnumprocs = {args.programs}\n'
        'stdout = "console"\nstartsecs = 0\n')
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("NOTIFY_SOCKET", None)
    with open(os.devnull, "wb") as null:
        daemon = subprocess.Popen([sys.executable, "-m", "supervisor", "-c", str(config)], stdout=null,
                                  stderr=null, stdin=subprocess.DEVNULL, env=env, cwd=work)
    samples = []
    try:
        _ready(sock, time.monotonic() + 60)
        proc = psutil.Process(daemon.pid)
        start = time.monotonic()
        time.sleep(args.warmup)
        while True:
            elapsed = time.monotonic() - start
            rss = proc.memory_info().rss
            samples.append((round(elapsed), rss))
            print(f"{elapsed:7.0f} s  rss {rss / 2**20:7.1f} MiB  cpu {proc.cpu_times().user:7.1f} s", flush=True)
            if elapsed >= args.seconds:
                break
            time.sleep(args.every)
    finally:
        try:
            victims = [psutil.Process(daemon.pid)]
            victims[0].suspend()
            victims += victims[0].children(recursive=True)
            for victim in victims:
                victim.send_signal(signal.SIGKILL)
            psutil.wait_procs(victims, timeout=10)
        except psutil.NoSuchProcess:
            pass
    first, last = samples[0][1], samples[-1][1]
    print(json.dumps({"programs": args.programs, "seconds": args.seconds, "first_mib": round(first / 2**20, 1),
                      "last_mib": round(last / 2**20, 1), "growth_pct": round(100 * (last - first) / first, 1)}))


if __name__ == "__main__":
    main()
