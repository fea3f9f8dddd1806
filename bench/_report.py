"""The bench's summaries and its report: the main table, the cost per program, the notes.

Results are ``results[metric][n_key][kind] = summary``: ``n_key`` is the number of
programs ("1000"), with " pools" when they ran as numprocs pools ("1000 pools"),
the number of writers for the many-writer capture, or "-"; ``kind`` is superd,
supervisord, superd+http (superd with ``[http]``, with ``--http``), or a baseline
(floor, raw-file, raw-pipe, raw-files).
"""

from __future__ import annotations

import statistics
from typing import Callable, Optional

KINDS = ("superd", "supervisord")
HTTP_KIND = "superd+http"  # --http: superd with an [http] table; its rows are labelled "superd +http"
KIND_LABELS = {HTTP_KIND: "superd +http"}
STOPWAITSECS = 1.0  # of the lifecycle's programs: the stop's wait, not the daemon's work


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


def n_of(key: str) -> Optional[int]:
    """The number in an N key ("1000 pools" -> 1000; "-" -> None)."""
    head = key.split()[0]
    return int(head) if head.isdigit() else None


def _median(res: dict, metric: str, key: str, kind: str) -> Optional[float]:
    return res.get(metric, {}).get(key, {}).get(kind, {}).get("median")


# A target: n -> (text, check(superd, supervisord, floor, results)), or None where there is none.
# A check answers None when what it compares with was not measured.
Target = Callable[[Optional[int]], Optional[tuple]]


def _start_target(n):
    limit = 1.3 if n is None or n <= 1000 else 1.5
    return f"<= {limit}x floor", lambda s, o, f, r: None if f is None else s <= limit * f


def _multi_cpu_target(n):
    def check(s, o, f, r):
        one = _median(r, "log_cpu_ms_per_mb", "-", "superd")
        return None if one is None else s <= one
    return "<= one writer's", check


#: The bare launcher that also makes a cgroup per program (bench/bare_launcher.py --cgroups).
CGROUP_FLOOR = "floor_cgroups"

# metric, label, unit, scale, the baseline kind shown in the floor column, target
ROWS: list[tuple[str, str, str, float, Optional[str], Target]] = [
    ("start_s", "start N programs: launch -> all running (floor: -> all spawned)", "s", 1, "floor", _start_target),
    ("start_s", "  floor with a cgroup per program, moved into before each spawn as superd does", "s", 1,
     CGROUP_FLOOR, lambda n: None),
    ("start_daemon_s", "  same, by the daemon's own clock", "s", 1, None, lambda n: None),
    ("fds", "  daemon's open file descriptors", "", 1, None, lambda n: None),
    ("stop_s", "stop N TERM-ignoring programs (stopwaitsecs=1), SIGTERM -> daemon gone", "s", 1, None,
     lambda n: ("<= 1.2 s", lambda s, o, f, r: s <= 1.2) if n == 100 else
     ("<= 3 s", lambda s, o, f, r: s <= 3.0) if n and n >= 10000 else None),
    ("restart_s", "restart latency after a 1.2 s run (exit -> next start)", "ms", 1000, None,
     lambda n: ("<= 20 ms", lambda s, o, f, r: s <= 0.020)),
    ("restart_quick_median3_s", "restart latency, 0.2 s program, median of its first 3 restarts", "ms", 1000,
     None, lambda n: ("<= 20 ms", lambda s, o, f, r: s <= 0.020)),
    ("restart_quick_1_s", "  1st restart", "ms", 1000, None, lambda n: None),
    ("restart_quick_2_s", "  2nd restart", "ms", 1000, None, lambda n: None),
    ("restart_quick_3_s", "  3rd restart", "ms", 1000, None, lambda n: None),
    ("restart_loaded_s", "restart latency after a 1.2 s run, 4 busy loops per CPU (nice 0) meanwhile", "ms", 1000,
     None, lambda n: None),
    ("idle_cpu_pct", "daemon CPU while idle (% of one CPU)", "%", 1, None,
     lambda n: ("0 %", lambda s, o, f, r: s < 0.0005)),
    ("idle_wakeups_per_s", "  daemon context switches per second while idle", "/s", 1, None, lambda n: None),
    ("rss_mb", "daemon RSS", "MB", 1, None,
     lambda n: ("<= 20 MB", lambda s, o, f, r: s <= 20) if n == 100 else
     ("<= 64 MB", lambda s, o, f, r: s <= 64) if n and n >= 10000 else None),
    ("status_s", "status command wall time", "ms", 1000, None,
     lambda n: ("<= 1 s", lambda s, o, f, r: s <= 1.0) if n and n >= 10000 else
     ("<= 0.5x", lambda s, o, f, r: None if o is None else s <= 0.5 * o)),
    ("xmlrpc_status_s", "XML-RPC getAllProcessInfo over HTTP, unix socket (superd: +http)", "ms", 1000, None,
     lambda n: None),
    ("reload_same_s", "reload command, config unchanged", "ms", 1000, None, lambda n: None),
    ("reload_changed_s", "reload command, one program's command changed (its stop: 1 s)", "ms", 1000, None,
     lambda n: None),
    ("log_capture_s", "log capture, one writer: its start -> all bytes in the file (floor: > file)", "s", 1,
     "raw-file", lambda n: ("<= 1.1x raw file", lambda s, o, f, r: None if f is None else s <= 1.1 * f)),
    ("log_writer_s", "  the writer's own run time", "s", 1, "raw-file", lambda n: None),
    ("log_cpu_ms_per_mb", "  daemon CPU per captured MB", "ms/MB", 1, None, lambda n: None),
    ("log_multi_capture_s", "log capture, N writers at once: go -> all bytes in the files (floor: > files)",
     "s", 1, "raw-files", lambda n: None),
    ("log_multi_mb_per_s", "  aggregate throughput", "MB/s", 1, "raw-files",
     lambda n: (">= 0.8x raw files", lambda s, o, f, r: None if f is None else s >= 0.8 * f)),
    ("log_multi_cpu_ms_per_mb", "  daemon CPU per captured MB", "ms/MB", 1, None, _multi_cpu_target),
]


