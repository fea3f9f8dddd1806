"""Process tracking with a cgroup v2 per instance (needs root and a writable
cgroup v2 hierarchy).

The tests are those of tests/system that take the ``mode`` fixture, written
once and run twice: there in the fallback mode (process groups, the
subreaper, the run id), here with ``mode`` "cgroup", which gives superd
``cgroups = "auto"`` and lets the tests check the cgroups themselves.
"""

from __future__ import annotations

import pytest

# Collected here a second time, where the mode fixture below applies.
from tests.system.test_crash_recovery import test_after_a_sigkill_the_next_superd_runs_exactly_one_of_each
from tests.system.test_process_tracking import (
    test_a_daemon_deaf_to_term_is_killed_at_stopwaitsecs,
    test_run_id_is_in_every_process_environment,
    test_shutdown_ends_the_escaped_daemon_and_removes_the_cgroups,
    test_status_of_100_programs_stays_cheap,
    test_stop_ends_the_escaped_daemon,
    test_the_mode_is_logged_and_shown_by_check,
    test_what_an_exit_leaves_behind_is_gone_before_the_restart,
)
from tests.system.test_shutdown import test_without_stopasgroup_the_rest_is_stopped_once_the_leader_is_gone

pytestmark = [pytest.mark.root, pytest.mark.cgroup, pytest.mark.timeout(60)]


@pytest.fixture
def mode() -> str:
    """Instead of tests/system/conftest.py's "fallback" (the cgroup marker has
    made sure there is a usable cgroup v2)."""
    return "cgroup"
