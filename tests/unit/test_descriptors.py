"""What a config asks superd to hold in file descriptors (config/descriptors.py)."""

from __future__ import annotations

import pytest

from supervisor.config import descriptors
from supervisor.config.loader import parse

pytestmark = pytest.mark.unit


def config(programs: dict, **tables):
    return parse({"superd": {"socket": "/tmp/never.sock"}, "program": programs, **tables}, "/etc/superd.toml", {})


def test_a_program_per_stream_holds_its_pipe_and_its_log_file():
    cfg = config({"web": {"command": "web"}})
    assert descriptors.for_instance(cfg.instances[0]) == 4  # two pipes, two log files


@pytest.mark.parametrize("settings, expected", [
    ({"stdout": "null", "stderr": "null"}, 0),
    ({"stdout": "inherit", "stderr": "inherit"}, 0),
    ({"stdout": "console", "stderr": "console"}, 2),       # pipes, no files
    ({"stderr": "stdout"}, 2),                            # one pipe and one file for both
    ({"stdout": "null", "stderr": "stdout"}, 0),
    ({"stdout": "null", "stderr": "null", "stdin": True}, 1),
    ({"stdout": "null", "stderr": "null", "ready": "notify"}, 1),
])
def test_what_each_setting_costs(settings, expected):
    cfg = config({"p": {"command": "p", **settings}})
    assert descriptors.for_instance(cfg.instances[0]) == expected


def test_numprocs_and_sockets_add_up():
    cfg = config({"w": {"command": "w", "numprocs": 10, "stdout": "console", "stderr": "null"}})
    assert descriptors.needed(cfg) == descriptors.BASE + 10


def test_shortfall_says_nothing_when_it_fits_and_what_to_do_when_not():
    cfg = config({"w": {"command": "w", "numprocs": 100}})
    want = descriptors.needed(cfg)
    assert want == descriptors.BASE + 400
    assert descriptors.shortfall(cfg, want) == ""
    text = descriptors.shortfall(cfg, 256)
    assert str(want) in text and "256" in text
    assert "LimitNOFILE" in text and 'stdout = "null"' in text
