"""Installing superd: the man pages ship with the package and `superd --man` finds them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from supervisor.cli import man
from supervisor.cli.superd import cli

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


def test_superd_man_without_man_prints_the_source(monkeypatch):
    monkeypatch.setattr(man.shutil, "which", lambda name: None)
    result = CliRunner().invoke(cli, ["--man", "superctl"])
    assert result.exit_code == 0
    assert result.output.startswith(".\\\"") and ".TH SUPERCTL 1" in result.output


def test_superd_man_unknown_page():
    result = CliRunner().invoke(cli, ["--man", "nope"])
    assert result.exit_code == 2
    assert "no man page 'nope'; the pages are: superd, superctl, superd.toml" in result.output
