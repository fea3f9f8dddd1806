#!/usr/bin/env python3
"""superd against supervisord 4.3, side by side, on identical workloads, in one run.

    python3 bench/run.py                  # N = 100 and 1000, 3 repetitions (~15 min)
    python3 bench/run.py --quick          # tiny N, one repetition (~1 min)
    python3 bench/run.py --only superd --n 3 --quick --json out.json

superd runs from this checkout with the project's interpreter (this one when it
can import the checkout, else .venv/bin/python). supervisord 4.3.0 is installed
from PyPI into bench/.venv-supervisord (never into the project's environment:
both packages are called ``supervisor``). Every process the bench starts is
killed by pid, with its descendants, when the bench ends, fails or is
interrupted. See docs/benchmarks.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SUPERVISORD_VERSION = "4.3.0"
DEFAULT_VENV = HERE / ".venv-supervisord"


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

import _procs  # noqa: E402
import _scenarios  # noqa: E402
from _daemons import Superd, SuperdLaunch, Supervisord, clean_env  # noqa: E402

KINDS = ("superd", "supervisord")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- set-up


def find_superd_python(explicit: str | None) -> str:
    """An interpreter that imports ``supervisor`` from this checkout (with psutil and click)."""
    candidates = [explicit] if explicit else [sys.executable, str(REPO / ".venv" / "bin" / "python")]
    probe = "import supervisor, psutil, click; print(supervisor.__file__)"
    for python in candidates:
        if not python or not os.path.exists(python):
            continue
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=str(REPO),
                              env=clean_env({"PYTHONPATH": str(REPO)}), timeout=60)
        where = done.stdout.strip()
        if done.returncode == 0 and Path(where).resolve().is_relative_to(REPO / "supervisor"):
            return python
    sys.exit(f"bench: no interpreter imports superd from {REPO} (tried {candidates}); "
             f"create the project's venv: python3 -m venv .venv && .venv/bin/pip install -e .")


def superctl_argv(python: str) -> list[str]:
    """The superctl console script next to the interpreter when it runs this checkout, else -m."""
    script = Path(python).parent / "superctl"
    if script.exists():
        first = script.read_text(errors="replace").splitlines()[0] if script.stat().st_size else ""
        if first.startswith("#!") and Path(first[2:].strip()).resolve() == Path(python).resolve():
            return [str(script)]
    return [python, "-m", "supervisor.cli.superctl"]


def superd_launch(python: str, hook: str) -> SuperdLaunch:
    """superd and superctl from the checkout.

    ``hook="skip"`` (the default) starts them as ``python -S`` with the checkout and
    the venv's site-packages on PYTHONPATH: the way a regular (non-editable) install
    starts, without the editable install's import hook, which the project's .venv
    runs at every interpreter start (~20 ms here). ``hook="keep"`` runs them exactly
    as the .venv does (``python -m supervisor``, the ``superctl`` console script).
    """
    if hook == "keep":
        return SuperdLaunch([python, "-m", "supervisor"], superctl_argv(python), str(REPO))
    done = subprocess.run([python, "-c", "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); "
                          "print(p['platlib'])"], capture_output=True, text=True, env=clean_env(), timeout=60)
    paths = [str(REPO)]
    for path in done.stdout.split():
        if path not in paths:
            paths.append(path)
    launch = SuperdLaunch([python, "-S", "-m", "supervisor"],
                          [python, "-S", "-c", "import sys; from supervisor.cli.superctl import main; sys.exit(main())"],
                          os.pathsep.join(paths))
    probe = subprocess.run([python, "-S", "-c", "import supervisor, psutil, click; print(supervisor.__file__)"],
                           capture_output=True, text=True, cwd="/", env=clean_env({"PYTHONPATH": launch.pythonpath}),
                           timeout=60)
    if probe.returncode != 0 or not Path(probe.stdout.strip()).resolve().is_relative_to(REPO / "supervisor"):
        log(f"bench: cannot run superd without site ({probe.stderr.strip()[-200:]}); keeping the import hook")
        return superd_launch(python, "keep")
    return launch


def ensure_supervisord(venv: Path, python: str) -> Path:
    """supervisord 4.3.0 from PyPI in a virtualenv of its own; reused when already there."""
    supervisord = venv / "bin" / "supervisord"
    vpython = venv / "bin" / "python"
    if supervisord.exists() and vpython.exists():
        done = subprocess.run([str(supervisord), "--version"], capture_output=True, text=True,
                              env=clean_env(), timeout=60)
        if done.stdout.strip() == SUPERVISORD_VERSION:
            return venv
        log(f"bench: {venv} holds supervisord {done.stdout.strip() or '?'}; rebuilding")
        shutil.rmtree(venv)
    log(f"bench: installing supervisor=={SUPERVISORD_VERSION} from PyPI into {venv}")
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True, env=clean_env(), timeout=300)
    subprocess.run([str(vpython), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"supervisor=={SUPERVISORD_VERSION}"], check=True, env=clean_env(), timeout=600)
    where = subprocess.run([str(vpython), "-c", "import supervisor, os; print(os.path.dirname(supervisor.__file__))"],
                           capture_output=True, text=True, env=clean_env(), cwd="/", timeout=60).stdout.strip()
    if not Path(where).resolve().is_relative_to(venv.resolve()):
        sys.exit(f"bench: the supervisord venv imports supervisor from {where}, not from {venv}")
    return venv


def compile_bytecode(python: str, package_dir: Path) -> None:
    """Write the .pyc files of ``package_dir`` up front, as an installer does, so that
    no daemon start pays for compiling (pip did this for supervisord's venv)."""
    subprocess.run([python, "-m", "compileall", "-q", str(package_dir)], env=clean_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)


def machine_info(superd_python: str, venv: Path | None) -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version_of(python: str) -> str:
        return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, env=clean_env(), timeout=60).stdout.strip()

    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
        "superd_python": version_of(superd_python),
        "superd_commit": _git_describe(),
    }
    if venv is not None:
        info["supervisord_python"] = version_of(str(venv / "bin" / "python"))
        info["supervisord_version"] = SUPERVISORD_VERSION
    return info


