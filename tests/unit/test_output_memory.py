"""What superd keeps per program: nothing for output it does not capture, one
copy of what programs repeat, and not the parsed TOML the config came from."""

from __future__ import annotations

import subprocess

import pytest

from supervisor.config import load, parse
from supervisor.output import Outputs
from supervisor.output.sinks import Sink
from supervisor.output.streams import NO_FOLLOWERS, Stream

pytestmark = pytest.mark.timeout(30)

LOGS = "/var/log/superd-test"


def instances(**programs: dict) -> dict:
    cfg = parse({"program": {name: {"command": ["sleep", "1"], **keys} for name, keys in programs.items()}},
                None, {})
    return {i.name: i for i in cfg.instances}


class Listener:
    def end(self, farewell=None) -> None:
        pass

    def move_to(self, stream) -> None:
        pass


class Follower(Listener):
    """Follows as output.follow.Follower does: moves with its stream, and hears why it ends."""

    stream = None
    ended = None

    def move_to(self, stream) -> None:
        self.stream.unfollow(self)
        self.stream = stream
        stream.follow(self)

    def end(self, farewell=None) -> None:
        self.ended = farewell


def test_an_uncaptured_stream_holds_no_stream_until_asked():
    procs = instances(a={"stdout": "null", "stderr": "null"}, b={"stdout": "null", "stderr": "null"},
                      c={"stdout": "inherit", "stderr": "stdout"})
    outputs = Outputs()
    outputs.configure(procs, None)
    first, second = (outputs.capture(procs[n], LOGS) for n in "ab")
    # No pipe, nothing to read: one capture for every such spawn.
    assert first is second
    assert (first.stdout, first.stderr, first.readers, first.done) == (subprocess.DEVNULL, subprocess.DEVNULL, [], True)
    merged = outputs.capture(procs["c"], LOGS)
    assert (merged.stdout, merged.stderr) == (None, subprocess.STDOUT)
    a = outputs.output_of(procs["a"], LOGS)
    assert a is outputs.output_of(procs["b"], LOGS)  # nothing captured: one output for both
    assert (a.stdout, a.stderr) == (None, None)
    # What status and stats show is as if the streams were there.
    assert outputs.dropped("a") == {"stdout": {"bytes": 0, "lines": 0}, "stderr": {"bytes": 0, "lines": 0}}
    assert outputs.dropped("c") == {"stdout": {"bytes": 0, "lines": 0}}
    assert outputs.stats()["c"] == {"stdout": {"dropped_bytes": 0, "dropped_lines": 0}}

    # Asked for (XML-RPC's logfile names): a stream with no path, not kept.
    stream = outputs.stream(procs["a"], "stderr", LOGS)
    assert isinstance(stream, Stream) and (stream.process, stream.which, stream.path) == ("a", "stderr", None)
    assert outputs.output_of(procs["a"], LOGS) is a and (a.stdout, a.stderr) == (None, None)
    both = outputs.stream(procs["c"], "stderr", LOGS)
    assert (both.process, both.which, both.path) == ("c", "stdout", None)
    outputs.clear(procs["a"], LOGS)  # nothing to clear, no error
    outputs.configure({}, None)
    assert outputs.stats() == {}


def test_a_follower_moved_to_an_uncaptured_stream_by_a_reload_is_kept_and_told_when_the_process_goes():
    before = instances(app={"stdout": "console", "stderr": "null"})
    after = instances(app={"stdout": "null", "stderr": "null"}, other={"stdout": "null", "stderr": "null"})
    outputs = Outputs()
    outputs.configure(before, None)
    console = outputs.stream(before["app"], "stdout", LOGS)
    follower = Follower()
    follower.stream = console
    console.follow(follower)
    outputs.configure(after, None)
    outputs.output_of(after["other"], LOGS)  # shares the output of nothing captured
    moved = outputs.stream(after["app"], "stdout", LOGS)  # the reload's new settings apply
    assert follower.stream is moved and moved.followers == {follower} and moved.path is None
    assert outputs.stream(after["app"], "stdout", LOGS) is moved  # kept: it has a reader
    assert outputs.output_of(after["other"], LOGS).stdout is None  # the other one's untouched
    outputs.configure({"other": after["other"]}, None)
    assert follower.ended == "[superd: app is gone]"
    outputs.close()


