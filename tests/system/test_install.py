"""A supervisord 'supervisor' package in superd's way: one clear line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ["superd", "superctl"])
def test_supervisords_package_is_named_in_one_line(tmp_path, command):
    package = tmp_path / "supervisor"
    package.mkdir()
    (package / "__init__.py").write_text("# this is a package\n")
    (package / "supervisord.py").write_text("")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}")
    result = subprocess.run([sys.executable, "-c", f"import superd_entry; superd_entry.{command}()", "--help"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (f"{command}: the Python package 'supervisor' found at {package}/__init__.py is "
                             "supervisord's, not superd's (both use that import name): install superd in an "
                             "environment of its own, e.g. with: pipx install superd\n")


def test_superds_own_package_runs(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", "import sys, superd_entry; sys.argv[1:] = ['--version']; "
                             "superd_entry.superctl()"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=20)
    assert result.returncode == 0, result.stderr
    assert "superctl" in result.stdout
