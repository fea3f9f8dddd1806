#!/usr/bin/env python3
"""superd against supervisord 4.3 and a bare launcher, side by side, on identical workloads, in one run.

    python3 bench/run.py                  # N = 100 and 1000, 3 repetitions (~15 min)
    python3 bench/run.py --quick          # tiny N, one repetition (~1 min)
    python3 bench/run.py --only superd --n 10000 --pools --reps 1 --scenarios start,idle,status,reload,stop
    python3 bench/run.py --only superd --n 3 --quick --json out.json
    python3 bench/run.py --n 100 --scenarios idle,status --http   # also superd with [http] on

superd runs from this checkout with the project's interpreter (this one when it
can import the checkout, else .venv/bin/python). supervisord 4.3.0 is installed
from PyPI into bench/.venv-supervisord (never into the project's environment:
both packages are called ``supervisor``). The floor is bench/bare_launcher.py,
started like superd. Every process the bench starts is killed by pid, with its
descendants, when the bench ends, fails or is interrupted. See
docs/benchmarks.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _ensure_psutil() -> None:
    """The bench needs psutil; re-run under the project's venv when this Python lacks it."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        venv_python = REPO / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.prefix).resolve() != (REPO / ".venv").resolve() \
                and not os.environ.get("SUPERD_BENCH_REEXEC"):
            os.environ["SUPERD_BENCH_REEXEC"] = "1"
            os.execv(str(venv_python), [str(venv_python), __file__, *sys.argv[1:]])
        sys.exit("bench: needs psutil (pip install psutil, or create the project's .venv)")


_ensure_psutil()
sys.path.insert(0, str(HERE))

import _capture  # noqa: E402
import _lifecycle  # noqa: E402
import _procs  # noqa: E402
import _scenarios  # noqa: E402
import _setup  # noqa: E402
from _daemons import Superd, Supervisord  # noqa: E402
from _report import HTTP_KIND, KINDS, summarize, table  # noqa: E402

SCENARIOS = ("start", "stop", "restart", "idle", "status", "reload", "log")
LIFECYCLE = {"start", "idle", "status", "reload", "stop"}

# Descriptors each kind may hold per program, by output mode: the floor a pipe per
# stream; superd that and, with "auto", up to two log files; supervisord three pipes
# (stdin, stdout, stderr) even when its logs are NONE, and its two log files with AUTO.
# superd+http (--http) is superd with an [http] table: the same per program.
FDS_PER_PROGRAM = {"floor": {"auto": 2, "null": 0}, "superd": {"auto": 4, "null": 0},
                   "superd+http": {"auto": 4, "null": 0}, "supervisord": {"auto": 5, "null": 3}}
FDS_OWN = 256  # a daemon's own: its log, socket, clients, libraries


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fits(kind: str, n: int, output: str, limit: int) -> bool:
    return FDS_PER_PROGRAM[kind][output] * n + FDS_OWN <= limit


def output_for(n: int, kinds: tuple, requested: str, limit: int) -> str:
    """The program output of the lifecycle runs at N: as requested, or with ``fit``
    "auto" when every kind's descriptors fit the limit with it, else "null"."""
    if requested != "fit":
        return requested
    return "auto" if all(fits(kind, n, "auto", limit) for kind in kinds) else "null"