def test_a_captured_stream_is_made_with_its_output():
    procs = instances(app={"stdout": "console", "stderr": "null"})
    outputs = Outputs()
    outputs.configure(procs, None)
    output = outputs.output_of(procs["app"], LOGS)
    assert output.stdout is not None and output.stdout.console and output.stderr is None
    assert outputs.dropped("app") == {"stdout": {"bytes": 0, "lines": 0}, "stderr": {"bytes": 0, "lines": 0}}
    outputs.close()


def test_streams_and_sinks_allocate_for_followers_and_backlogs_only_when_used():
    stream = Stream("p", "stdout", Sink())
    assert stream.followers is NO_FOLLOWERS and stream.backlog is None
    one, two = Listener(), Listener()
    backlog = stream.follow(one)
    assert stream.follow(two) is backlog and stream.followers == {one, two}
    assert NO_FOLLOWERS == frozenset()
    stream.unfollow(one)
    stream.unfollow(one)  # twice: no error
    assert stream.followers == {two} and stream.backlog is backlog
    stream.unfollow(two)
    assert stream.followers is NO_FOLLOWERS and stream.backlog is None

    sink = Sink()
    assert not sink.full
    called = []
    sink.when_drained(lambda: called.append(1))  # nothing kept: at once
    assert called == [1]


def test_programs_share_what_they_repeat_and_keep_types_apart(tmp_path):
    procs = instances(a={"stdout": "null", "startsecs": 0, "exitcodes": [0, 2], "environment": {"K": "v"}},
                      b={"stdout": "null", "startsecs": 0.0, "exitcodes": [0, 2], "environment": {"K": "v"}},
                      c={"stdout": "null", "startsecs": -0.0, "stopwaitsecs": 1, "startretries": 1})
    a, b, c = procs["a"], procs["b"], procs["c"]
    assert a.command is b.command is a.program.command is c.command
    assert a.stdout is b.stdout is a.program.stdout
    assert a.environment is b.environment and a.program.exitcodes is b.program.exitcodes
    assert a.program.startsecs is b.program.startsecs
    assert str(c.program.startsecs) == "-0.0"  # not made 0.0 by the sharing
    assert type(c.program.stopwaitsecs) is float and type(c.program.startretries) is int


def test_load_lets_go_of_the_parsed_toml_and_parse_leaves_its_data_alone(tmp_path):
    data = {"program": {"web": {"command": ["sleep", "1"], "priority": 3}, "db": {"command": ["sleep", "1"]}},
            "group": {"g": {"programs": ["web", "db"], "priority": 7}}}
    cfg = parse(data, None, {})
    assert set(data["program"]) == {"web", "db"}  # the caller's, untouched
    assert {p.name: p.priority for p in cfg.programs} == {"web": 3, "db": 7}
    path = tmp_path / "superd.toml"
    path.write_text('[program.web]\ncommand = ["sleep", "1"]\npriority = 3\n'
                    '[program.db]\ncommand = ["sleep", "1"]\n'
                    '[group.g]\nprograms = ["web", "db"]\npriority = 7\n')
    loaded = load(str(path), {})
    assert {p.name: p.priority for p in loaded.programs} == {"web": 3, "db": 7}
    assert loaded.programs == parse(
        {"program": {"web": {"command": ["sleep", "1"], "priority": 3}, "db": {"command": ["sleep", "1"]}},
         "group": {"g": {"programs": ["web", "db"], "priority": 7}}}, str(path), {}).programs