def _git_describe() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# --------------------------------------------------------------------------- statistics


def summarize(samples: list) -> dict:
    """median, min, max of the numeric samples; capped ones (dicts) make it a lower bound."""
    numbers = [s for s in samples if isinstance(s, (int, float))]
    capped = [s for s in samples if isinstance(s, dict)]
    out: dict = {"samples": samples, "n": len(samples)}
    if capped:
        out["capped"] = True
        out["lower_bound"] = min(c["capped_at"] for c in capped)
        out["detail"] = capped
    if numbers and not capped:
        out.update(median=statistics.median(numbers), min=min(numbers), max=max(numbers))
    elif numbers:
        out.update(min=min(numbers), max=max(numbers))
    return out


# --------------------------------------------------------------------------- the run


def run(args) -> dict:
    kinds = KINDS if args.only == "both" else (args.only,)
    superd_python = find_superd_python(args.python)
    launch = superd_launch(superd_python, args.editable_hook)
    venv = ensure_supervisord(Path(args.supervisord_venv), superd_python) if "supervisord" in kinds else None
    compile_bytecode(superd_python, REPO / "supervisor")
    if venv is not None:
        for package in venv.glob("lib/python*/site-packages/supervisor"):
            compile_bytecode(str(venv / "bin" / "python"), package)

    root = Path(tempfile.mkdtemp(prefix="superd-bench-"))
    # Unix socket paths are limited to 107 bytes: keep them short even under a long $TMPDIR.
    sockdir = root if len(str(root)) <= 60 else Path(tempfile.mkdtemp(prefix="sdb-", dir="/tmp"))
    make = {
        "superd": lambda w, sock: Superd(w, sock, launch),
        "supervisord": lambda w, sock: Supervisord(w, sock, venv),
    }
    env = _scenarios.Env(root=root, python=superd_python, make=make, poll=args.poll, output=args.output, log=log,
                         sockdir=sockdir)
    env.setup()
    scenarios = set(args.scenarios.split(","))
    results: dict = {}

    def add(metric: str, n, kind: str, value) -> None:
        if value is None:
            return
        slot = results.setdefault(metric, {}).setdefault(str(n), {}).setdefault(kind, [])
        if isinstance(value, list):
            slot.extend(value)
        else:
            slot.append(value)

    started = time.monotonic()
    meta = {
        "machine": machine_info(superd_python, venv),
        "settings": {
            "kinds": list(kinds), "n": args.n, "reps": args.reps, "idle_s": args.idle,
            "status_calls": args.status_calls, "restarts": args.restarts, "log_mb": args.log_mb,
            "stop_cap_s": args.stop_cap, "slow_reps": args.slow_reps, "poll_s": args.poll,
            "output": args.output, "scenarios": sorted(scenarios), "quick": args.quick,
            "superd_cmd": launch.daemon, "superctl_cmd": launch.ctl, "superd_pythonpath": launch.pythonpath,
            "editable_hook": args.editable_hook,
            "supervisord_venv": str(venv) if venv else None, "restart_program": env.restart_impl,
        },
    }
    try:
        life = scenarios & {"start", "idle", "status", "stop"}
        if "start" in scenarios:
            meta["floors"] = {}
            for n in args.n:
                meta["floors"][str(n)] = floor = _scenarios.floors(env, n)
                log(f"[floors N={n}] create {2 * n} files: {floor['create_2n_files_s']:.3f} s; "
                    f"{n} sequential Popen(): {floor['popen_n_sequential_s']:.3f} s")
        if life:
            for n in args.n:
                for rep in range(args.reps):
                    order = kinds if rep % 2 == 0 else tuple(reversed(kinds))
                    for kind in order:
                        do_stop = "stop" in scenarios and (kind == "superd" or rep < args.slow_reps)
                        tag = f"[{kind} N={n} rep {rep + 1}/{args.reps}]"
                        log(f"{tag} start/idle/status{'/stop' if do_stop else ''} ...")
                        load = os.getloadavg()[0]
                        out = _scenarios.lifecycle(
                            env, kind, n,
                            idle=args.idle if "idle" in scenarios else 0,
                            status_calls=args.status_calls if "status" in scenarios else 0,
                            stop=do_stop, stop_cap=args.stop_cap, start_timeout=60 + n * 0.2,
                            status_budget=args.status_budget)
                        add("load_1m", n, kind, load)
                        for key, value in out.items():
                            add(key, n, kind, value)
                        log(f"{tag} " + ", ".join(f"{k}={_short(v)}" for k, v in out.items()))

        if "restart" in scenarios:
            floor = _scenarios.spawn_floor(env)
            meta["spawn_floor_s"] = floor
            log(f"[spawn floor] Popen -> first stamp of the restart program: {floor * 1000:.2f} ms")
            for rep in range(args.reps):
                order = kinds if rep % 2 == 0 else tuple(reversed(kinds))
                for kind in order:
                    tag = f"[{kind} restart rep {rep + 1}/{args.reps}]"
                    add("load_1m", "-", kind, os.getloadavg()[0])
                    long_run = _scenarios.restart_latency(env, kind, run_secs=1.2, restarts=args.restarts)
                    add("restart_s", "-", kind, long_run)
                    quick = _scenarios.restart_latency(env, kind, run_secs=0.2, restarts=2)
                    add("restart_quick_first_s", "-", kind, quick[0])
                    add("restart_quick_second_s", "-", kind, quick[1])
                    log(f"{tag} after 1.2 s runs: {_ms(long_run)}; 0.2 s program: first {_ms([quick[0]])}, "
                        f"second {_ms([quick[1]])}")

        if "log" in scenarios:
            total = int(args.log_mb * 2**20) // _scenarios.LINE_BYTES * _scenarios.LINE_BYTES
            meta["log_bytes"] = total
            for rep in range(args.reps):
                order = ("raw-file", "raw-pipe", *kinds)
                order = order if rep % 2 == 0 else tuple(reversed(order))
                for kind in order:
                    tag = f"[{kind} log {args.log_mb:g} MB rep {rep + 1}/{args.reps}]"
                    add("load_1m", "-", kind, os.getloadavg()[0])
                    if kind.startswith("raw"):
                        out = _scenarios.capture_raw(env, total, pipe=kind == "raw-pipe", timeout=args.log_timeout)
                    else:
                        out = _scenarios.capture_daemon(env, kind, total, timeout=args.log_timeout)
                    for key, value in out.items():
                        add(f"log_{key}", "-", kind, value)
                    log(f"{tag} " + ", ".join(f"{k}={_short(v)}" for k, v in out.items()))
    finally:
        _procs.cleanup_all()
        if args.keep:
            log(f"bench: scratch directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        if sockdir != root:
            shutil.rmtree(sockdir, ignore_errors=True)

    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["machine"]["loadavg_at_end"] = os.getloadavg()
    summary = {metric: {n: {kind: summarize(s) for kind, s in per.items()} for n, per in by_n.items()}
               for metric, by_n in results.items()}
    return {"meta": meta, "results": summary}


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return f"median {statistics.median(value):.4g} of {len(value)}" if value else "[]"
    return str(value)


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v * 1000:.1f} ms" for v in values)


