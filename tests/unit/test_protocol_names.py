"""The wire's names are the state machine's: nothing else ties them, so this does."""

from __future__ import annotations

import pytest

from supervisor.control import protocol
from supervisor.core.states import DaemonState, ProcessState

pytestmark = pytest.mark.timeout(10)


def test_process_states_on_the_wire_are_the_machines():
    assert protocol.PROCESS_STATES == tuple(state.value for state in ProcessState)


def test_daemon_states_on_the_wire_are_superds():
    assert protocol.DAEMON_STATES == tuple(state.value for state in DaemonState)


def test_every_method_has_a_handler():
    from supervisor.control.handlers import Handlers

    assert [m for m in protocol.METHODS if not hasattr(Handlers, f"rpc_{m}")] == []
