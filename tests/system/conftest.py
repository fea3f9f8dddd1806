"""tests/system: a real superd, real processes, the real socket; no privileges.

Process tracking: the tests that take the ``mode`` fixture run here in the
fallback mode (``cgroups = "off"``: process groups, the subreaper and the run
id in each process's environment); tests/privileged/test_cgroup_tracking.py
runs the same tests again with a cgroup v2 per instance.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def mode() -> str:
    """The process tracking mode a test runs superd with: "fallback" here."""
    return "fallback"


def setting(mode: str) -> str:
    """The [superd] line that selects ``mode``."""
    return 'cgroups = "auto"\n' if mode == "cgroup" else 'cgroups = "off"\n'
