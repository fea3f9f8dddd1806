"""superd's own log beyond stderr (daemon.mainlog): the lines kept for
``maintail``, ``[superd] log_file`` with its rotation, reopening and reload,
its config keys and ``--check``; and health and readiness as events."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from types import SimpleNamespace

import pytest

from supervisor.cli.eventview import line as event_line
from supervisor.config import ConfigError, parse
from supervisor.config.diagnose import diagnose
from supervisor.config.diff import daemon_changes
from supervisor.daemon import ownlog
from supervisor.daemon.events import Events
from supervisor.daemon.mainlog import MainLog
from supervisor.output.follow import Follower

log = logging.getLogger("superd")


def settings(tmp_path, **daemon):
    table = {"socket": str(tmp_path / "s.sock"), "run_dir": str(tmp_path / "run")} | daemon
    return parse({"superd": table}, str(tmp_path / "superd.toml")).daemon


@pytest.fixture
def mainlog(tmp_path):
    """A MainLog attached to superd's logger (at debug), detached afterwards."""
    level = log.level
    log.setLevel(logging.DEBUG)
    made: list[MainLog] = []

    def make(**daemon) -> MainLog:
        handler = MainLog()
        handler.attach(settings(tmp_path, **daemon))
        made.append(handler)
        return handler

    yield make
    for handler in made:
        handler.close()
    log.setLevel(level)


def test_without_a_file_the_last_lines_are_kept_in_memory(mainlog):
    main = mainlog()
    for i in range(30):
        log.info("line %d", i)
    lines = [line.decode() for line in main.last_lines(3)]
    assert [line.split(maxsplit=2)[2] for line in lines] == ["line 27", "line 28", "line 29"]
    assert lines[0].split()[1] == "INFO"  # the format of stderr
    assert main.last_lines(0) == []


def test_the_file_gets_every_line_and_rotates_with_backups(mainlog, tmp_path):
    main = mainlog(log_file="superd.log", log_file_maxbytes=300, log_file_backups=2)
    path = tmp_path / "superd.log"  # relative to the config file's folder
    assert main.file is not None and main.file.path == str(path)
    for i in range(40):
        log.info("line %02d %s", i, "x" * 20)
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("superd.log"))
    assert names == ["superd.log", "superd.log.1", "superd.log.2"]
    assert all(p.stat().st_size <= 300 for p in tmp_path.glob("superd.log*"))
    assert path.read_text().splitlines()[-1].endswith("line 39 " + "x" * 20)
    assert main.last_lines(1)[0].decode() == path.read_text().splitlines()[-1]  # read from the file


def test_reopen_after_a_rename_and_a_reload_that_moves_or_resizes_it(mainlog, tmp_path):
    main = mainlog(log_file="a.log")
    log.info("before")
    (tmp_path / "a.log").rename(tmp_path / "a.log.1")
    assert main.reopen() == 1
    log.info("after")
    assert "after" in (tmp_path / "a.log").read_text() and "after" not in (tmp_path / "a.log.1").read_text()
    main.configure(settings(tmp_path, log_file="a.log", log_file_maxbytes="1KB", log_file_backups=3))
    assert (main.file.maxbytes, main.file.backups) == (1024, 3)
    main.configure(settings(tmp_path, log_file="b.log"))
    log.info("moved")
    assert f"superd's log goes to {tmp_path / 'b.log'} from now on" in (tmp_path / "a.log").read_text()
    assert "moved" in (tmp_path / "b.log").read_text() and "moved" not in (tmp_path / "a.log").read_text()
    main.configure(settings(tmp_path))
    assert main.file is None and main.reopen() == 0
    log.info("memory only")
    assert main.last_lines(1)[0].endswith(b"memory only")


def test_a_file_that_cannot_be_opened_is_reported_once(mainlog, tmp_path):
    main = mainlog(log_file=str(tmp_path))  # a folder
    for i in range(5):
        log.info("still logging %d", i)
    errors = [line.decode() for line in main.last_lines(10) if str(tmp_path).encode() in line]
    assert len(errors) == 1 and "Is a directory" in errors[0] and "stderr only" in errors[0], errors
    assert main.last_lines(1)[0].endswith(b"still logging 4")  # from memory


def test_a_deleted_file_is_made_again_and_says_so_in_the_new_one(mainlog, tmp_path):
    mainlog(log_file="superd.log")
    log.info("first")
    (tmp_path / "superd.log").unlink()
    log.info("second")  # the file logs "was deleted" while it writes: no recursion
    text = (tmp_path / "superd.log").read_text()
    assert "was deleted: writing a new one" in text and "second" in text


def test_a_reload_of_the_format_applies_to_the_file_too(mainlog, tmp_path):
    main = mainlog(log_file="superd.log")
    aio = logging.getLogger("asyncio")
    saved = [(logger, list(logger.handlers), logger.propagate, logger.level) for logger in (log, aio)]
    try:
        ownlog.setup("info", "text", stream=io.StringIO())
        ownlog.setup("info", "json", stream=io.StringIO())  # a reload
        log.info("as json")
        assert json.loads((tmp_path / "superd.log").read_text().splitlines()[-1])["message"] == "as json"
        assert main in log.handlers and main in aio.handlers  # kept across setup
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers[:] = handlers
            logger.propagate, logger.level = propagate, level


