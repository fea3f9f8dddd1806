"""The pure parts of update, avail, clear and stdin: a reload's difference
by group (config.diff), which groups names mean, the ``stdin`` key, the
streams tail reads, avail's lines, and a stream forgetting its output."""

from __future__ import annotations

import textwrap

import pytest

from supervisor import config as cfg
from supervisor.config.diff import compare, group_changes, groups_named
from supervisor.core.errors import NoSuchName

pytestmark = pytest.mark.timeout(30)


def load_text(text: str) -> cfg.Config:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return cfg.parse(tomllib.loads(textwrap.dedent(text)), None, {})


OLD = """
[program.keep]
command = "sleep 1"
[program.pool]
command = "sleep 1"
numprocs = 3
[program.drop]
command = "sleep 1"
"""


def test_group_changes_name_each_group_once():
    old = load_text(OLD)
    new = load_text(OLD.replace("numprocs = 3", "numprocs = 2").replace('[program.drop]\ncommand = "sleep 1"\n', "")
                    + '[program.added]\ncommand = "sleep 1"\nnumprocs = 2\n')
    difference = compare(old, new)
    assert set(difference.removed) == {"pool_2", "drop"} and difference.added == ("added_0", "added_1")
    assert group_changes(old, new, difference) == {"added": ["added"], "changed": ["pool"], "removed": ["drop"]}
    assert group_changes(old, old, compare(old, old)) == {"added": [], "changed": [], "removed": []}


def test_groups_named_takes_groups_instances_and_group_star_from_either_config():
    old = load_text(OLD)
    new = load_text(OLD + '[program.fresh]\ncommand = "sleep 1"\n')
    assert groups_named(old, new, ["pool_1", "keep", "fresh", "drop:*"]) == {"pool", "keep", "fresh", "drop"}
    with pytest.raises(NoSuchName):
        groups_named(old, new, ["nope"])


GROUPED = """
[program.gunicorn]
command = "sleep 1"
[program.nginx]
command = "sleep 1"
[program.worker]
command = "sleep 1"
numprocs = 2
numprocs_start = 1
process_name = "worker-%(process_num)02d"
[program.pool]
command = "sleep 1"
numprocs = 3
[group.web]
programs = ["gunicorn", "nginx"]
"""


@pytest.mark.parametrize("name, groups", [
    ("web", {"web"}), ("web:*", {"web"}), ("web:", {"web"}), ("group:web", {"web"}),
    ("web:nginx", {"web"}), ("nginx", {"web"}),                      # a program of a [group.NAME]
    ("pool_1", {"pool"}), ("pool:pool_1", {"pool"}), ("pool:", {"pool"}), ("group:pool", {"pool"}),
    ("worker-02", {"worker"}), ("worker:worker-01", {"worker"}),     # process_name instances
    ("all", {"web", "worker", "pool"}),
])
def test_groups_named_reads_names_as_every_command_does(name, groups):
    config = load_text(GROUPED)
    assert groups_named(config, config, [name]) == groups


def test_groups_named_reads_each_name_in_both_configs():
    old = load_text(GROUPED)
    # api is new, with a program of its own; web loses nginx to it; pool is gone.
    new = load_text(GROUPED.replace('programs = ["gunicorn", "nginx"]', 'programs = ["gunicorn"]')
                    .replace('[program.pool]\ncommand = "sleep 1"\nnumprocs = 3\n', "")
                    + '[program.fresh]\ncommand = "sleep 1"\n[group.api]\nprograms = ["fresh", "nginx"]\n')
    assert groups_named(old, new, ["group:api"]) == {"api"}          # only in the new config
    assert groups_named(old, new, ["api:fresh"]) == {"api"}
    assert groups_named(old, new, ["pool:pool_2", "group:pool"]) == {"pool"}  # only in the old one
    assert groups_named(old, new, ["nginx"]) == {"web", "api"}       # moved: its group in each
    assert groups_named(old, new, ["web:nginx"]) == {"web"}
    assert groups_named(old, new, ["api:nginx"]) == {"api"}


@pytest.mark.parametrize("name", ["nope", "group:nope", "web:nope", "nope:*", "web:pool_1", "pool:nginx"])
def test_groups_named_refuses_a_name_neither_config_has(name):
    config = load_text(GROUPED)
    with pytest.raises(NoSuchName) as raised:
        groups_named(config, config, ["web", name])
    assert raised.value.args == (name,)  # what "no such process: NAME" shows


def test_stdin_key_is_a_boolean_and_not_for_event_listeners():
    assert load_text('[program.a]\ncommand = "cat"\nstdin = true\n').program("a").stdin is True
    assert load_text('[program.a]\ncommand = "cat"\n').program("a").stdin is False
    with pytest.raises(cfg.ConfigError, match="program.a.stdin"):
        load_text('[program.a]\ncommand = "cat"\nstdin = "yes"\n')
    with pytest.raises(cfg.ConfigError, match="stdin is its channel from superd"):
        load_text('[program.a]\ncommand = "cat"\nstdin = true\nevents = ["PROCESS_STATE"]\n')


def test_captured_lists_the_streams_tail_reads_a_merged_pair_once():
    from supervisor.output import captured

    def of(extra: str) -> tuple[str, ...]:
        return captured(load_text(f'[program.a]\ncommand = "cat"\n{extra}').instance("a"))

    assert of("") == ("stdout", "stderr")
    assert of('stderr = "stdout"\n') == ("stdout",)
    assert of('stdout = "/tmp/x.log"\nstderr = "/tmp/x.log"\n') == ("stdout",)
    assert of('stdout = "null"\nstderr = "console"\n') == ("stderr",)
    assert of('stdout = "inherit"\nstderr = "null"\n') == ()


def test_avail_lines_use_supervisorctl_columns():
    from supervisor.cli.render import avail_lines

    lines = avail_lines([{"name": "web", "in_use": True, "autostart": True, "priority": 10},
                         {"name": "batch", "in_use": False, "autostart": False, "priority": 999}])
    assert lines == ["web" + " " * 30 + "in use    auto      10:10",
                     "batch" + " " * 28 + "avail     manual    999:999"]
    long = avail_lines([{"name": "n" * 40, "in_use": True, "autostart": True, "priority": 1}])[0]
    assert long.startswith("n" * 40 + " in use")


def test_a_cleared_stream_forgets_its_ring_and_empties_its_file(tmp_path):
    from supervisor.output.logfile import LogFile
    from supervisor.output.sinks import NullSink
    from supervisor.output.streams import Stream

    ring = Stream("p", "stdout", NullSink(), ring=True)
    ring.emit([b"one\ntwo\n"])
    ring.clear()
    assert ring.last_lines(10) == []
    ring.emit([b"three\n"])
    assert ring.last_lines(10) == [b"three"]

    path = tmp_path / "p.log"
    sink = LogFile(str(path), maxbytes=1000, backups=1)
    logged = Stream("p", "stdout", sink, path=str(path))
    logged.emit([b"a" * 600 + b"\n"])
    logged.clear()
    assert path.read_bytes() == b"" and sink.size == 0
    logged.emit([b"b" * 600 + b"\n"])  # the size starts again from 0: no rotation
    assert path.read_bytes() == b"b" * 600 + b"\n" and not (tmp_path / "p.log.1").exists()
    sink.close()
