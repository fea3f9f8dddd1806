"""The man pages never drift from the code.

The options of ``superd`` (``supervisor.cli.superd``) and of every ``superctl``
command (``supervisor.cli.superctl``) and the keys of ``config.DAEMON_KEYS`` /
``config.PROGRAM_KEYS`` are read from the code and looked for where they belong
in the pages: an option in its page's OPTIONS section (or its command's
subsection), a key in its table's SETTINGS section, with its documented default
equal to the code's. It works both ways: a new option or key without docs
fails, and so does documentation of something the code no longer has.

The pages are read with tests/manpages.py (see there for the conventions it
relies on); ``test_checks_catch_drift`` makes sure these checks do fail when a
page loses something. That the pages render without a warning (groff, man-db)
is checked in tests/system/test_man_render.py.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys

import click
import pytest

from supervisor import config
from supervisor.cli import superctl as ctl, superd as daemon
from supervisor.control import protocol
from supervisor.config.groups import GROUP_KEYS
from supervisor.config.http import HTTP_KEYS, HttpSettings
from supervisor.config.sockets import SOCKET_KEYS
from supervisor.daemon import spawn
from supervisor.core.states import DaemonState
from tests.manpages import PAGES, options_in, page, plain, section, sections, tagged_paragraphs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.timeout(30)


# --------------------------------------------------------------------------
# What the code has


def _option_groups(command: click.Command) -> list[tuple[str, ...]]:
    """The spellings of each option of ``command``: ``[("-c", "--config"), ...]``."""
    ctx = click.Context(command, info_name=command.name or "superd", **command.context_settings)
    return [tuple(o for o in (*param.opts, *param.secondary_opts) if o.startswith("-"))
            for param in command.get_params(ctx) if isinstance(param, click.Option)]


def _opts(command: click.Command) -> list[str]:
    return [o for group in _option_groups(command) for o in group]


def _daemon_option_groups() -> list[tuple[str, ...]]:
    """The same for superd, whose command line is argparse's."""
    return [tuple(action.option_strings) for action in daemon.parser()._actions if action.option_strings]


def _missing_from_synopsis(groups: list[tuple[str, ...]], synopsis: str, skip=frozenset()) -> list[str]:
    """Options none of whose spellings is in ``synopsis`` (one spelling is enough)."""
    written = options_in(synopsis)
    return [" / ".join(group) for group in groups if not set(group) & written and not set(group) & skip]


HELP = {"-h", "--help"}


def daemon_options() -> list[str]:
    return [o for group in _daemon_option_groups() for o in group]


def ctl_global_options() -> list[str]:
    return _opts(ctl.cli)


def ctl_commands() -> dict[str, click.Command]:
    return dict(ctl.cli.commands)


def ctl_command_options(command: click.Command) -> list[str]:
    return [o for o in _opts(command) if o not in HELP]


def _default(cls, key: str):
    for field in dataclasses.fields(cls):
        if field.name == key:
            if field.default is not dataclasses.MISSING:
                return field.default
            if field.default_factory is not dataclasses.MISSING:  # pragma: no cover
                return field.default_factory()
    return dataclasses.MISSING


#: Keys whose dataclass default is not what the user gets, so the page rightly
#: describes it in words ("the value of stopasgroup"), or whose default (no
#: steps, no command) cannot be written as a valid TOML value.
DEFAULT_IN_WORDS = {"killasgroup", "stop_sequence", "stop_command"}


# --------------------------------------------------------------------------
# The checks; each returns a list of problems (empty: fine)