def test_followers_share_the_streams_bounded_backlog(mainlog):
    main = mainlog()
    writer = SimpleNamespace()
    follower = Follower(main.stream, writer, 10)
    log.info("followed")
    message = follower._next()
    assert message is not None and b"followed" in message
    for i in range(20000):
        log.info("flood %05d %s", i, "y" * 60)
    assert main.stream.backlog.size <= 256 << 10
    assert b"lines skipped: this reader fell behind" in follower._next()
    follower.stream.unfollow(follower)


# -- config -------------------------------------------------------------------


def test_log_file_keys_defaults_and_errors(tmp_path):
    daemon = settings(tmp_path)
    assert (daemon.log_file, daemon.log_file_maxbytes, daemon.log_file_backups) == (None, 50 << 20, 10)
    with pytest.raises(ConfigError) as error:
        settings(tmp_path, log_file="", log_file_backups=-1, log_file_maxbytes="lots")
    text = str(error.value)
    for key in ("superd.log_file:", "superd.log_file_backups", "superd.log_file_maxbytes"):
        assert key in text
    changed = dataclasses.replace(daemon, log_file="/x.log")
    assert daemon_changes(daemon, changed) == ("log_file",)


def test_check_reports_a_log_file_superd_cannot_write(tmp_path):
    def problems(log_file: str) -> list[str]:
        table = {"superd": {"socket": str(tmp_path / "s.sock"), "run_dir": str(tmp_path / "run"),
                            "log_file": log_file}, "program": {"a": {"command": ["true"]}}}
        return [str(p) for p in diagnose(parse(table, str(tmp_path / "superd.toml")))[0]]

    assert problems("superd.log") == []
    missing = problems("nowhere/superd.log")
    assert len(missing) == 1 and "superd.log_file" in missing[0] and "does not exist" in missing[0]
    assert "is a folder" in problems(str(tmp_path))[0]


# -- health and readiness as events -------------------------------------------


def test_health_and_ready_events_carry_the_old_and_new_values():
    events = Events(lambda: 100.0)
    process = SimpleNamespace(name="web_0", group="web", pid=42, ready=True, reason="pid 42 running",
                              state=SimpleNamespace(value="running"), health=SimpleNamespace(state="unhealthy"))
    event = events.health_changed(process, "healthy", "2 failed checks in a row (tcp:8000); last: refused")
    assert {k: event[k] for k in ("type", "name", "group", "from_state", "to_state", "pid", "reason")} == {
        "type": "health", "name": "web_0", "group": "web", "from_state": "healthy", "to_state": "unhealthy",
        "pid": 42, "reason": "2 failed checks in a row (tcp:8000); last: refused"}
    assert event_line(event, False).endswith("web_0: healthy -> unhealthy: 2 failed checks in a row "
                                             "(tcp:8000); last: refused")
    events.process_noted(process)  # not ready -> ready
    process.ready, process.reason = False, "pid 42 not ready: reloading (RELOADING=1)"
    events.process_noted(process)
    events.process_noted(process)  # no change: no event
    ready = [e for e, _ in events.ring if e["type"] == "ready"]
    assert [(e["from_state"], e["to_state"], e["ready"]) for e in ready] == [
        ("not ready", "ready", True), ("ready", "not ready", False)]
    assert event_line(ready[1], False).endswith("web_0: ready -> not ready: pid 42 not ready: "
                                                "reloading (RELOADING=1)")


def test_what_the_event_loop_reports_goes_to_superds_log(caplog):
    """A callback that raises is logged by superd (with its traceback); an
    OSError, which says enough by itself, without one."""
    import asyncio

    from supervisor.daemon import ownlog

    def broken():
        raise ValueError("boom")

    def refused():
        raise ConnectionRefusedError(111, "refused")

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(ownlog.loop_error)
        loop.call_soon(broken)
        loop.call_soon(refused)
        await asyncio.sleep(0.01)

    with caplog.at_level("ERROR", logger="superd"):
        asyncio.run(main())
    records = [r for r in caplog.records if r.name == "superd"]
    assert len(records) == 2
    assert "Exception in callback" in records[0].getMessage() and "ValueError('boom')" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert "ConnectionRefusedError" in records[1].getMessage() and records[1].exc_info is None


def test_a_record_is_formatted_once_for_all_the_handlers_of_its_format():
    """stderr and the log file (with maintail's ring) share one format: the
    line is made once per record, not once per handler."""
    from supervisor.daemon import ownlog

    calls = []

    class Counting(ownlog.TextFormatter):
        def format(self, record):
            calls.append(record)
            return super().format(record)

    first, second, as_json = logging.Handler(), logging.Handler(), logging.Handler()
    first.setFormatter(Counting())
    second.setFormatter(Counting())
    as_json.setFormatter(ownlog.JsonFormatter())
    record = logging.LogRecord("superd", logging.INFO, __file__, 1, "hello %s", ("x",), None)
    line = ownlog.encode(first, record)
    assert line.endswith(b" INFO    hello x\n")
    assert ownlog.encode(second, record) == line
    assert len(calls) == 1
    assert json.loads(ownlog.encode(as_json, record))["message"] == "hello x"  # another format: its own line