class Run:
    """One bench run: its settings, the daemons' factories, the samples as they come."""

    def __init__(self, args) -> None:
        self.args = args
        self.kinds = KINDS if args.only == "both" else (args.only,)
        # --http: the lifecycle runs also superd with [http] (its XML-RPC/HTTP listener on a
        # unix socket), right after plain superd; restart and log capture do not.
        self.lifecycle_kinds = tuple(k for kind in self.kinds
                                     for k in ((kind, HTTP_KIND) if kind == "superd" and args.http else (kind,)))
        self.scenarios = set(args.scenarios.split(","))
        self.results: dict = {}
        self.fd_limit = _setup.raise_fd_limit()
        python = _setup.find_superd_python(args.python)
        self.launch = _setup.superd_launch(python, args.editable_hook, log)
        self.venv = _setup.ensure_supervisord(Path(args.supervisord_venv), python, log) \
            if "supervisord" in self.kinds else None
        _setup.compile_bytecode(python, REPO / "supervisor")
        if self.venv is not None:
            for package in self.venv.glob("lib/python*/site-packages/supervisor"):
                _setup.compile_bytecode(str(self.venv / "bin" / "python"), package)
        machine = _setup.machine_info(python, self.venv)
        self.root = Path(tempfile.mkdtemp(prefix="superd-bench-"))
        # Unix socket paths are limited to 107 bytes: keep them short even under a long $TMPDIR.
        self.sockdir = self.root if len(str(self.root)) <= 60 else Path(tempfile.mkdtemp(prefix="sdb-", dir="/tmp"))
        nice = args.superd_nice
        make = {"superd": lambda w, sock: Superd(w, sock, self.launch, nice=nice),
                HTTP_KIND: lambda w, sock: Superd(w, sock, self.launch, http_socket=_http_socket(sock), nice=nice),
                "supervisord": lambda w, sock: Supervisord(w, sock, self.venv)}
        # The bare launcher runs on superd's interpreter, started the same way (with -S or not).
        launcher_python = [python, "-S"] if "-S" in self.launch.daemon else [python]
        self.env = _scenarios.Env(root=self.root, python=python, make=make,
                                  output="null" if args.output == "null" else "auto",
                                  launcher_python=launcher_python, sockdir=self.sockdir)
        self.env.setup()
        self.meta: dict = {
            "machine": machine,
            "fd_limit": list(self.fd_limit),
            "settings": {
                "kinds": list(self.kinds), "n": args.n, "reps": args.reps, "idle_s": args.idle,
                "status_calls": args.status_calls, "restarts": args.restarts, "log_mb": args.log_mb,
                "log_writers": args.log_writers, "stop_cap_s": args.stop_cap, "slow_reps": args.slow_reps,
                "poll_s": args.poll, "output": args.output, "pools": args.pools, "pool_size": args.pool_size,
                "scenarios": sorted(self.scenarios), "quick": args.quick,
                "superd_cmd": self.launch.daemon, "superctl_cmd": self.launch.ctl,
                "superd_pythonpath": self.launch.pythonpath, "editable_hook": args.editable_hook,
                "launcher_cmd": [*launcher_python, str(_lifecycle.LAUNCHER)],
                "supervisord_venv": str(self.venv) if self.venv else None,
                "restart_program": self.env.restart_impl,
                "http": args.http, "superd_nice": args.superd_nice,
                "lifecycle_kinds": list(self.lifecycle_kinds),
            },
        }

    def add(self, metric: str, key, kind: str, value) -> None:
        if value is None:
            return
        slot = self.results.setdefault(metric, {}).setdefault(str(key), {}).setdefault(kind, [])
        if isinstance(value, list):
            slot.extend(value)
        else:
            slot.append(value)

    def order(self, kinds: tuple, rep: int) -> tuple:
        """The same kinds, reversed every other repetition."""
        return kinds if rep % 2 == 0 else tuple(reversed(kinds))

    # ------------------------------------------------------------------ scenarios

    def lifecycles(self) -> None:
        a, sc = self.args, self.scenarios
        limit = self.fd_limit[0]
        for n in a.n:
            output = output_for(n, ("floor", *self.lifecycle_kinds), a.output, limit)
            self.meta.setdefault("output_by_n", {})[str(n)] = output
            kinds = []
            for kind in self.lifecycle_kinds:
                if fits(kind, n, output, limit):
                    kinds.append(kind)
                else:
                    need = FDS_PER_PROGRAM[kind][output] * n + FDS_OWN
                    self._skip(kind, n, f"with output {output} it needs ~{need} file descriptors "
                                        f"({FDS_PER_PROGRAM[kind][output]} per program), above the limit of {limit}")
            if "start" in sc:
                kinds.insert(0, "floor")
                if _lifecycle.cgroup_floor_possible():
                    kinds.insert(1, "floor_cgroups")
                if output == "auto":
                    files = _lifecycle.file_creation_floor(self.env, n)
                    self.meta.setdefault("floors", {})[str(n)] = {"create_2n_files_s": files}
            limits = _lifecycle.Limits.for_n(n, poll=a.poll, status_budget=a.status_budget, stop_cap=a.stop_cap)
            for pool_size in ([0, min(a.pool_size, n)] if a.pools else [0]):
                key = f"{n} pools" if pool_size else str(n)
                progs = _lifecycle.programs(self.env, n, output, pool_size)
                for rep in range(a.reps):
                    for kind in self.order(tuple(kinds), rep):
                        self._one_lifecycle(kind, key, n, output, progs, limits, rep)

    def _skip(self, kind: str, n: int, reason: str) -> None:
        log(f"[{kind} N={n}] not run: {reason}")
        self.meta.setdefault("skipped", []).append({"kind": kind, "n": n, "reason": reason})

    def _one_lifecycle(self, kind, key, n, output, progs, limits, rep) -> None:
        a, sc = self.args, self.scenarios
        tag = f"[{kind} N={key} output={output} rep {rep + 1}/{a.reps}]"
        self.add("load_1m", key, kind, os.getloadavg()[0])
        if kind in ("floor", "floor_cgroups"):
            started = _lifecycle.floor_start(self.env, n, output, limits.start_timeout, kind == "floor_cgroups")
            self.add("start_s", key, kind, started)
            log(f"{tag} all spawned after {started:.3f} s")
            return
        http_kind = kind == HTTP_KIND
        # superd+http runs for its memory, idle CPU and status paths: no reload, no stop.
        do_stop = "stop" in sc and not http_kind and (kind == "superd" or rep < a.slow_reps)
        do_reload = "reload" in sc and not http_kind
        # XML-RPC getAllProcessInfo over HTTP: superd+http's [http] listener, supervisord's
        # [unix_http_server]; plain superd has no HTTP listener.
        xmlrpc_calls = a.status_calls if a.http and "status" in sc and kind != "superd" else 0
        steps = [step for step, on in (("start", True), ("idle", "idle" in sc), ("status", "status" in sc),
                                       ("xmlrpc-status", xmlrpc_calls > 0), ("reload", do_reload)) if on]
        log(f"{tag} {'/'.join(steps + ['stop'] * do_stop)} ...")
        out = _lifecycle.lifecycle(self.env, kind, progs, limits,
                                   idle=a.idle if "idle" in sc else 0,
                                   status_calls=a.status_calls if "status" in sc else 0,
                                   reload=do_reload, stop=do_stop, xmlrpc_calls=xmlrpc_calls)
        for metric, value in out.items():
            self.add(metric, key, kind, value)
        log(f"{tag} " + _described(out))

    def restarts(self) -> None:
        floor = _scenarios.spawn_floor(self.env)
        self.meta["spawn_floor_s"] = floor
        log(f"[spawn floor] Popen -> first stamp of the restart program: {floor * 1000:.2f} ms")
        for rep in range(self.args.reps):
            for kind in self.order(self.kinds, rep):
                self.add("load_1m", "-", kind, os.getloadavg()[0])
                long_run = _scenarios.restart_latency(self.env, kind, run_secs=1.2, restarts=self.args.restarts)
                self.add("restart_s", "-", kind, long_run)
                quick = _scenarios.restart_latency(self.env, kind, run_secs=0.2, restarts=3)
                for i, gap in enumerate(quick, 1):
                    self.add(f"restart_quick_{i}_s", "-", kind, gap)
                self.add("restart_quick_median3_s", "-", kind, statistics.median(quick))
                with _scenarios.busy_cpus(self.env) as loops:
                    loaded = _scenarios.restart_latency(self.env, kind, run_secs=1.2, restarts=self.args.restarts)
                self.add("restart_loaded_s", "-", kind, loaded)
                log(f"[{kind} restart rep {rep + 1}/{self.args.reps}] after 1.2 s runs: {_ms(long_run)}; "
                    f"0.2 s program, first 3: {_ms(quick)}; after 1.2 s runs, {loops} busy loops: {_ms(loaded)}")

    def captures(self) -> None:
        a = self.args
        total = int(a.log_mb * 2**20) // _scenarios.LINE_BYTES * _scenarios.LINE_BYTES
        self.meta["log_bytes"] = total
        for rep in range(a.reps):
            for kind in self.order(("raw-file", "raw-pipe", *self.kinds), rep):
                self.add("load_1m", "-", kind, os.getloadavg()[0])
                if kind.startswith("raw"):
                    out = _capture.capture_raw(self.env, total, pipe=kind == "raw-pipe", timeout=a.log_timeout)
                else:
                    out = _capture.capture_daemon(self.env, kind, total, timeout=a.log_timeout)
                self._add_capture("log", "-", kind, out)
                log(f"[{kind} log {a.log_mb:g} MB rep {rep + 1}/{a.reps}] " + _described(out))
            if a.log_writers:
                for kind in self.order(("raw-files", *self.kinds), rep):
                    if kind == "raw-files":
                        out = _capture.capture_many_raw(self.env, total, a.log_writers, timeout=a.log_timeout)
                    else:
                        out = _capture.capture_many_daemon(self.env, kind, total, a.log_writers,
                                                           timeout=a.log_timeout)
                    self._add_capture("log_multi", a.log_writers, kind, out)
                    log(f"[{kind} log {a.log_mb:g} MB by {a.log_writers} writers rep {rep + 1}/{a.reps}] "
                        + _described(out))

    def _add_capture(self, prefix: str, key, kind: str, out: dict) -> None:
        for metric, value in out.items():
            self.add(f"{prefix}_{metric}", key, kind, value)

    # ------------------------------------------------------------------ the whole

    def __call__(self) -> dict:
        started = time.monotonic()
        try:
            if self.scenarios & LIFECYCLE:
                self.lifecycles()
            if "restart" in self.scenarios:
                self.restarts()
            if "log" in self.scenarios:
                self.captures()
        finally:
            _procs.cleanup_all()
            if self.args.keep:
                log(f"bench: scratch directory kept: {self.root}")
            else:
                shutil.rmtree(self.root, ignore_errors=True)
            if self.sockdir != self.root:
                shutil.rmtree(self.sockdir, ignore_errors=True)
        self.meta["elapsed_s"] = round(time.monotonic() - started, 1)
        self.meta["machine"]["loadavg_at_end"] = os.getloadavg()
        if self.args.pools:
            self.meta["pool_size"] = self.args.pool_size
        summary = {metric: {key: {kind: summarize(s) for kind, s in per.items()} for key, per in by_key.items()}
                   for metric, by_key in self.results.items()}
        return {"meta": self.meta, "results": summary}


