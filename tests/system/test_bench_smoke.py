"""The benchmark keeps working: a tiny run of bench/run.py against superd only.

Benchmarks are not tests; this only checks that every scenario runs (the bare
launcher's floor, numprocs pools, reloads, the many-writer capture, and
``--http``'s superd with ``[http]`` included), yields numbers, and leaves no
process behind. It needs no network (no
supervisord).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

from tests.conftest import REPO

# metric -> (the key it is reported under: N, "N pools", writers or "-"; the kinds reported)
EXPECTED = {
    "start_s": ("4", ("floor", "superd")),
    "start_daemon_s": ("4", ("superd",)),
    "fds": ("4", ("superd",)),
    "stop_s": ("4", ("superd",)),
    "idle_cpu_pct": ("4", ("superd",)),
    "rss_mb": ("4", ("superd",)),
    "status_s": ("4", ("superd",)),
    "reload_same_s": ("4", ("superd",)),
    "reload_changed_s": ("4", ("superd",)),
    "restart_s": ("-", ("superd",)),
    "restart_quick_1_s": ("-", ("superd",)),
    "restart_quick_2_s": ("-", ("superd",)),
    "restart_quick_3_s": ("-", ("superd",)),
    "restart_quick_median3_s": ("-", ("superd",)),
    "restart_loaded_s": ("-", ("superd",)),
    "log_capture_s": ("-", ("raw-file", "raw-pipe", "superd")),
    "log_cpu_ms_per_mb": ("-", ("superd",)),
    "log_multi_capture_s": ("3", ("raw-files", "superd")),
    "log_multi_mb_per_s": ("3", ("raw-files", "superd")),
    "log_multi_cpu_ms_per_mb": ("3", ("superd",)),
}
POOLED = ("start_s", "fds", "stop_s", "status_s", "reload_same_s", "reload_changed_s")
# --http: superd with [http] runs start, idle and status (and the XML-RPC status over HTTP), no reload or stop.
HTTP_KIND = "superd+http"
HTTP_EXPECTED = ("start_s", "fds", "idle_cpu_pct", "rss_mb", "uss_mb", "status_s", "xmlrpc_status_s")
HTTP_ABSENT = ("stop_s", "reload_same_s", "reload_changed_s", "restart_s", "log_capture_s")


@pytest.mark.timeout(120)
def test_bench_quick_run_superd_only(tmp_path):
    out = tmp_path / "bench.json"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch))
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--only", "superd", "--n", "4",
         "--pools", "--pool-size", "2", "--idle", "0.3", "--status-calls", "2", "--restarts", "1",
         "--log-mb", "1", "--log-writers", "3", "--http", "--superd-nice", "0", "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    assert "start N programs" in done.stdout  # the table was printed
    assert "Cost per program" in done.stdout
    assert "same, superd +http ([http] on)" in done.stdout
    assert "XML-RPC getAllProcessInfo over HTTP" in done.stdout
    assert "[http] costs superd at N=4" in done.stdout
    assert "superd ran with `nice = 0` (--superd-nice), not its default." in done.stdout
    assert "busy loops" in done.stderr  # the restart with the CPUs busy ran

    report = json.loads(out.read_text())
    assert report["meta"]["settings"]["kinds"] == ["superd"]
    assert report["meta"]["settings"]["http"] is True
    assert report["meta"]["settings"]["superd_nice"] == 0
    assert report["meta"]["settings"]["lifecycle_kinds"] == ["superd", HTTP_KIND]
    assert report["meta"]["output_by_n"] == {"4": "auto"}
    results = report["results"]
    for metric, (key, kinds) in EXPECTED.items():
        for kind in kinds:
            summary = results[metric][key][kind]
            assert isinstance(summary.get("median"), (int, float)), (metric, kind, summary)
            assert summary["median"] >= 0, (metric, kind, summary)
    for metric in POOLED:
        assert results[metric]["4 pools"]["superd"]["median"] >= 0, metric
    for key in ("4", "4 pools"):
        for metric in HTTP_EXPECTED:
            summary = results[metric][key][HTTP_KIND]
            assert isinstance(summary.get("median"), (int, float)) and summary["median"] >= 0, (metric, key, summary)
        for metric in HTTP_ABSENT:
            assert HTTP_KIND not in results.get(metric, {}).get(key, {}), (metric, key)
        # plain superd has no HTTP listener: the XML-RPC row is superd+http's (and supervisord's) only
        assert "superd" not in results["xmlrpc_status_s"][key]
    assert results["xmlrpc_status_s"]["4"][HTTP_KIND]["n"] == 2
    assert results["start_s"]["4 pools"]["floor"]["median"] > 0
    if os.geteuid() == 0 and os.environ.get("CI") == "true":  # CI: root with cgroup v2
        # The second floor: a cgroup per program, as superd makes them; none is left behind.
        assert results["start_s"]["4"]["floor_cgroups"]["median"] > 0
        assert "floor with a cgroup per program" in done.stdout
        from supervisor.daemon.cgroups import own_cgroup

        own = own_cgroup()
        assert not [e for e in os.listdir(own) if e.startswith("bench-floor-")], os.listdir(own)
    # superd holds a pipe per stream of each program at least.
    assert results["fds"]["4"]["superd"]["median"] >= 8
    # superd stops 4 TERM-ignoring programs with stopwaitsecs=1 in parallel.
    assert 0.9 <= results["stop_s"]["4"]["superd"]["median"] < 10

    # Nothing the bench started is still running (its programs run in, or name, the
    # scratch directory), and its scratch space is gone.
    leftovers = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if (proc.info["cwd"] or "").startswith(str(scratch)) \
                    or any(str(scratch) in part for part in proc.info["cmdline"] or ()):
                leftovers.append(proc)
        except psutil.Error:
            pass
    assert not leftovers, [p.info["cmdline"] for p in leftovers]
    assert list(scratch.iterdir()) == []


def test_bench_superd_nice_reaches_superd_s_config(tmp_path, monkeypatch):
    """--superd-nice N: the [superd] table of every config the bench writes for superd says so."""
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import _daemons

    launch = _daemons.SuperdLaunch(["python", "-m", "supervisor"], ["superctl"], str(REPO))
    program = _daemons.Program("p", ["sleep", "1"])
    plain = _daemons.Superd(tmp_path, str(tmp_path / "s.sock"), launch).config_text([program])
    lowered = _daemons.Superd(tmp_path, str(tmp_path / "s.sock"), launch, nice=0).config_text([program])
    assert not [line for line in plain.split("[program.p]")[0].splitlines() if line.startswith("nice")]
    assert "\nnice = 0\n" in lowered.split("[program.p]")[0]