def superd_page_problems(text: str) -> list[str]:
    problems = []
    options = section(text, "OPTIONS")
    tags = " ".join(tag for tag, _ in tagged_paragraphs(options))
    code = set(daemon_options())
    documented = options_in(tags)
    for opt in sorted(code - documented):
        problems.append(f"superd.8: option {opt} of superd is not an OPTIONS entry")
    for opt in sorted(documented - code):
        problems.append(f"superd.8: OPTIONS documents {opt}, which superd does not have")
    synopsis = plain("\n".join(plain(line) for line in section(text, "SYNOPSIS").splitlines()))
    for opt in _missing_from_synopsis(_daemon_option_groups(), synopsis):
        problems.append(f"superd.8: option {opt} is missing from the SYNOPSIS")

    # Subcommands that superd's main() dispatches before its option parser (import-supervisord).
    for word in re.findall(r'==\s*\["([a-z][a-z-]+)"\]', inspect.getsource(daemon.main)):
        if f"superd {word}" not in " ".join(synopsis.split()):
            problems.append(f"superd.8: 'superd {word}' is missing from the SYNOPSIS")

    # The exit codes superd's CLI uses, and superd's own states.
    exit_tags = {tag for tag, _ in tagged_paragraphs(section(text, "EXIT STATUS"))}
    for code_ in (daemon.EXIT_OK, daemon.EXIT_INTERNAL, daemon.EXIT_USAGE):
        if str(code_) not in exit_tags:
            problems.append(f"superd.8: exit status {code_} is not in EXIT STATUS")
    description = section(text, "DESCRIPTION")
    for state in DaemonState:
        if not re.search(rf"^\.BR? {re.escape(state.value)}\b", description, re.M):
            problems.append(f"superd.8: superd state {state.value} is not named in DESCRIPTION")

    # The environment superd gives its programs, and what it keeps from them.
    environment = plain(section(text, "ENVIRONMENT"))
    instance = config.single_program(["true"]).instances[0]
    given = spawn.build_environment(instance, {}, None, "/run/superd.sock")
    for name in sorted(set(given) | set(spawn.PRIVATE_VARIABLES)):
        if not re.search(rf"\b{name}\b", environment):
            problems.append(f"superd.8: environment variable {name} is not in ENVIRONMENT")
    return problems


def superctl_page_problems(text: str) -> list[str]:
    problems = []
    tags = " ".join(tag for tag, _ in tagged_paragraphs(section(text, "OPTIONS")))
    code = set(ctl_global_options())
    documented = options_in(tags)
    for opt in sorted(code - documented):
        problems.append(f"superctl.1: global option {opt} is not an OPTIONS entry")
    for opt in sorted(documented - code):
        problems.append(f"superctl.1: OPTIONS documents {opt}, which superctl does not have")

    commands = ctl_commands()
    documented_commands = sections(section(text, "COMMANDS"), "SS")
    for name in commands:
        if name not in documented_commands:
            problems.append(f"superctl.1: command {name!r} has no '.SS {name}' under COMMANDS")
    for name in documented_commands:
        if name not in commands:
            problems.append(f"superctl.1: COMMANDS documents {name!r}, which superctl does not have")

    for name, command in commands.items():
        body = documented_commands.get(name)
        if body is None:
            continue
        wanted = set(ctl_command_options(command))
        synopsis_lines = []
        for line in body.splitlines():
            if line.startswith((".PP", ".TP", ".RS", ".EX")):
                break
            synopsis_lines.append(plain(line))
        synopsis = " ".join(synopsis_lines)
        if f"superctl {name}" not in synopsis:
            problems.append(f"superctl.1: '.SS {name}' does not start with the synopsis 'superctl {name} ...'")
        for opt in _missing_from_synopsis(_option_groups(command), synopsis, skip=HELP):
            problems.append(f"superctl.1: option {opt} of '{name}' is missing from its synopsis")
        entries = " ".join(tag for tag, _ in tagged_paragraphs(body))
        documented_opts = options_in(entries)
        for opt in sorted(wanted - documented_opts):
            problems.append(f"superctl.1: option {opt} of '{name}' is not a .TP entry of '.SS {name}'")
        for opt in sorted(documented_opts - wanted):
            problems.append(f"superctl.1: '.SS {name}' documents {opt}, which '{name}' does not have")
        # Closed sets of values (wait --state, tail's stream) are listed in full.
        text_of_command = plain("\n".join(plain(line) for line in body.splitlines()))
        for param in command.params:
            if isinstance(param.type, click.Choice):
                for choice in param.type.choices:
                    if not re.search(rf"(?<![\w-]){re.escape(choice)}(?![\w-])", text_of_command):
                        problems.append(f"superctl.1: '{name}' accepts {choice!r} for {param.name}, "
                                        f"which '.SS {name}' does not mention")

    exit_tags = {tag for tag, _ in tagged_paragraphs(section(text, "EXIT STATUS"))}
    codes = {value for key, value in vars(protocol).items() if key.startswith("EXIT_") and isinstance(value, int)}
    for code_ in sorted(codes):
        if str(code_) not in exit_tags:
            problems.append(f"superctl.1: exit status {code_} is not in EXIT STATUS")
    for tag in sorted(exit_tags - {str(c) for c in codes}):
        problems.append(f"superctl.1: EXIT STATUS documents {tag!r}, which superctl does not use")
    state_body = plain(documented_commands.get("state", ""))
    for state in protocol.DAEMON_STATES:
        if state not in state_body:
            problems.append(f"superctl.1: 'state' does not list superd's state {state}")
    return problems