def _http_socket(control_socket: str) -> str:
    """superd+http's [http] unix socket, next to its control socket (".../004.sock" ->
    ".../004-http.sock"): a path in the bench's own scratch space, so no port can collide."""
    return control_socket[:-len(".sock")] + "-http.sock" if control_socket.endswith(".sock") \
        else control_socket + "-http"


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return f"median {statistics.median(value):.4g} of {len(value)}" if value else "[]"
    return str(value)


def _described(out: dict) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in out.items())


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v * 1000:.1f} ms" for v in values)


# --------------------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny N, one repetition, short waits")
    p.add_argument("--n", help="comma-separated program counts (default 100,1000; --quick: 5)")
    p.add_argument("--pools", action="store_true",
                   help="also run each N as numprocs pools (N / --pool-size programs), reported as 'N pools'")
    p.add_argument("--pool-size", type=int, default=100, help="numprocs of each pool (default 100; at most N)")
    p.add_argument("--reps", type=int, help="repetitions (default 3; --quick: 1)")
    p.add_argument("--only", choices=("both", *KINDS), default="both", help="run one supervisor only")
    p.add_argument("--http", action="store_true",
                   help="lifecycle runs also run superd with an [http] table (XML-RPC over HTTP on a unix socket "
                        "in the scratch directory), reported as 'superd +http' rows (start, idle, status; no "
                        "reload or stop), and time XML-RPC supervisor.getAllProcessInfo over HTTP against it "
                        "and against supervisord's [unix_http_server]")
    p.add_argument("--json", help="write the results here (default bench/results/latest.json)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--idle", type=float, help="seconds of idle CPU measurement (default 10; --quick: 1)")
    p.add_argument("--status-calls", type=int, help="status command runs per daemon run (default 20; --quick: 3)")
    p.add_argument("--status-budget", type=float, default=20.0,
                   help="after 5 status runs, stop once this many seconds (+2 ms per program) are spent")
    p.add_argument("--restarts", type=int, help="restarts after a 1.2 s run per daemon run (default 5; --quick: 2)")
    p.add_argument("--log-mb", type=float, help="MB the log generators write (default 200; --quick: 5)")
    p.add_argument("--log-writers", type=int,
                   help="generators of the many-writer capture, 0 for none (default 100; --quick: 10)")
    p.add_argument("--log-timeout", type=float, default=300, help="cap for one log capture (s)")
    p.add_argument("--stop-cap", type=float, default=150,
                   help="give up waiting for a daemon to stop after this many seconds (+10 ms per program; "
                        "reported as '> T s')")
    p.add_argument("--slow-reps", type=int, default=1,
                   help="repetitions of supervisord's stop scenario (it takes ~N s each; default 1)")
    p.add_argument("--poll", type=float, default=0.01,
                   help="control-channel polling interval (s) up to 1000 programs; proportional above")
    p.add_argument("--output", choices=("fit", "auto", "null"), default="fit",
                   help="program output in the lifecycle runs: auto (each daemon's default log files), null "
                        "(none), or fit (default): auto where every kind's descriptors fit the limit, else null")
    p.add_argument("--editable-hook", choices=("skip", "keep"), default="skip",
                   help="skip (default): start superd/superctl with python -S and site-packages on PYTHONPATH, "
                        "as a regular install starts; keep: as the editable .venv does (~20 ms more per start)")
    p.add_argument("--superd-nice", type=int,
                   help="superd's [superd] nice (default: its own default, -10; 0: superd at its programs' priority)")
    p.add_argument("--python", help="interpreter that runs superd (default: this one, else .venv/bin/python)")
    p.add_argument("--supervisord-venv", default=str(_setup.DEFAULT_VENV), help="where supervisord 4.3 is installed")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (configs, daemon logs)")
    args = p.parse_args(argv)
    q = args.quick
    args.n = [int(x) for x in (args.n or ("5" if q else "100,1000")).split(",") if x.strip()]
    args.reps = args.reps or (1 if q else 3)
    args.idle = args.idle if args.idle is not None else (1.0 if q else 10.0)
    args.status_calls = args.status_calls if args.status_calls is not None else (3 if q else 20)
    args.restarts = args.restarts or (2 if q else 5)
    args.log_mb = args.log_mb or (5 if q else 200)
    args.log_writers = args.log_writers if args.log_writers is not None else (10 if q else 100)
    if q:
        args.stop_cap = min(args.stop_cap, 30)
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.pools:
        uneven = [n for n in args.n if n % min(args.pool_size, n)]
        if uneven:
            p.error(f"--pools: N={uneven[0]} is not a multiple of --pool-size {args.pool_size}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    _procs.install_handlers()
    try:
        report = Run(args)()
    except KeyboardInterrupt:
        log("bench: interrupted; everything it started has been killed")
        return 130
    finally:
        _procs.cleanup_all()
    out = Path(args.json) if args.json else HERE / "results" / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    m = report["meta"]["machine"]
    print(f"superd vs supervisord {_setup.SUPERVISORD_VERSION} and a bare launcher on {m['nproc']} x "
          f"{m['cpu_model'] or '?'}, Python {m['superd_python']}, {report['meta']['elapsed_s']} s; "
          f"medians [min-max] over {args.reps} rep(s)\n")
    print(table(report))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