def _fmt(summary: Optional[dict], unit: str, scale: float) -> str:
    if not summary:
        return "-"
    if summary.get("capped"):
        return f"> {summary['lower_bound'] * (scale if unit != 's' else 1):.0f} {unit}"
    if "median" not in summary:
        return "-"
    values = [summary[k] * scale for k in ("median", "min", "max")]
    if all(isinstance(v, int) for v in summary["samples"]):
        digits = 0
    else:
        digits = 3 if values[0] < 10 else 1 if values[0] < 1000 else 0
    med, lo, hi = (f"{v:.{digits}f}" for v in values)
    text = med if lo == hi else f"{med} [{lo}-{hi}]"
    return f"{text} {unit}".rstrip()


def _ratio(a: Optional[dict], b: Optional[dict]) -> str:
    am = a.get("median") if a else None
    if am is None or not b:
        return "-"
    if b.get("median"):
        return f"{am / b['median']:.3g}"
    if b.get("capped"):
        return f"< {am / b['lower_bound']:.3g}"
    return "-"


def _key_order(key: str) -> tuple:
    n = n_of(key)
    return (n is None, "pools" in key, n or 0)


def _markdown(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


# Metrics only superd+http and supervisord have: the superd column shows superd+http.
HTTP_ONLY = {"xmlrpc_status_s"}
HTTP_LABEL = "  same, superd +http ([http] on)"


def _met(check, s: Optional[dict], o: Optional[dict], f: Optional[dict], res: dict) -> str:
    sm, om, fm = (x.get("median") if x else None for x in (s, o, f))
    verdict = check(sm, om, fm, res) if check is not None and sm is not None else None
    return "-" if verdict is None else "yes" if verdict else "NO"


def main_table(res: dict) -> list[str]:
    rows = [("scenario", "N", "floor", "superd", "supervisord", "superd/floor", "superd/supervisord",
             "target (superd)", "met")]
    for metric, label, unit, scale, floor_kind, target in ROWS:
        for key, per in sorted(res.get(metric, {}).items(), key=lambda kv: _key_order(kv[0])):
            s, o = per.get(HTTP_KIND if metric in HTTP_ONLY else "superd"), per.get("supervisord")
            f = per.get(floor_kind) if floor_kind else None
            if floor_kind == CGROUP_FLOOR:
                if f is not None:  # a second floor, against the same superd: no [http] row under it
                    rows.append((label, key, _fmt(f, unit, scale), _fmt(s, unit, scale), "", _ratio(s, f), "",
                                 "", "-"))
                continue
            text, check = target(n_of(key)) or ("", None)
            rows.append((label, key, _fmt(f, unit, scale) if floor_kind else "", _fmt(s, unit, scale),
                         _fmt(o, unit, scale), _ratio(s, f) if floor_kind else "", _ratio(s, o), text,
                         _met(check, s, o, f, res)))
            h = per.get(HTTP_KIND)
            if h and metric not in HTTP_ONLY:
                # superd with [http], under the row it repeats: its value in the superd column,
                # its ratio to supervisord (on the row above), superd's target applied to it.
                rows.append((HTTP_LABEL, key, "", _fmt(h, unit, scale), "", "", _ratio(h, o), text,
                             _met(check, h, o, f, res)))
        if metric == "log_capture_s" and "raw-pipe" in res.get(metric, {}).get("-", {}):
            rows.append(("  baseline: program | cat > file", "-", _fmt(res[metric]["-"]["raw-pipe"], unit, scale),
                         "", "", "", "", "", ""))
    return _markdown(rows)


# Lifecycle steps whose time over N shows a step that grows faster than N.
PER_PROGRAM = [
    ("start_s", "start", 0.0),
    ("stop_s", "stop, beyond the 1 s stopwaitsecs", STOPWAITSECS),
    ("status_s", "status command", 0.0),
    ("xmlrpc_status_s", "XML-RPC getAllProcessInfo over HTTP", 0.0),
    ("reload_same_s", "reload, config unchanged", 0.0),
]


def per_program_table(res: dict, output_by_n: dict) -> list[str]:
    """Median time / N in microseconds at each N, side by side, and the growth from the
    next-largest N to the largest (1.0: linear; 10 for 10x the programs: quadratic)."""
    keys = {k for metric, _, _ in PER_PROGRAM for k in res.get(metric, {}) if n_of(k)}
    ns = sorted({n_of(k) for k in keys})
    growth_head = (f"N={ns[-1]} / N={ns[-2]}",) if len(ns) > 1 else ()
    rows = [("per program (median / N)", "kind", *(f"N={n} ({output_by_n.get(str(n), '?')})" for n in ns),
             *growth_head)]
    for layout in ("", " pools"):
        for metric, label, subtract in PER_PROGRAM:
            for kind in ("floor", CGROUP_FLOOR, "superd", HTTP_KIND, "supervisord"):
                costs = []
                for n in ns:
                    m = _median(res, metric, f"{n}{layout}", kind)
                    costs.append(None if m is None else (m - subtract) / n * 1e6)
                if all(c is None for c in costs):
                    continue
                cells = ["-" if c is None else f"{c:.0f} µs" for c in costs]
                if growth_head:
                    cells.append(f"{costs[-1] / costs[-2]:.2f}x" if costs[-1] is not None and costs[-2] else "-")
                rows.append((label + (", pools" if layout else ""), KIND_LABELS.get(kind, kind), *cells))
    return _markdown(rows) if len(rows) > 1 else []


def notes(report: dict) -> list[str]:
    res, meta = report["results"], report["meta"]
    out = []
    for n, per in res.get("stop_s", {}).items():
        for kind, summary in per.items():
            for d in summary.get("detail", []):
                proj = ""
                if d.get("projected_s"):
                    proj = f"; at that rate all {d['of']} would take ~{d['projected_s']:.0f} s"
                out.append(f"- {kind} stop N={n}: capped at {d['capped_at']:.0f} s with {d['stopped']} of "
                           f"{d['of']} programs stopped{proj}.")
    for skip in meta.get("skipped", []):
        out.append(f"- {skip['kind']} not run at N={skip['n']}: {skip['reason']}.")
    nice = meta.get("settings", {}).get("superd_nice")
    if nice is not None:
        out.append(f"- superd ran with `nice = {nice}` (--superd-nice), not its default.")
    if meta.get("output_by_n"):
        modes = ", ".join(f"N={n}: {mode}" for n, mode in meta["output_by_n"].items())
        out.append(f"- program output in the lifecycle runs: {modes}; descriptor limit (soft/hard, inherited "
                   f"by every daemon): {meta['fd_limit'][0]}/{meta['fd_limit'][1]}.")
    if meta.get("pool_size"):
        out.append(f"- \"N pools\" rows: N / {meta['pool_size']} programs with numprocs = {meta['pool_size']}; "
                   f"other rows: N separate programs.")
    out += http_notes(res)
    for n, floor in sorted(meta.get("floors", {}).items(), key=lambda kv: int(kv[0])):
        out.append(f"- floor, N={n}: creating the {2 * int(n)} log files of \"auto\" output took "
                   f"{floor['create_2n_files_s']:.3f} s on this machine (the bare launcher creates none).")
    if "spawn_floor_s" in meta:
        out.append(f"- floor, restart: Popen() -> the restart program's first stamp takes "
                   f"{meta['spawn_floor_s'] * 1000:.1f} ms on this machine.")
    loads = [v for per in res.get("load_1m", {}).values() for k in per.values() for v in k["samples"]]
    if loads:
        out.append(f"- 1-minute load average when the samples began: {min(loads):.2f} to {max(loads):.2f} "
                   f"(median {statistics.median(loads):.2f}) on {meta['machine']['nproc']} CPUs.")
    m = meta["machine"]
    if "cgroup2_options" in m:
        out.append(f"- cgroup v2 mount options: {m['cgroup2_options'] or 'no cgroup v2'}.")
    out.append(f"- load average at start {_load(m.get('loadavg_at_start'))}, at end {_load(m.get('loadavg_at_end'))}.")
    return out


# What --http adds, as "superd +http minus superd": metric, label, unit, scale.
HTTP_DELTAS = [("rss_mb", "RSS", "MB", 1), ("uss_mb", "USS", "MB", 1), ("idle_cpu_pct", "idle CPU", "%", 1),
               ("status_s", "status command", "ms", 1000), ("start_s", "start", "ms", 1000)]


def http_notes(res: dict) -> list[str]:
    """What superd +http is, what supervisord serves, and what [http] costs superd at each N."""
    keys = sorted({key for metric, _, _, _ in HTTP_DELTAS for key, per in res.get(metric, {}).items()
                   if HTTP_KIND in per and "superd" in per}, key=_key_order)
    if not keys and "xmlrpc_status_s" not in res \
            and not any(HTTP_KIND in per for by_key in res.values() for per in by_key.values()):
        return []
    out = ['- "superd +http" rows (--http): superd with `[http] listen = "unix://..."` (its XML-RPC/HTTP '
           'listener, which imports h11, on a unix socket in the scratch directory; no credentials), run '
           'for start, idle and status only; the XML-RPC row times `supervisor.getAllProcessInfo` from the '
           "bench's own process (xmlrpc.client, a fresh connection per call) over that socket, and over "
           "supervisord's `[unix_http_server]` socket: supervisord serves XML-RPC over HTTP in every run "
           "(supervisorctl uses it too; no `[inet_http_server]`)."]
    for key in keys:
        parts = []
        for metric, label, unit, scale in HTTP_DELTAS:
            per = res.get(metric, {}).get(key, {})
            a, b = (per.get(k, {}).get("median") for k in ("superd", HTTP_KIND))
            if a is None or b is None:
                continue
            digits = 3 if unit == "%" else 1
            rel = f", {100 * (b - a) / a:+.0f} %" if a and unit != "%" else ""
            parts.append(f"{label} {b * scale - a * scale:+.{digits}f} {unit} "
                         f"({a * scale:.{digits}f} -> {b * scale:.{digits}f}{rel})")
        if parts:
            out.append(f"- [http] costs superd at N={key} (medians, superd -> superd +http): " + "; ".join(parts) + ".")
    return out


def _load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "?"


def table(report: dict) -> str:
    parts = ["\n".join(main_table(report["results"]))]
    per_program = per_program_table(report["results"], report["meta"].get("output_by_n", {}))
    if per_program:
        parts.append("Cost per program (a step that grows faster than N shows as a growing cost):\n\n"
                     + "\n".join(per_program))
    parts.append("\n".join(notes(report)))
    return "\n\n".join(parts)
