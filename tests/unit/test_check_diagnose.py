"""``superd --check``: every problem in one pass, hints, and what a run would fail on."""

from __future__ import annotations

import os

import pytest

from supervisor.cli.superd import main
from supervisor.config import ConfigError, load, parse
from supervisor.config.diagnose import diagnose
from supervisor.config.suggest import did_you_mean, supervisord_hint

pytestmark = pytest.mark.timeout(30)


def check(path, capsys):
    """``superd --check -c PATH``: its exit code and what it wrote (stdout, then stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(["--check", "-c", str(path)])
    out, err = capsys.readouterr()
    return exited.value.code, out + err


def write(tmp_path, text, name="superd.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def messages(found):
    return [f"{p.key}: {p.message}" for p in found]


def test_every_problem_in_one_pass(tmp_path):
    path = write(tmp_path, '[program.a]\ncommand = "true"\nstopwaitsecs = -1\nready = "tcp:abc"\n'
                           'depends_on = ["nosuch"]\nstopwaitsec = 3\n')
    with pytest.raises(ConfigError) as caught:
        load(str(path), {})
    keys = [p.key for p in caught.value.problems]
    assert keys == ["program.a.stopwaitsecs", "program.a.stopwaitsec", "program.a.depends_on[0]",
                    "program.a.ready"]
    assert 'unknown key (did you mean "stopwaitsecs"?)' in caught.value.problems[1].message


def test_a_broken_program_is_still_known_to_its_dependents():
    data = {"program": {"a": {"command": "x", "depends_on": ["b"]},
                        "b": {"command": "x", "startsecs": "soon"}}}
    with pytest.raises(ConfigError) as caught:
        parse(data, "/srv/superd.toml", {})
    assert [p.key for p in caught.value.problems] == ["program.b.startsecs"]


def test_did_you_mean():
    assert did_you_mean("stopwaitsec", ["stopsignal", "stopwaitsecs"]) == ' (did you mean "stopwaitsecs"?)'
    assert did_you_mean("Command", ["command"]) == ' (did you mean "command"?)'
    assert did_you_mean("zzz", ["command"]) == ""


def test_supervisord_headers_get_a_hint(tmp_path, capsys):
    path = write(tmp_path, "[program:api]\ncommand = /usr/bin/api\n")
    code, output = check(path, capsys)
    assert code == 2
    assert "[program:api] is supervisord's syntax: write [program.api]" in output
    assert "superd import-supervisord FILE" in output
    assert supervisord_hint("[program.api]\n") == ""
    assert "convert the file" in supervisord_hint("[supervisord]\nnodaemon=true\n[include]\n")


def test_empty_config_is_a_warning(tmp_path, capsys):
    code, output = check(write(tmp_path, "[superd]\n"), capsys)
    assert code == 0
    assert "warning:" in output and "no programs" in output


def test_missing_command_directory_and_unwritable_logs(tmp_path, capsys):
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = write(tmp_path, f"""
[superd]
logs_dir = "{blocker}/logs"
[program.missing]
command = "superd-test-no-such-command --flag"
[program.nodir]
command = "true"
directory = "{tmp_path}/nope"
[program.noexec]
command = "{script}"
[program.relative]
command = "./not-executable.sh"
directory = "{tmp_path}"
stdout = "{blocker}/out.log"
stderr = "null"
[program.fine]
command = "true"
stdout = "console"
stderr = "stdout"
""")
    cfg = load(str(path), os.environ)
    found, warned = diagnose(cfg)
    assert messages(found) == [
        'program.missing.command: command "superd-test-no-such-command" not found in PATH '
        f'({os.environ.get("PATH", os.defpath)})',
        f'program.nodir.directory: the folder "{tmp_path}/nope" does not exist',
        f'program.noexec.command: "{script}" is not executable by superd (user {_me()})',
        f'program.relative.command: "{tmp_path}/./not-executable.sh" is not executable by superd (user {_me()})',
        f'superd.logs_dir: cannot create "{blocker}/logs": "{blocker}" is not a folder',
        f'program.relative.stdout: cannot create "{blocker}/out.log": "{blocker}" is not a folder',
    ]
    assert warned == []
    code, output = check(path, capsys)
    assert code == 2
    assert "the config is valid, but a run would fail:" in output
    assert output.count(str(path)) == 6


def test_program_path_from_its_environment(tmp_path, capsys):
    tool = tmp_path / "bin" / "mytool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    path = write(tmp_path, f'[program.t]\ncommand = "mytool"\nenvironment = {{ PATH = "{tool.parent}" }}\n'
                           f'[superd]\nlogs_dir = "{tmp_path}/logs"\nrun_dir = "{tmp_path}/run"\n')
    assert diagnose(load(str(path), os.environ)) == ([], [])
    code, output = check(path, capsys)
    assert code == 0, output
    assert ": ok (1 program, 1 process)" in output


def test_lone_dollar_warning(tmp_path):
    path = write(tmp_path, """
[program.a]
command = ["sh", "-c", "echo $$ $$HOME $${X} ${HOME} $$$$"]
environment = { PRICE = "5$$" }
""")
    cfg = load(str(path), {"HOME": "/h", "PATH": os.defpath})
    _, warned = diagnose(cfg, {"PATH": os.defpath})
    assert [w.key for w in warned] == ["program.a.command[2]", "program.a.environment.PRICE"]
    assert 'write "$$$$"' in warned[0].message


def _me():
    import pwd
    return pwd.getpwuid(os.geteuid()).pw_name


