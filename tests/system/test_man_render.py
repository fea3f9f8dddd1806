"""The man pages render without a warning, through real formatters.

Each page goes through ``groff -man -Tutf8 -ww -z`` and must not produce a
single warning, and renders to text with its header and every section.
``man --warnings`` and ``lexgrog`` (man-db) must accept it too. groff comes from
Debian's ``groff-base`` package, man-db from ``man-db``; without them these
tests skip on a developer's machine and fail under CI (.ci/run installs both).
That the pages match the code is checked in tests/unit/test_man_pages.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import skip_or_fail
from tests.manpages import PAGES, page, sections

pytestmark = pytest.mark.timeout(30)


GROFF_HINT = "groff is not installed (Debian/Ubuntu: apt-get install -y groff-base)"
MAN_DB_HINT = "man-db is not installed (Debian/Ubuntu: apt-get install -y man-db)"


def _groff() -> str:
    groff = shutil.which("groff")
    if groff is None:
        skip_or_fail(GROFF_HINT)
    return groff  # type: ignore[return-value]


def _env() -> dict:
    env = dict(os.environ)
    env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", MANWIDTH="80")
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    return env


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_without_warnings(name):
    groff = _groff()
    result = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(PAGES[name])],
                            capture_output=True, text=True, env=_env(), timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"groff warns about man/{name}:\n{result.stderr}"


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_as_text(name):
    """The rendered page has its header and every section, and no roff left over."""
    groff = _groff()
    result = subprocess.run([groff, "-man", "-Tascii", "-ww", str(PAGES[name])],
                            capture_output=True, text=True, env=_env(), timeout=20)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    out = re.sub(r".\x08", "", result.stdout)  # overstrike bold and underline
    title, _, number = name.rpartition(".")
    assert out.lstrip().startswith(f"{title.upper()}({number})"), out[:200]
    for heading in sections(page(name)):
        assert f"\n{heading}\n" in out, f"section {heading!r} is not in the rendered page"
    leftovers = [line for line in out.splitlines() if re.match(r"\s*\.[A-Z]{1,2}\b", line) or "\\f" in line]
    assert not leftovers, f"roff source leaks into the rendered page: {leftovers[:5]}"


@pytest.mark.parametrize("name", PAGES)
def test_man_and_lexgrog_accept_the_page(name):
    """man-db's own view: man --warnings, and lexgrog for whatis/apropos (on a
    minimised image, where ``man`` is a stub, lexgrog alone)."""
    man = shutil.which("man")
    lexgrog = shutil.which("lexgrog")
    if man is not None:
        # Minimised images ship a stub "man" that only says how to unminimise.
        probe = subprocess.run([man, "--version"], capture_output=True, text=True, timeout=10)
        if probe.returncode != 0 or not probe.stdout.startswith("man "):
            man = None
    if man is None and lexgrog is None:
        skip_or_fail(MAN_DB_HINT)
    path = str(PAGES[name])
    if man is not None:
        result = subprocess.run([man, "--warnings", "-P", "cat", "-l", path],
                                capture_output=True, text=True, env=_env(), timeout=20)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", f"man --warnings complains about man/{name}:\n{result.stderr}"
    if lexgrog is not None:
        result = subprocess.run([lexgrog, path], capture_output=True, text=True, env=_env(), timeout=20)
        title = name.rpartition(".")[0]
        assert result.returncode == 0 and f"{title} - " in result.stdout, result.stdout + result.stderr