# --------------------------------------------------------------------------- report

# metric, label, unit, scale, targets: {n: (text, check(superd, supervisord, results))}
ROWS = [
    ("start_s", "start N programs, launch -> all RUNNING (control channel)", "s", 1, {
        "100": ("<= 0.1 s", lambda s, o, r: s <= 0.1), "1000": ("<= 1 s", lambda s, o, r: s <= 1.0)}),
    ("start_daemon_s", "  same, by the daemon's own clock", "s", 1, {}),
    ("stop_s", "stop N TERM-ignoring programs (stopwaitsecs=1), SIGTERM -> daemon gone", "s", 1, {
        "100": ("<= 1.2 s", lambda s, o, r: s <= 1.2)}),
    ("restart_s", "restart latency after a 1.2 s run (exit -> next start)", "ms", 1000, {
        "-": ("<= 20 ms", lambda s, o, r: s <= 0.020)}),
    ("restart_quick_first_s", "restart latency, 0.2 s program, 1st restart", "ms", 1000, {
        "-": ("<= 20 ms", lambda s, o, r: s <= 0.020)}),
    ("restart_quick_second_s", "restart latency, 0.2 s program, 2nd restart", "ms", 1000, {}),
    ("idle_cpu_pct", "daemon CPU while idle (% of one CPU)", "%", 1, {
        "100": ("<= 0.05 %", lambda s, o, r: s <= 0.05)}),
    ("idle_wakeups_per_s", "  daemon context switches per second while idle", "/s", 1, {}),
    ("rss_mb", "daemon RSS", "MB", 1, {"100": ("<= 20 MB", lambda s, o, r: s <= 20)}),
    ("status_s", "status command wall time", "ms", 1000, {
        "*": ("<= 0.5x", lambda s, o, r: o is not None and s <= 0.5 * o)}),
    ("log_capture_s", "log capture: start -> all bytes in the file", "s", 1, {
        "-": ("<= 1.1x raw file", lambda s, o, r: _raw(r) is not None and s <= 1.1 * _raw(r))}),
    ("log_writer_s", "  the writer's own run time", "s", 1, {}),
    ("log_daemon_cpu_s", "  daemon CPU during the capture", "s", 1, {}),
]


