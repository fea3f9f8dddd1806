"""How an exit status reads (core.reporting, still importable from
core.process), and the one encoding of a log record superd's log handlers share."""

from __future__ import annotations

import logging
import signal

from supervisor.core import process, reporting
from supervisor.daemon import ownlog


def test_exit_status_text_and_the_names_core_process_still_exports() -> None:
    assert process.describe_status is reporting.describe_status
    assert process.signal_name is reporting.signal_name
    assert reporting.describe_status(3 << 8) == (3, "exited with code 3")
    assert reporting.describe_status(signal.SIGKILL) == (-signal.SIGKILL, "killed by SIGKILL")
    assert reporting.signal_name(signal.SIGTERM) == "SIGTERM"
    assert reporting.signal_name(200) == "signal 200"


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[logging.LogRecord] = []

    def handleError(self, record: logging.LogRecord) -> None:
        self.errors.append(record)


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("superd", logging.INFO, __file__, 1, msg, args, None)


def test_a_record_becomes_one_line_of_bytes() -> None:
    handler = _Recorder()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    assert ownlog.encode(handler, _record("caf\u00e9 %s", "\udcff")) == "INFO caf\u00e9 ?\n".encode()
    assert handler.errors == []


def test_a_record_that_cannot_be_formatted_is_handed_to_handle_error() -> None:
    handler = _Recorder()
    bad = _record("%d", "not a number")
    assert ownlog.encode(handler, bad) is None
    assert handler.errors == [bad]
