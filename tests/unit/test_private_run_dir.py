"""The default run directory: /tmp/superd-$UID made 0700 and checked; one run_dir per instance."""

from __future__ import annotations

import os
import shutil

import pytest

from supervisor.config import parse
from supervisor.config.rundir import USER_TMP_BASE, instance_run_dir
from supervisor.daemon.private import check_private

pytestmark = pytest.mark.timeout(30)

UID = 3_999_000 + os.getpid() % 1000  # a uid nobody has: its folder is ours to make and remove


@pytest.fixture
def base():
    path = USER_TMP_BASE.format(uid=UID)
    shutil.rmtree(path, ignore_errors=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_paths_elsewhere_are_left_alone(tmp_path):
    assert check_private(str(tmp_path / "run"), uid=UID) is None


def test_a_symlink_is_refused(base, tmp_path):
    os.symlink(tmp_path, base)
    assert "is not a folder (a symbolic link?)" in check_private(base + "/superd", uid=UID)
    os.unlink(base)


def test_run_dir_per_instance():
    assert instance_run_dir("/run/superd", "/run/superd.sock", "/run/superd.sock", "/etc/a.toml") == "/run/superd"
    assert instance_run_dir("/run/superd", "/run/superd.sock", "/run/app.sock", "/etc/a.toml") == \
        "/run/superd-run-app.sock"
    assert instance_run_dir("/run/superd", "/run/superd.sock", "", "/etc/b/superd.toml") == \
        "/run/superd-etc-b-superd.toml"
    assert instance_run_dir("/run/superd", "/run/superd.sock", "", None) == "/run/superd"
    long = instance_run_dir("/run/superd", "/run/superd.sock", "/srv/" + "x" * 200 + "/s.sock", None)
    assert len(long) < 90 and long.startswith("/run/superd-")
    assert long != instance_run_dir("/run/superd", "/run/superd.sock", "/srv/" + "x" * 201 + "/s.sock", None)


def test_config_without_run_dir_gets_its_instances_own():
    env = {"XDG_RUNTIME_DIR": "/run/user/1000"}
    if os.geteuid() == 0:
        default, socket = "/run/superd", "/run/superd.sock"
    else:
        default, socket = "/run/user/1000/superd", "/run/user/1000/superd.sock"
    main = "/srv/app/superd.toml"
    assert parse({}, main, env).daemon.run_dir == default
    assert parse({"superd": {"socket": socket}}, main, env).daemon.run_dir == default
    assert parse({"superd": {"socket": "/srv/app/s.sock"}}, main, env).daemon.run_dir == default + "-srv-app-s.sock"
    assert parse({"superd": {"socket": "/x.sock", "run_dir": "/r"}}, main, env).daemon.run_dir == "/r"
