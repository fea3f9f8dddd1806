"""Groups and supervisord's naming, without a process: ``[group.NAME]``,
``process_name`` templates, ``numprocs_start``, their checks, the names
superctl accepts (core.names) and what a reload that regroups changes."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from typing import Any

import pytest

from supervisor.config import ConfigError, parse, tomllib
from supervisor.config.diff import compare
from supervisor.core.errors import NoSuchName
from supervisor.core.names import grouped, matches, select

pytestmark = pytest.mark.timeout(30)

MAIN = "/srv/app/superd.toml"
ENV = {"HOME": "/home/u", "REGION": "eu", "DOLLAR": "a$b"}

WEB = """
[group.web]
programs = ["gunicorn", "nginx"]

[program.gunicorn]
command = "gunicorn app:app"

[program.nginx]
command = "nginx"

[program.worker]
command = "work"
numprocs = 2
"""


def load(text: str, environ: dict[str, str] | None = None):
    return parse(tomllib.loads(textwrap.dedent(text)), MAIN, ENV if environ is None else environ)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


def names(config) -> dict[str, str]:
    """Instance -> its group."""
    return {i.name: i.group for i in config.instances}


# --------------------------------------------------------------------------
# [group.NAME]

def test_a_group_holds_its_programs_processes():
    config = load(WEB)
    assert names(config) == {"gunicorn": "web", "nginx": "web", "worker_0": "worker", "worker_1": "worker"}
    [group] = config.groups
    assert (group.name, group.programs, group.priority, group.source) == ("web", ("gunicorn", "nginx"), None, MAIN)
    # ${SUPERD_GROUP} is the group's name
    config = load(WEB.replace('command = "nginx"', 'command = "nginx -g ${SUPERD_GROUP}"'))
    assert config.instance("nginx").command == ("nginx", "-g", "web")


def test_without_groups_names_and_groups_are_todays():
    config = load('[program.web]\ncommand = "x"\n[program.pool]\ncommand = "x"\nnumprocs = 3\n')
    assert names(config) == {"pool_0": "pool", "pool_1": "pool", "pool_2": "pool", "web": "web"}
    assert [i.num for i in config.instances] == [0, 1, 2, 0]
    assert config.groups == ()


def test_a_groups_priority_is_its_programs_default():
    config = load(WEB.replace('programs = ["gunicorn", "nginx"]', 'programs = ["gunicorn", "nginx"]\npriority = 5')
                  .replace('command = "nginx"', 'command = "nginx"\npriority = 7'))
    assert {i.name: i.program.priority for i in config.instances} == {
        "gunicorn": 5, "nginx": 7, "worker_0": 999, "worker_1": 999}
    # instances are ordered by priority (gunicorn first now)
    assert [i.name for i in config.instances] == ["gunicorn", "nginx", "worker_0", "worker_1"]


def test_a_group_may_share_its_name_with_a_program_it_holds():
    config = load('[group.web]\nprograms = ["web", "nginx"]\n[program.web]\ncommand = "x"\n'
                  '[program.nginx]\ncommand = "x"\n')
    assert names(config) == {"nginx": "web", "web": "web"}


def test_groups_in_included_files(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "web.toml").write_text('[group.web]\nprograms = ["a"]\n[program.a]\ncommand = "x"\n')
    (tmp_path / "conf.d" / "again.toml").write_text('[group.web]\nprograms = ["b"]\n[program.b]\ncommand = "x"\n')
    main = tmp_path / "superd.toml"
    main.write_text('[superd]\ninclude = ["conf.d/web.toml"]\n')
    from supervisor.config import load as load_file

    assert names(load_file(str(main), {})) == {"a": "web"}
    main.write_text('[superd]\ninclude = ["conf.d/*.toml"]\n')
    with pytest.raises(ConfigError) as info:
        load_file(str(main), {})
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path}/conf.d/web.toml: group.web: defined twice: in {tmp_path}/conf.d/again.toml and in "
        f"{tmp_path}/conf.d/web.toml"]


@pytest.mark.parametrize("text, message", [
    ('[group.web]\nprograms = ["a"]\n[group.api]\nprograms = ["a"]\n[program.a]\ncommand = "x"\n',
     'group.api.programs[0]: "a" is in group "web" already: a program belongs to one group'),
    ('[group.web]\nprograms = ["gunicron"]\n[program.gunicorn]\ncommand = "x"\n',
     'group.web.programs[0]: no program named "gunicron" (did you mean "gunicorn"?) (programs: gunicorn)'),
    ('[group.web]\nprograms = ["a"]\n[program.a]\ncommand = "x"\n[program.web]\ncommand = "x"\n',
     'group.web: the name "web" is a program\'s, and this group does not list it: name the group '
     "otherwise, or list the program in it"),
    ('[group.web]\nprograms = []\n[program.a]\ncommand = "x"\n',
     'group.web.programs: an empty group: list at least one program, like programs = ["gunicorn"]'),
    ('[group.web]\npriority = 1\n[program.a]\ncommand = "x"\n',
     'group.web.programs: missing; expected an array of program names, like ["gunicorn", "nginx"]'),
    ('[group.web]\nprograms = "a"\n[program.a]\ncommand = "x"\n',
     'group.web.programs: expected an array of program names, like ["gunicorn", "nginx"], got "a" (string)'),
    ('[group.web]\nprograms = ["a", "a"]\n[program.a]\ncommand = "x"\n',
     'group.web.programs[1]: "a" is listed twice'),
    ('[group.web]\nprograms = ["a"]\nprogram = ["a"]\n[program.a]\ncommand = "x"\n',
     'group.web.program: unknown key (did you mean "programs"?); expected one of programs, priority'),
    ('[group.web]\nprograms = ["a"]\npriority = "1"\n[program.a]\ncommand = "x"\n',
     'group.web.priority: expected an integer, got "1" (string)'),
    ('[group.all]\nprograms = ["a"]\n[program.a]\ncommand = "x"\n',
     'group.all: "all" is reserved (it means every program)'),
    ('[group."a:b"]\nprograms = ["a"]\n[program.a]\ncommand = "x"\n',
     'group."a:b": invalid group name: expected at most 200 letters, digits, "_", "." or "-", starting with '
     "a letter or digit"),
    ("[group]\nweb = 1\n", "group.web: expected a table, got 1 (integer)"),
    ('[group.web]\nprograms = ["crash"]\n[program.crash]\ncommand = "x"\nevents = ["PROCESS_STATE_FATAL"]\n',
     'group.web.programs[0]: "crash" is an event listener (it has events): a group holds programs only, '
     "as supervisord's does"),
    ('[group.pool_1]\nprograms = ["a"]\n[program.a]\ncommand = "x"\n[program.pool]\ncommand = "x"\nnumprocs = 2\n',
     'group.pool_1: the name "pool_1" is used twice: by this group and by instance pool_1 of program "pool", '
     "which is not in it"),
])
def test_bad_groups_are_config_errors(text, message):
    assert problems(text) == [f"{MAIN}: {message}"]


def test_a_group_naming_a_program_with_problems_says_only_the_programs_problem():
    assert problems('[group.web]\nprograms = ["a"]\n[program.a]\ncommand = "x"\nnumprocs = 0\n') == [
        f"{MAIN}: program.a.numprocs: expected an integer from 1 to 10000, got 0 (integer)"]


# --------------------------------------------------------------------------
# process_name and numprocs_start

def test_process_name_is_supervisords_template():
    config = load("""
        [program.worker]
        command = "work --id ${SUPERD_PROCESS_NAME} --num ${SUPERD_PROCESS_NUM}"
        numprocs = 3
        numprocs_start = 1
        process_name = "worker-%(process_num)02d"
        """)
    assert [(i.name, i.num, i.group) for i in config.instances] == [
        ("worker-01", 1, "worker"), ("worker-02", 2, "worker"), ("worker-03", 3, "worker")]
    assert config.instance("worker-02").command == ("work", "--id", "worker-02", "--num", "2")


def test_numprocs_start_numbers_superds_own_names():
    config = load('[program.w]\ncommand = "x"\nnumprocs = 2\nnumprocs_start = 5\n')
    assert [(i.name, i.num) for i in config.instances] == [("w_5", 5), ("w_6", 6)]
    config = load('[program.w]\ncommand = "x ${SUPERD_PROCESS_NUM}"\nnumprocs_start = 5\n')
    assert [(i.name, i.num, i.command) for i in config.instances] == [("w", 5, ("x", "5"))]


def test_every_field_of_the_template():
    config = load("""
        [group.site]
        programs = ["app"]

        [program.app]
        command = "x"
        numprocs = 2
        environment = { SHARD = "s${SUPERD_PROCESS_NUM}", LITERAL = "$$x" }
        process_name = "%(group_name)s.%(program_name)s.%(process_num)d-of-%(numprocs)d.%(ENV_SHARD)s.%(ENV_REGION)s"
        """)
    assert list(names(config)) == ["site.app.0-of-2.s0.eu", "site.app.1-of-2.s1.eu"]
    host = os.uname().nodename
    config = load('[program.app]\ncommand = "x"\nprocess_name = "on-%(host_node_name)s"\n')
    assert list(names(config)) == [f"on-{host}"]
    # also ${} as the rest of the config, and %% for a literal "%" (which no name may hold)
    config = load('[program.app]\ncommand = "x"\nnumprocs = 2\nprocess_name = "${REGION}-w${SUPERD_PROCESS_NUM}"\n')
    assert list(names(config)) == ["eu-w0", "eu-w1"]


@pytest.mark.parametrize("template, message", [
    ("worker", '"worker" does not vary by process number, so every one of the numprocs instances would have '
               "the same name: put %(process_num)d (or ${SUPERD_PROCESS_NUM}) in it"),
    ("w-%(program_name)s", '"w-%(program_name)s" does not vary by process number, so every one of the numprocs '
                           "instances would have the same name: put %(process_num)d (or ${SUPERD_PROCESS_NUM}) "
                           "in it"),
    ("w-%(process_numb)d", 'unknown field %(process_numb) in "w-%(process_numb)d": expected %(process_num), '
                           "%(numprocs), %(program_name), %(group_name), %(host_node_name), %(here) or "
                           "%(ENV_NAME)"),
    ("w-%(process_num)d%", 'a lone "%" in "w-%(process_num)d%": write "%%" for a literal "%", or %(field)s '
                           "for a field"),
    ("w-%(program_name)d-%(process_num)d", 'cannot format "w-%(program_name)d-%(process_num)d": %d format: '
     "a real number is required, not str (process_num and numprocs are numbers, the other fields strings)"),
    ("w-%(process_num)", 'cannot format "w-%(process_num)": incomplete format (process_num and numprocs are '
                         "numbers, the other fields strings)"),
    ("w-%(ENV_NOPE)s-%(process_num)d", '%(ENV_NOPE) names no variable: "NOPE" is neither in the program\'s '
                                       "environment nor in superd's"),
    ("${SUPERD_PROCESS_NAME}-%(process_num)d",
     "${SUPERD_PROCESS_NAME} is the name process_name gives: it cannot be part of it"),
    ("w-${NOPE}-%(process_num)d", "undefined variable ${NOPE} (set it in superd's environment, or give a "
                                  "default: ${NOPE:-value})"),
    ("w %(process_num)d", '"w %(process_num)d" names process 0 "w 0": a process name takes at most 240 letters, '
                          'digits, "_", "." or "-", starting with a letter or digit'),
    ("w-%(ENV_DOLLAR)s-%(process_num)d", '"w-%(ENV_DOLLAR)s-%(process_num)d" names process 0 "w-a$b-0": a '
     'process name takes at most 240 letters, digits, "_", "." or "-", starting with a letter or digit'),
])
def test_bad_process_names_are_config_errors(template, message):
    found = problems(f'[program.app]\ncommand = "x"\nnumprocs = 2\nprocess_name = {tomllib_string(template)}\n')
    assert found[0] == f"{MAIN}: program.app.process_name: {message}"


def tomllib_string(text: str) -> str:
    return "'" + text + "'"


@pytest.mark.parametrize("text, message", [
    ('[program.a]\ncommand = "x"\nprocess_name = "b"\n[program.b]\ncommand = "x"\n',
     'program.b: the name "b" is used twice: by instance b of program "a" and by program "b"'),
    ('[program.a]\ncommand = "x"\nprocess_name = "w"\n[program.b]\ncommand = "x"\nprocess_name = "w"\n',
     'program.b: the name "w" is used twice: by instance w of program "a" and by instance w of program "b"'),
    ('[program.a]\ncommand = "x"\nnumprocs = 2\nprocess_name = "w%(process_num).0s"\n',
     'program.a: the name "w" is used twice: by instance w of program "a" and by instance w of program "a"'),
])
def test_process_names_clash(text, message):
    assert problems(text) == [f"{MAIN}: {message}"]


# --------------------------------------------------------------------------
# Which processes a name means

@dataclass(eq=False)
class Proc:
    name: str
    group: str
    program: str


def index(*procs: Proc) -> tuple[dict[str, Any], dict[str, list[Any]], dict[str, list[Any]]]:
    return ({p.name: p for p in procs}, grouped(procs, lambda p: p.group), grouped(procs, lambda p: p.program))


GUNICORN, NGINX = Proc("gunicorn", "web", "gunicorn"), Proc("nginx", "web", "nginx")
W1, W2 = Proc("worker-01", "batch", "worker"), Proc("worker-02", "batch", "worker")
CRON = Proc("cron", "cron", "cron")


@pytest.mark.parametrize("name, expected", [
    ("all", [GUNICORN, NGINX, W1, W2, CRON]),
    ("web:*", [GUNICORN, NGINX]),
    ("web:", [GUNICORN, NGINX]),          # supervisorctl's form
    ("web", [GUNICORN, NGINX]),
    ("group:web", [GUNICORN, NGINX]),     # the SPEC's form
    ("web:gunicorn", [GUNICORN]),         # supervisord's namespec
    ("batch:worker-02", [W2]),
    ("batch:worker", [W1, W2]),           # a program of the group
    ("worker", [W1, W2]),                 # a program, by its name
    ("worker-01", [W1]),
    ("nginx", [NGINX]),
    ("cron:cron", [CRON]),
    ("cron", [CRON]),
])
def test_names_mean(name, expected):
    assert matches(*index(GUNICORN, NGINX, W1, W2, CRON), name) == expected


@pytest.mark.parametrize("name", ["nope", "web:nope", "web:worker-01", "batch:gunicorn", "nope:*", "nope:",
                                  "group:nope", "all:*", ":", ":*", "worker-0"])
def test_unknown_names(name):
    with pytest.raises(NoSuchName):
        select(*index(GUNICORN, NGINX, W1, W2, CRON), [name])


def test_a_group_named_group_keeps_its_processes():
    inside = Proc("web", "group", "web")
    other = Proc("api", "web", "api")
    assert matches(*index(inside, other), "group:web") == [inside]
    assert matches(*index(inside, other), "group:api") == []
    assert matches(*index(other), "group:web") == [other]


def test_select_keeps_order_and_lists_each_once():
    assert select(*index(GUNICORN, NGINX, W1, W2, CRON), ["web:nginx", "web:*", "worker", "all"]) == [
        NGINX, GUNICORN, W1, W2, CRON]


# --------------------------------------------------------------------------
# A reload that moves programs between groups

def test_moving_a_program_between_groups_restarts_nothing():
    old = load(WEB)
    new = load(WEB.replace('programs = ["gunicorn", "nginx"]', 'programs = ["gunicorn"]'))
    difference = compare(old, new)
    assert (difference.added, difference.removed, difference.changed) == ((), (), ())
    assert difference.regrouped == ("nginx",)
    assert not difference.empty
    assert difference.as_dict() == {"added": [], "removed": [], "changed": [], "regrouped": ["nginx"]}
    assert compare(old, old).as_dict() == {"added": [], "removed": [], "changed": []}


def test_a_new_group_of_numbered_instances_and_a_changed_program():
    old = load(WEB)
    new = load(WEB.replace('command = "nginx"', 'command = "nginx -q"') + '[group.batch]\nprograms = ["worker"]\n')
    difference = compare(old, new)
    assert difference.changed == ("nginx",)
    assert difference.regrouped == ("worker_0", "worker_1")


def test_what_the_group_changes_in_a_process_restarts_it():
    # the command names its group: the process must start again to see the new one
    text = WEB.replace('command = "gunicorn app:app"', 'command = "gunicorn --name ${SUPERD_GROUP}"')
    difference = compare(load(text), load(text.replace('programs = ["gunicorn", "nginx"]', 'programs = ["nginx"]')))
    assert (difference.changed, difference.regrouped) == (("gunicorn",), ())
    # a process_name with the group in it: another name, another process
    text = WEB.replace('command = "nginx"', 'command = "nginx"\nprocess_name = "%(group_name)s-nginx"')
    difference = compare(load(text), load(text.replace('programs = ["gunicorn", "nginx"]', 'programs = ["gunicorn"]')))
    assert (difference.added, difference.removed, difference.regrouped) == (("nginx-nginx",), ("web-nginx",), ())


# --------------------------------------------------------------------------
# How superctl shows them, which events a name follows

def test_status_shows_supervisords_name_in_a_declared_group():
    from supervisor.cli.render import shown_name, status_lines

    assert shown_name({"name": "gunicorn", "group": "web", "program": "gunicorn"}) == "web:gunicorn"
    assert shown_name({"name": "worker_1", "group": "worker", "program": "worker"}) == "worker_1"
    assert shown_name({"name": "web", "group": "web", "program": "web"}) == "web"
    assert shown_name({"name": "web", "group": "web"}) == "web"   # an older superd: no "program"
    lines = status_lines([{"name": "gunicorn", "group": "web", "program": "gunicorn", "state": "running",
                           "description": "pid 1"},
                          {"name": "cron", "group": "cron", "program": "cron", "state": "stopped",
                           "description": "stopped"}])
    assert lines == ["web:gunicorn   RUNNING    pid 1", "cron           STOPPED    stopped"]


@pytest.mark.parametrize("name", ["web:*", "web:", "group:web"])
def test_events_of_a_group(name):
    from supervisor.daemon.events import matcher

    match = matcher([name])
    assert match({"name": "gunicorn", "group": "web"})
    assert not match({"name": "worker_0", "group": "worker"})
