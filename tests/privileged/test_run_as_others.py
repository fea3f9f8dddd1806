"""``--check`` and the private run directory, seen by another user than root:
what a program's user may do, and what superd refuses for a non-root user."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
import traceback
from pathlib import Path

import pytest

from supervisor.config import load
from supervisor.config.diagnose import diagnose
from supervisor.config.rundir import USER_TMP_BASE
from supervisor.daemon.private import check_private

pytestmark = [pytest.mark.root, pytest.mark.timeout(30)]

NOBODY = pwd.getpwnam("nobody")
UID = 3_999_000 + os.getpid() % 1000  # a uid nobody has: its folder is ours to make and remove


def as_nobody(check) -> None:
    """Run ``check()`` in a child that is user nobody; its failure fails the test."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, run, report
        os.close(read_end)
        code = 0
        try:
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            check()
        except BaseException:  # noqa: BLE001 - everything is reported to the parent
            os.write(write_end, traceback.format_exc().encode())
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as report:
        failure = report.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, failure


@pytest.fixture
def base():
    path = USER_TMP_BASE.format(uid=UID)
    shutil.rmtree(path, ignore_errors=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_checked_as_the_programs_user(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    tool = private / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "superd.toml"
    path.write_text(f'[program.t]\ncommand = "{tool}"\nuser = "nobody"\n'
                    f'[program.d]\ncommand = "true"\nuser = "nobody"\ndirectory = "{private}"\n'
                    f'[superd]\nlogs_dir = "{tmp_path}/logs"\n')
    found, _ = diagnose(load(str(path), os.environ))
    assert [f"{p.key}: {p.message}" for p in found] == [
        f'program.d.directory: user nobody cannot enter "{private}"',
        f'program.t.command: "{tool}" is not executable by user nobody',
    ]


def test_an_unwritable_logs_dir_is_found_for_a_non_root_superd():
    def check() -> None:
        home = Path(tempfile.mkdtemp(prefix="superd-check-"))
        try:
            folder = home / "ro"
            folder.mkdir()
            folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
            path = home / "superd.toml"
            path.write_text(f'[superd]\nlogs_dir = "{folder}/logs"\nrun_dir = "{home}/run"\n'
                            '[program.a]\ncommand = "true"\n')
            found, _ = diagnose(load(str(path), {"PATH": os.defpath}))
            assert [p.key for p in found] == ["superd.logs_dir"], found
        finally:
            shutil.rmtree(home, ignore_errors=True)

    as_nobody(check)


def test_a_non_root_users_folder_is_made_0700():
    path = USER_TMP_BASE.format(uid=NOBODY.pw_uid)
    shutil.rmtree(path, ignore_errors=True)

    def check() -> None:
        assert check_private(path + "/superd") is None
        st = os.lstat(path)
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()

    try:
        as_nobody(check)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_made_0700_and_foreign_or_open_folders_are_refused(base):
    # Made by superd itself (as root, for a uid that is not root: refused as foreign).
    assert "belongs to uid 0, not to superd's user" in check_private(base + "/superd", uid=UID)
    assert stat.S_IMODE(os.lstat(base).st_mode) == 0o700
    # Owned by the user but writable by everyone.
    os.chown(base, UID, UID)
    os.chmod(base, 0o777)
    why = check_private(base + "/superd.sock", uid=UID)
    assert why == f"{base} is writable by others (mode 0777): anyone could swap superd's socket and state; " \
                  f"run: chmod 700 {base}"
    os.chmod(base, 0o700)
    assert check_private(base + "/superd", uid=UID) is None
