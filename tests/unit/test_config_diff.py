"""config.diff: what a reload would change between two configs (no superd runs;
tests/system/test_reload.py applies it to a live one).
"""

from __future__ import annotations

import textwrap

import pytest

from supervisor import config as cfg
from supervisor.config.diff import compare
from tests.system.test_reload import BASE

pytestmark = pytest.mark.timeout(30)


def load_text(text: str) -> cfg.Config:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return cfg.parse(tomllib.loads(textwrap.dedent(text)), None, {})


def test_compare_finds_added_removed_changed_and_untouched():
    old = load_text(BASE)
    new = load_text(
        BASE.replace('[program.drop]\ncommand = "sleep 1000"\nstartsecs = 0\n', "")
        .replace('[program.change]\ncommand = "sleep 1000"', '[program.change]\ncommand = "sleep 2000"')
        + '[program.new]\ncommand = "sleep 1000"\nnumprocs = 2\n'
    )
    difference = compare(old, new)
    assert difference.added == ("new_0", "new_1")
    assert difference.removed == ("drop",)
    assert difference.changed == ("change",)
    assert difference.unchanged == ("keep",)
    assert not difference.empty


def test_compare_same_config_is_empty_and_daemon_keys_are_noticed():
    assert compare(load_text(BASE), load_text(BASE)).empty
    changed = compare(load_text(BASE), load_text("[superd]\nshutdown_timeout = 5\n" + BASE))
    assert changed.daemon_changed == ("shutdown_timeout",)
    assert changed.as_dict() == {"added": [], "removed": [], "changed": []}


def test_compare_numprocs_growth_adds_instances_and_renames():
    one = load_text('[program.w]\ncommand = "x"\n')
    three = load_text('[program.w]\ncommand = "x"\nnumprocs = 3\n')
    difference = compare(one, three)
    assert difference.removed == ("w",)
    assert difference.added == ("w_0", "w_1", "w_2")
