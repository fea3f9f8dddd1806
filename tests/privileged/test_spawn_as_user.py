"""What a program started with ``user = ...`` finds: uid, gid, groups, $HOME,
$USER and $LOGNAME of that user (superd must be root to switch to it).
"""

from __future__ import annotations

import os
import pwd

import pytest

pytestmark = [pytest.mark.root, pytest.mark.timeout(30)]


def test_user_sets_uid_gid_groups_and_home(superd_factory, tmp_path):
    nobody = pwd.getpwnam("nobody")
    out = tmp_path / "id.txt"
    # A shell probe: the test's Python lives where nobody may not look.
    d = superd_factory(
        '[program.probe]\ncommand = ["sh", "-c", "id -u; id -g; id -G; echo $HOME; echo $USER $LOGNAME"]\n'
        f'user = "nobody"\ndirectory = "/"\nstdout = "{out}"\nautorestart = false\nstartsecs = 0\n'
    )
    d.wait_state("probe", "exited")
    uid, gid, groups, home, names = out.read_text().splitlines()
    assert int(uid) == nobody.pw_uid
    assert int(gid) == nobody.pw_gid
    assert sorted(int(g) for g in groups.split()) == sorted(set(os.getgrouplist("nobody", nobody.pw_gid)))
    assert home == nobody.pw_dir
    assert names == "nobody nobody"
