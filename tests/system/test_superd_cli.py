"""The superd command line: config discovery, --check, errors, exit codes.

(The conversion of ``superd import-supervisord`` is in tests/unit/test_migrate.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import PYTHON, pid_alive, wait_until

pytestmark = pytest.mark.timeout(30)


def superd(*args: str, cwd=None, env=None, timeout: float = 15) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "SUPERD_CONFIG"}
    full_env.update(env or {})
    return subprocess.run(
        [PYTHON, "-m", "supervisor", *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout
    )


def test_invalid_config_exits_2_naming_file_and_key_and_starts_nothing(tmp_path):
    marker = tmp_path / "started"
    config = tmp_path / "bad.toml"
    config.write_text(
        f'[superd]\nsocket = "{tmp_path}/s.sock"\n'
        f'[program.web]\ncommand = "touch {marker}"\nstopwaitsecs = "ten"\nbogus = 1\n'
    )
    result = superd("-c", str(config))
    assert result.returncode == 2
    assert str(config) in result.stderr
    assert "program.web.stopwaitsecs" in result.stderr
    assert "program.web.bogus" in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "s.sock").exists()


def test_check_valid_and_invalid(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[program.a]\ncommand = "sleep 1"\nnumprocs = 2\n')
    result = superd("--check", "-c", str(good))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "2 processes" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[program.a]\ncommand = ""\n')
    result = superd("--check", "-c", str(bad))
    assert result.returncode == 2
    assert "program.a.command" in result.stderr


def test_config_found_through_env_then_working_directory(tmp_path):
    via_env = tmp_path / "env.toml"
    via_env.write_text('[program.from_env]\ncommand = "sleep 1"\n')
    result = superd("--check", cwd=tmp_path, env={"SUPERD_CONFIG": str(via_env)})
    assert result.returncode == 0 and str(via_env) in result.stdout
    (tmp_path / "superd.toml").write_text('[program.from_cwd]\ncommand = "sleep 1"\n')
    result = superd("--check", cwd=tmp_path)
    assert result.returncode == 0 and "superd.toml" in result.stdout


# superd with the system places of its config search path (/etc/superd/superd.toml,
# which the machine running the tests may have) moved under the folder argv[1]:
# config.CONFIG_SEARCH_PATH is the one attribute the search reads.
SUPERD_UNDER_ROOT = (
    "import sys; from supervisor import config; root = sys.argv.pop(1); "
    "config.CONFIG_SEARCH_PATH = tuple(root + p if p.startswith('/') else p for p in config.CONFIG_SEARCH_PATH); "
    "from supervisor.cli.superd import main; main()"
)


def test_no_config_anywhere_is_a_usage_error(tmp_path):
    # Nothing in the working directory, no $SUPERD_CONFIG, and /etc/superd/superd.toml
    # looked for under an empty folder: the same on every machine.
    env = {k: v for k, v in os.environ.items() if k != "SUPERD_CONFIG"}
    result = subprocess.run([PYTHON, "-c", SUPERD_UNDER_ROOT, str(tmp_path / "root")], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=15)
    assert result.returncode == 2
    assert "no config file" in result.stderr


def test_missing_config_file(tmp_path):
    result = superd("-c", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "nope.toml" in result.stderr


def test_version():
    from supervisor import __version__

    result = superd("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_exit_with_program_ends_superd_with_its_code(superd_factory, tmp_path):
    d = superd_factory(
        '[program.job]\ncommand = ["sh", "-c", "sleep 0.5; exit 5"]\nexit_with = true\nautorestart = false\nstartsecs = 0\n'
        '[program.helper]\ncommand = "sleep 1000"\nstartsecs = 0\n'
    )
    helper = d.status("helper")["helper"]["pid"]
    assert d.wait_exit(15) == 5
    assert not pid_alive(helper)


def test_a_second_superd_on_the_same_socket_refuses_to_start(superd_factory, tmp_path):
    first = superd_factory('[program.a]\ncommand = "sleep 1000"\nstartsecs = 0\n')
    second = subprocess.run(
        [PYTHON, "-m", "supervisor", "-c", str(tmp_path / "superd.toml")],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert second.returncode == 1
    assert "another superd" in second.stderr
    assert first.state_of("a") == "running"
    assert first.call("state")["pid"] == first.pid


def test_stale_socket_is_replaced(tmp_path, superd_factory):
    import socket as socketlib

    stale = socketlib.socket(socketlib.AF_UNIX)
    stale.bind(str(tmp_path / "superd.sock"))
    stale.close()  # the file stays, nobody listens
    d = superd_factory('[program.a]\ncommand = "sleep 1000"\n')
    assert d.call("state")["state"] == "running"


def test_sigusr1_does_not_kill_superd(superd_factory):
    d = superd_factory('[program.a]\ncommand = "sleep 1000"\nstartsecs = 0\n')
    d.signal(signal.SIGUSR1)
    wait_until(lambda: "ignoring SIGUSR1" in d.log(), 5)
    assert d.call("state")["state"] == "running"


def test_stopwaitsecs_option_is_refused_with_a_config(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[program.a]\ncommand = "sleep 1"\n')
    result = superd("-c", str(config), "--stopwaitsecs", "3")
    assert result.returncode == 2
    assert "single-program mode" in result.stderr


def test_import_supervisord_missing_file_in_a_fresh_interpreter(tmp_path) -> None:
    missing = tmp_path / "gone.conf"
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from supervisor.migrate import main; "
                               "sys.exit(main(sys.argv[1:]))", str(missing)],
        capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"superd import-supervisord: cannot read {missing}: No such file or directory\n"


_LOW_LIMIT = ("import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96)); "
              "os.execv(sys.executable, [sys.executable, '-m', 'supervisor', *sys.argv[1:]])")


def test_a_config_that_cannot_fit_the_fd_limit_is_warned_about(tmp_path):
    """40 capturing programs need ~190 descriptors; a hard limit of 96 cannot hold them."""
    programs = "".join(f'[program.p{i}]\ncommand = "sleep 1000"\nstartsecs = 0\n' for i in range(40))
    config = tmp_path / "superd.toml"
    config.write_text(f'[superd]\nsocket = "{tmp_path}/s.sock"\nrun_dir = "{tmp_path}/run"\n'
                      f'logs_dir = "{tmp_path}/logs"\n{programs}')
    check = subprocess.run([PYTHON, "-c", _LOW_LIMIT, "--check", "-c", str(config)],
                           capture_output=True, text=True, timeout=15)
    assert check.returncode == 0, check.stderr
    assert "file descriptors" in check.stderr and "may open only 96" in check.stderr

    proc = subprocess.Popen([PYTHON, "-c", _LOW_LIMIT, "-c", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        wait_until(lambda: seen.append(proc.stderr.readline()) or "may open only 96" in seen[-1], 15)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)

    quiet = tmp_path / "quiet.toml"
    quiet.write_text(config.read_text().replace('startsecs = 0\n', 'startsecs = 0\nstdout = "null"\nstderr = "null"\n'))
    check = subprocess.run([PYTHON, "-c", _LOW_LIMIT, "--check", "-c", str(quiet)],
                           capture_output=True, text=True, timeout=15)
    assert check.returncode == 0 and "file descriptors" not in check.stderr, check.stderr
