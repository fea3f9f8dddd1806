"""What a bench run needs before it measures: the interpreters, supervisord's venv,
compiled bytecode, the descriptor limit, and a description of the machine."""

from __future__ import annotations

import datetime
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

from _daemons import SuperdLaunch, clean_env

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SUPERVISORD_VERSION = "4.3.0"
DEFAULT_VENV = HERE / ".venv-supervisord"


def find_superd_python(explicit: Optional[str]) -> str:
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


def _superctl_argv(python: str) -> list[str]:
    """The superctl console script next to the interpreter when it runs this checkout, else -m."""
    script = Path(python).parent / "superctl"
    if script.exists():
        first = script.read_text(errors="replace").splitlines()[0] if script.stat().st_size else ""
        if first.startswith("#!") and Path(first[2:].strip()).resolve() == Path(python).resolve():
            return [str(script)]
    return [python, "-m", "supervisor.cli.superctl"]


def superd_launch(python: str, hook: str, log: Callable[[str], None]) -> SuperdLaunch:
    """superd and superctl from the checkout.

    ``hook="skip"`` (the default) starts them as ``python -S`` with the checkout and
    the venv's site-packages on PYTHONPATH: the way a regular (non-editable) install
    starts, without the editable install's import hook, which the project's .venv
    runs at every interpreter start (~20 ms here). ``hook="keep"`` runs them exactly
    as the .venv does (``python -m supervisor``, the ``superctl`` console script).
    """
    if hook == "keep":
        return SuperdLaunch([python, "-m", "supervisor"], _superctl_argv(python), str(REPO))
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
        return superd_launch(python, "keep", log)
    return launch


def ensure_supervisord(venv: Path, python: str, log: Callable[[str], None]) -> Path:
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


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (every daemon, the floor
    launcher and their programs inherit it); returns (soft, hard) as they are now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def machine_info(superd_python: str, venv: Optional[Path]) -> dict:
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
        "cgroup2_options": cgroup2_options(),
        "loadavg_at_start": os.getloadavg(),
        "superd_python": version_of(superd_python),
        "superd_commit": _checkout_commit(),
    }
    if venv is not None:
        info["supervisord_python"] = version_of(str(venv / "bin" / "python"))
        info["supervisord_version"] = SUPERVISORD_VERSION
    return info


def cgroup2_options() -> str:
    """The cgroup v2 hierarchy's mount options ("" without one): superd moves
    into a program's cgroup at each spawn, and ``favordynmods`` changes what
    such a move costs."""
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            _, _, rest = line.partition(" - ")
            fields = rest.split()
            if len(fields) >= 3 and fields[0] == "cgroup2":
                return fields[2]
    except OSError:
        pass
    return ""


def _checkout_commit() -> str:
    """The commit HEAD names, read from .git's files (the bench runs no git command:
    one that refreshes the index could collide with a commit in progress)."""
    git = REPO / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        if (git / ref).exists():
            return (git / ref).read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    except OSError:
        pass
    return ""
