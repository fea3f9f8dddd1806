"""The benchmark keeps working: a tiny run of bench/run.py against superd only.

Benchmarks are not tests; this only checks that every scenario runs, yields
numbers, and leaves no process behind. It needs no network (no supervisord).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

from tests.conftest import REPO

# metric -> the N key it is reported under ("-" for scenarios without N)
EXPECTED = {
    "start_s": "3",
    "start_daemon_s": "3",
    "stop_s": "3",
    "idle_cpu_pct": "3",
    "rss_mb": "3",
    "status_s": "3",
    "restart_s": "-",
    "restart_quick_first_s": "-",
    "restart_quick_second_s": "-",
    "log_capture_s": "-",
    "log_daemon_cpu_s": "-",
}


@pytest.mark.timeout(120)
def test_bench_quick_run_superd_only(tmp_path):
    out = tmp_path / "bench.json"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch))
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--only", "superd", "--n", "3",
         "--idle", "0.5", "--log-mb", "2", "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    assert "start N programs" in done.stdout  # the table was printed

    report = json.loads(out.read_text())
    assert report["meta"]["settings"]["kinds"] == ["superd"]
    results = report["results"]
    for metric, n in EXPECTED.items():
        summary = results[metric][n]["superd"]
        assert isinstance(summary.get("median"), (int, float)), (metric, summary)
        assert summary["median"] >= 0, (metric, summary)
    assert results["log_capture_s"]["-"]["raw-file"]["median"] > 0
    # superd stops 3 TERM-ignoring programs with stopwaitsecs=1 in parallel.
    assert 0.9 <= results["stop_s"]["3"]["superd"]["median"] < 10

    # Nothing the bench started is still running, and its scratch space is gone.
    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(scratch) in part for part in proc.info["cmdline"] or ()):
                leftovers.append(proc)
        except psutil.Error:
            pass
    assert not leftovers, [p.info["cmdline"] for p in leftovers]
    assert list(scratch.iterdir()) == []