def _raw(results: dict):
    try:
        return results["log_capture_s"]["-"]["raw-file"]["median"]
    except KeyError:
        return None


def _fmt(summary: dict | None, unit: str, scale: float) -> str:
    if not summary:
        return "-"
    if summary.get("capped"):
        return f"> {summary['lower_bound'] * (scale if unit != 's' else 1):.0f} {unit}"
    if "median" not in summary:
        return "-"
    med, lo, hi = (summary[k] * scale for k in ("median", "min", "max"))
    digits = 3 if med < 10 else 1 if med < 1000 else 0
    return f"{med:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}] {unit}"


def table(report: dict) -> str:
    res = report["results"]
    head = ("scenario", "N", "superd", "supervisord", "ratio", "target (superd)", "met")
    rows = [head]
    for metric, label, unit, scale, targets in ROWS:
        if metric not in res:
            continue
        for n, per in sorted(res[metric].items(), key=lambda kv: (kv[0] == "-", int(kv[0]) if kv[0].isdigit() else 0)):
            s, o = per.get("superd"), per.get("supervisord")
            ratio = "-"
            sm = s.get("median") if s else None
            om = o.get("median") if o else None
            if sm is not None and om:
                ratio = f"{sm / om:.3g}"
            elif sm is not None and o and o.get("capped"):
                ratio = f"< {sm / o['lower_bound']:.3g}"
            target, check = targets.get(n) or targets.get("*") or ("", None)
            met = "-"
            if check is not None and sm is not None and (om is not None or "x" not in target or "raw" in target):
                met = "yes" if check(sm, om, res) else "NO"
            rows.append((label, n, _fmt(s, unit, scale), _fmt(o, unit, scale), ratio, target, met))
        if metric == "log_capture_s":
            for raw in ("raw-file", "raw-pipe"):
                r = res[metric]["-"].get(raw)
                if r:
                    name = "  raw: program > file" if raw == "raw-file" else "  raw: program | cat > file"
                    rows.append((name, "-", _fmt(r, unit, scale), "", "", "", ""))
            raw = _raw(res)
            if raw:
                per = res[metric]["-"]
                vs = [f"{per[k]['median'] / raw:.3g}x" if per.get(k, {}).get("median") else "-"
                      for k in KINDS]
                rows.append(("  capture time / raw file time", "-", vs[0], vs[1], "", "<= 1.1x", ""))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    notes = []
    for metric in ("stop_s",):
        for n, per in res.get(metric, {}).items():
            for kind, summary in per.items():
                for d in summary.get("detail", []):
                    proj = f"; at that rate all {d['of']} would take ~{d['projected_s']:.0f} s" if d.get("projected_s") else ""
                    notes.append(f"- {kind} stop N={n}: capped at {d['capped_at']:.0f} s with {d['stopped']} of "
                                 f"{d['of']} programs stopped{proj}.")
    for n, floor in sorted(report["meta"].get("floors", {}).items(), key=lambda kv: int(kv[0])):
        notes.append(f"- floor, N={n}: creating {2 * int(n)} log files took {floor['create_2n_files_s']:.3f} s and "
                     f"{n} sequential Popen() calls {floor['popen_n_sequential_s']:.3f} s on this machine.")
    if "spawn_floor_s" in report["meta"]:
        notes.append(f"- floor, restart: Popen() -> the restart program's first stamp takes "
                     f"{report['meta']['spawn_floor_s'] * 1000:.1f} ms on this machine.")
    loads = [v for per in res.get("load_1m", {}).values() for k in per.values() for v in k["samples"]]
    if loads:
        notes.append(f"- 1-minute load average when the samples began: {min(loads):.2f} to {max(loads):.2f} "
                     f"(median {statistics.median(loads):.2f}) on {report['meta']['machine']['nproc']} CPUs.")
    m = report["meta"]["machine"]
    notes.append(f"- load average at start {_load(m.get('loadavg_at_start'))}, at end {_load(m.get('loadavg_at_end'))}.")
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


