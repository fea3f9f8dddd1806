"""Installing superd: the man pages ship with the package and `superd --man` finds them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from supervisor.cli import man
from supervisor.cli.superd import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.timeout(30)
REPO = Path(__file__).resolve().parents[2]


def test_every_man_page_is_installed_with_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = project["tool"]["setuptools"]["data-files"]
    shipped = {Path(f).name: folder for folder, files in data.items() for f in files}
    assert shipped == {page.name: f"share/man/man{page.suffix[1:]}" for page in (REPO / "man").iterdir()}
    scripts = project["project"]["scripts"]
    assert scripts == {"superd": "superd_entry:superd", "superctl": "superd_entry:superctl"}


@pytest.mark.parametrize("asked, file", [("superd", "superd.8"), ("superd.8", "superd.8"), ("superd(8)", "superd.8"),
                                         ("superctl", "superctl.1"), ("1", "superctl.1"),
                                         ("superd.toml", "superd.toml.5"), ("5", "superd.toml.5"),
                                         ("supervisord", None)])
def test_page_names(asked, file):
    assert man.page_name(asked) == file


def test_pages_are_found_from_a_source_tree():
    assert man.find_page("superd.toml.5") is not None
    assert man.find_page("superd.toml.5").read_text() == (REPO / "man" / "superd.toml.5").read_text()


def superd(capsys, *argv):
    """Run superd's command line in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_superd_man_without_man_prints_the_source(monkeypatch, capsys):
    monkeypatch.setattr(man.shutil, "which", lambda name: None)
    code, out, _ = superd(capsys, "--man", "superctl")
    assert code == 0
    assert out.startswith(".\\\"") and ".TH SUPERCTL 1" in out


def test_superd_man_unknown_page(capsys):
    code, _, err = superd(capsys, "--man", "nope")
    assert code == 2
    assert "no man page 'nope'; the pages are: superd, superctl, superd.toml" in err