def _literal_default(entry: str) -> str | None:
    """The TOML literal after 'Default:' (``.B X`` / ``.BR X .``), or None."""
    match = re.search(r"Default:\s*\n\.BR? (\S+)", entry)
    return plain(match[1]) if match else None


def _table_problems(text: str, title: str, keys: dict, cls) -> list[str]:
    problems = []
    entries = {}
    for tag, body in tagged_paragraphs(section(text, title)):
        words = tag.split()
        entries[words[0] if words else tag] = body
    for key in keys:
        if key not in entries:
            problems.append(f"superd.toml.5: key {key!r} is not an entry of {title}")
    for key in entries:
        if key not in keys:
            problems.append(f"superd.toml.5: {title} documents {key!r}, which config.py does not accept")
    for key, body in entries.items():
        if key not in keys:
            continue
        if "Default" not in body and "Required" not in body:
            problems.append(f"superd.toml.5: {key!r} in {title} gives neither its default nor 'Required'")
            continue
        literal = _literal_default(body)
        expected = _default(cls, key)
        if literal is None:
            if expected not in (dataclasses.MISSING, None) and key not in DEFAULT_IN_WORDS:
                problems.append(f"superd.toml.5: {key!r} has the default {expected!r} in the code, "
                                "but the page gives none as a literal ('Default:' then '.BR value .')")
            continue
        try:
            value = keys[key](tomllib.loads(f"v = {literal}")["v"])
        except Exception as exc:
            problems.append(f"superd.toml.5: the documented default of {key!r}, {literal}, is not valid: {exc}")
            continue
        if value != expected:
            problems.append(f"superd.toml.5: {key!r} is documented with the default {literal}, "
                            f"but the code's default is {expected!r}")
    return problems


def superd_toml_page_problems(text: str) -> list[str]:
    problems = _table_problems(text, "[superd] SETTINGS", config.DAEMON_KEYS, config.DaemonSettings)
    problems += _table_problems(text, "[program.NAME] SETTINGS", config.PROGRAM_KEYS, config.ProgramConfig)
    problems += _table_problems(text, "[socket.NAME] SETTINGS", SOCKET_KEYS, config.SocketConfig)
    problems += _table_problems(text, "[http] SETTINGS", HTTP_KEYS, HttpSettings)
    problems += _table_problems(text, "[group.NAME] SETTINGS", GROUP_KEYS, config.GroupConfig)
    states = {tag for tag, _ in tagged_paragraphs(section(text, "PROCESS STATES"))}
    for state in protocol.PROCESS_STATES:
        if state not in states:
            problems.append(f"superd.toml.5: process state {state} is not an entry of PROCESS STATES")
    for state in sorted(states - set(protocol.PROCESS_STATES)):
        problems.append(f"superd.toml.5: PROCESS STATES documents {state!r}, which is not a state")
    for word in config.STREAM_WORDS["stderr"]:
        if f'"{word}"' not in plain(section(text, "OUTPUT")):
            problems.append(f'superd.toml.5: OUTPUT does not explain "{word}"')
    return problems


CHECKS = {"superd.8": superd_page_problems, "superctl.1": superctl_page_problems,
          "superd.toml.5": superd_toml_page_problems}


# --------------------------------------------------------------------------
# The pages match the code


@pytest.mark.parametrize("name", PAGES)
def test_page_has_header_and_name(name):
    text = page(name)
    title, _, number = name.rpartition(".")
    assert re.search(rf"^\.TH {re.escape(title.upper())} {number} ", text, re.M), "missing or wrong .TH line"
    assert re.search(rf"^{re.escape(title)} \\- \S", section(text, "NAME"), re.M), "NAME must read 'name \\- what'"


def test_superd_page_documents_every_option():
    assert superd_page_problems(page("superd.8")) == []


def test_superctl_page_documents_every_command_and_option():
    assert superctl_page_problems(page("superctl.1")) == []


def test_config_page_documents_every_key_with_its_default():
    assert superd_toml_page_problems(page("superd.toml.5")) == []


