"""superd's command line (argparse): what it accepts, and a clear exit 2 for the rest.

Runs superd's ``main`` in this process up to the point where it would load a
config or start supervising (``_load`` and ``run`` are replaced here), so
nothing is spawned.
"""

from __future__ import annotations

import pytest

from supervisor.cli import superd

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def parsed(monkeypatch):
    """What the options parse to: {"command": [...], "options": Namespace}."""
    seen = {}

    def fake_load(options, command):
        seen.update(options=options, command=command)
        raise SystemExit(0)

    monkeypatch.setattr(superd, "_load", fake_load)
    return seen


def exits(capsys, *argv):
    with pytest.raises(SystemExit) as exited:
        superd.main(list(argv))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_everything_after_the_first_double_dash_is_the_command(parsed, capsys):
    assert exits(capsys, "--log-level", "info", "--", "sh", "-c", "echo -- -c x", "--", "-h")[0] == 0
    assert parsed["command"] == ["sh", "-c", "echo -- -c x", "--", "-h"]
    assert parsed["options"].log_level == "info" and parsed["options"].config_path is None


def test_a_command_without_double_dash(parsed, capsys):
    assert exits(capsys, "true")[0] == 0
    assert parsed["command"] == ["true"]


def test_options(parsed, capsys):
    assert exits(capsys, "-c", "x.toml", "--socket", "s.sock", "--check")[0] == 0
    options = parsed["options"]
    assert (options.config_path, options.socket_path, options.check, parsed["command"]) == ("x.toml", "s.sock",
                                                                                            True, [])
    assert exits(capsys, "--stopwaitsecs", "2.5", "--", "true")[0] == 0
    assert parsed["options"].stopwaitsecs == 2.5


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--conf", "x.toml"], "unrecognized arguments: --conf"),  # no abbreviations, as before
    (["--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
    (["--stopwaitsecs", "-1", "--", "true"], "argument --stopwaitsecs: -1 is not 0 or more"),
    (["--stopwaitsecs", "nan", "--", "true"], "argument --stopwaitsecs: nan is not 0 or more"),
    (["--stopwaitsecs", "soon", "--", "true"], "argument --stopwaitsecs: 'soon' is not a number of seconds"),
    (["--man"], "argument --man: expected one argument"),
    (["--"], "-- must be followed by the command to run"),
])
def test_bad_command_lines_exit_2_with_the_reason(parsed, capsys, argv, message):
    code, out, err = exits(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err
    assert "options" not in parsed  # nothing was loaded


def test_help_and_version(capsys):
    code, out, _ = exits(capsys, "-h")
    assert code == 0 and out.startswith("usage: superd [OPTIONS] [-- COMMAND ARG...]")
    for option in ("--config", "--check", "--log-level", "--stopwaitsecs", "--socket", "--man", "--version"):
        assert option in out
    code, out, _ = exits(capsys, "-V")
    assert code == 0 and out == f"superd, version {superd.__version__}\n"


@pytest.mark.parametrize("columns", [50, 100])
def test_help_fits_the_terminal_width(capsys, monkeypatch, columns):
    """The options' help wraps at $COLUMNS (superd measures the terminal itself,
    not with shutil); the description and epilog keep their own lines."""
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = exits(capsys, "--help")
    options = out[out.index("options:"):out.index(superd._EPILOG.strip().splitlines()[0])]
    lines = [line for line in options.splitlines() if line.startswith(" ")]
    assert code == 0 and max(len(line) for line in lines) <= columns - 2
    assert max(len(line) for line in lines) > columns - 20  # it uses the width it has


def test_single_program_mode_refuses_a_config_file_and_vice_versa(capsys):
    code, _, err = exits(capsys, "-c", "x.toml", "--", "true")
    assert code == 2 and "give either -c FILE or -- COMMAND, not both" in err
    code, _, err = exits(capsys, "-c", "/nonexistent/x.toml", "--stopwaitsecs", "1")
    assert code == 2 and "--stopwaitsecs is for single-program mode" in err