def _load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "?"


# --------------------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny N, one repetition, short waits")
    p.add_argument("--n", help="comma-separated program counts (default 100,1000; --quick: 5)")
    p.add_argument("--reps", type=int, help="repetitions (default 3; --quick: 1)")
    p.add_argument("--only", choices=("both", *KINDS), default="both", help="run one supervisor only")
    p.add_argument("--json", help="write the results here (default bench/results/latest.json)")
    p.add_argument("--scenarios", default="start,stop,restart,idle,status,log",
                   help="comma-separated subset of start,stop,restart,idle,status,log")
    p.add_argument("--idle", type=float, help="seconds of idle CPU measurement (default 10; --quick: 1)")
    p.add_argument("--status-calls", type=int, help="status command runs per daemon run (default 20; --quick: 3)")
    p.add_argument("--status-budget", type=float, default=20.0,
                   help="after 5 status runs, stop once this many seconds are spent in one daemon run")
    p.add_argument("--restarts", type=int, help="restarts measured per daemon run (default 5; --quick: 2)")
    p.add_argument("--log-mb", type=float, help="MB the log generator writes (default 200; --quick: 5)")
    p.add_argument("--log-timeout", type=float, default=300, help="cap for one log capture (s)")
    p.add_argument("--stop-cap", type=float, default=150,
                   help="give up waiting for a daemon to stop after this many seconds (reported as '> T s')")
    p.add_argument("--slow-reps", type=int, default=1,
                   help="repetitions of supervisord's stop scenario (it takes ~N s each; default 1)")
    p.add_argument("--poll", type=float, default=0.01, help="control-channel polling interval (s)")
    p.add_argument("--output", choices=("auto", "null"), default="auto",
                   help="program output in start/idle/status/stop: each daemon's default log files, or none")
    p.add_argument("--editable-hook", choices=("skip", "keep"), default="skip",
                   help="skip (default): start superd/superctl with python -S and site-packages on PYTHONPATH, "
                        "as a regular install starts; keep: as the editable .venv does (~20 ms more per start)")
    p.add_argument("--python", help="interpreter that runs superd (default: this one, else .venv/bin/python)")
    p.add_argument("--supervisord-venv", default=str(DEFAULT_VENV), help="where supervisord 4.3 is installed")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (configs, daemon logs)")
    args = p.parse_args(argv)
    q = args.quick
    args.n = [int(x) for x in (args.n or ("5" if q else "100,1000")).split(",") if x.strip()]
    args.reps = args.reps or (1 if q else 3)
    args.idle = args.idle if args.idle is not None else (1.0 if q else 10.0)
    args.status_calls = args.status_calls if args.status_calls is not None else (3 if q else 20)
    args.restarts = args.restarts or (2 if q else 5)
    args.log_mb = args.log_mb or (5 if q else 200)
    if q:
        args.stop_cap = min(args.stop_cap, 30)
    unknown = set(args.scenarios.split(",")) - {"start", "stop", "restart", "idle", "status", "log"}
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    _procs.install_handlers()
    try:
        report = run(args)
    except KeyboardInterrupt:
        log("bench: interrupted; everything it started has been killed")
        return 130
    finally:
        _procs.cleanup_all()
    out = Path(args.json) if args.json else HERE / "results" / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    m = report["meta"]["machine"]
    print(f"superd vs supervisord {SUPERVISORD_VERSION} on {m['nproc']} x {m['cpu_model'] or '?'}, "
          f"Python {m['superd_python']}, {report['meta']['elapsed_s']} s; medians [min-max] "
          f"over {args.reps} rep(s)\n")
    print(table(report))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