def test_config_page_example_is_a_valid_config(tmp_path):
    """The EXAMPLE of superd.toml.5 parses with superd's own reader (minus the
    users and groups, which this machine may not have)."""
    body = section(page("superd.toml.5"), "EXAMPLE")
    match = re.search(r"^\.EX\n(.*?)^\.EE", body, re.M | re.S)
    assert match, "no .EX/.EE block in EXAMPLE"
    text = "\n".join(plain(line) for line in match[1].splitlines())
    data = tomllib.loads(text)
    for key in ("socket_group", "allow_users", "allow_groups"):
        data.get("superd", {}).pop(key, None)
    for program in data.get("program", {}).values():
        program.pop("user", None)
    cfg = config.parse(data, str(tmp_path / "superd.toml"), environ={})
    assert cfg.programs, "the example defines no program"
    assert set(data["superd"]) | {k for p in data["program"].values() for k in p} <= \
        set(config.DAEMON_KEYS) | set(config.PROGRAM_KEYS)


def test_killmode_mapping_is_in_superd_page():
    """SPEC.md's systemd equivalence, as written there."""
    text = plain("\n".join(plain(line) for line in page("superd.8").splitlines()))
    text = re.sub(r"\s+", " ", text)
    for mode, stop, kill in (("process", "false", "false"), ("mixed", "false", "true"),
                             ("control-group", "true", "true")):
        assert re.search(rf"KillMode={mode} stopasgroup = {stop} and killasgroup = {kill}", text), mode


# --------------------------------------------------------------------------
# The checks above must be able to fail


def _drop_entry(text: str, tag_start: str) -> str:
    """``text`` without the ``.TP`` paragraph whose tag line starts with ``tag_start``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line == ".TP" and i + 1 < len(lines) and lines[i + 1].startswith(tag_start):
            j = i + 2
            while j < len(lines) and not lines[j].startswith((".TP", ".SS", ".SH")):
                j += 1
            return "\n".join(lines[:i] + lines[j:]) + "\n"
    raise AssertionError(f"no .TP entry starting with {tag_start!r}")


def test_checks_catch_drift():
    superd8, superctl1, toml5 = page("superd.8"), page("superctl.1"), page("superd.toml.5")

    # A key missing from a table, in either table.
    for key in ("shutdown_timeout", "stopwaitsecs"):
        problems = superd_toml_page_problems(_drop_entry(toml5, rf"\fB{key}\fR"))
        assert any(repr(key) in p for p in problems), problems
    # A key documented that the code does not have.
    bogus = toml5.replace(r"\fBexit_with\fR", r"\fBexit_widh\fR")
    assert any("'exit_widh'" in p for p in superd_toml_page_problems(bogus))
    # A wrong default.
    wrong = toml5.replace("Default:\n.BR 25 .", "Default:\n.BR 30 .")
    assert wrong != toml5
    assert any("'shutdown_timeout'" in p for p in superd_toml_page_problems(wrong))

    # An option of superd missing from OPTIONS.
    problems = superd_page_problems(_drop_entry(superd8, r"\fB\-\-stopwaitsecs\fR"))
    assert any("--stopwaitsecs" in p for p in problems), problems

    # A superctl command, or one of its options, missing.
    no_tail = re.sub(r"^\.SS tail$", ".SS tale", superctl1, flags=re.M)
    problems = superctl_page_problems(no_tail)
    assert any("'tail'" in p for p in problems) and any("'tale'" in p for p in problems), problems
    problems = superctl_page_problems(_drop_entry(superctl1, r"\fB\-f\fR, \fB\-\-follow\fR"))
    assert any("--follow" in p for p in problems), problems
    problems = superctl_page_problems(_drop_entry(superctl1, r"\fB\-s\fR, \fB\-\-socket\fR"))
    assert any("--socket" in p for p in problems), problems


def test_checks_follow_the_code(monkeypatch):
    """A new option or key in the code, without docs, is reported."""
    monkeypatch.setitem(config.DAEMON_KEYS, "brand_new_key", config.DAEMON_KEYS["log_level"])
    assert any("brand_new_key" in p for p in superd_toml_page_problems(page("superd.toml.5")))

    command = ctl.cli.commands["reload"]
    monkeypatch.setattr(command, "params", [*command.params, click.Option(["--dry-run"], is_flag=True)])
    assert any("--dry-run" in p for p in superctl_page_problems(page("superctl.1")))

    def with_pidfile(real=daemon.parser):
        parser = real()
        parser.add_argument("--pidfile")
        return parser

    monkeypatch.setattr(daemon, "parser", with_pidfile)
    assert any("--pidfile" in p for p in superd_page_problems(page("superd.8")))
