"""env_file: the syntax of environment files, and what a missing one is."""

from __future__ import annotations

import pytest

from supervisor import config as cfg
from supervisor.config.envfile import EnvFileError, parse_env, read_env_files

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


def test_every_form():
    text = ("# comment\n\n  ; also a comment\nA=1\nexport B = two words  \nC='single \\n $X # kept'\n"
            'D="double \\"q\\" \\\\ \\$HOME \\n end" # comment\nE=unquoted # comment\nF=\nG=a=b\n'
            "export\tH=tab\n")
    assert parse_env(text) == [("A", "1"), ("B", "two words"), ("C", "single \\n $X # kept"),
                               ("D", 'double "q" \\ $HOME \n end'), ("E", "unquoted"), ("F", ""),
                               ("G", "a=b"), ("H", "tab")]


@pytest.mark.parametrize("text, message", [
    ("JUST A LINE\n", "line 1: expected NAME=VALUE"),
    ("A=1\n1BAD=2\n", "line 2: expected NAME=VALUE"),
    ("A='open\n", "line 1: the value has no closing '"),
    ('A="x" y\n', "line 1: unexpected 'y' after the closing quote"),
])
def test_bad_lines_say_where(text, message):
    with pytest.raises(EnvFileError, match=message):
        parse_env(text)


def test_later_files_win_and_optional_ones_may_be_missing(tmp_path):
    (tmp_path / "a").write_text("X=a\nY=a\n")
    (tmp_path / "b").write_text("Y=b\n")
    files = [(str(tmp_path / "a"), False), (str(tmp_path / "missing"), True), (str(tmp_path / "b"), False)]
    assert dict(read_env_files(files)) == {"X": "a", "Y": "b"}
    with pytest.raises(EnvFileError, match="missing: no such file"):
        read_env_files([(str(tmp_path / "missing"), False)])


def test_paths_are_relative_to_the_config_file_and_checked_at_load(tmp_path):
    (tmp_path / ".env").write_text("A=1\n")
    (tmp_path / "superd.toml").write_text(
        '[program.app]\ncommand = "x"\nenv_file = [".env", "-/nonexistent/opt.env"]\n')
    instance = cfg.load(str(tmp_path / "superd.toml"), {}).instances[0]
    assert instance.env_files == ((str(tmp_path / ".env"), False), ("/nonexistent/opt.env", True))
    (tmp_path / "superd.toml").write_text('[program.app]\ncommand = "x"\nenv_file = "bad.env"\n')
    (tmp_path / "bad.env").write_text("oops\n")
    with pytest.raises(cfg.ConfigError, match=r"program\.app\.env_file: env_file .*bad.env: line 1"):
        cfg.load(str(tmp_path / "superd.toml"), {})
