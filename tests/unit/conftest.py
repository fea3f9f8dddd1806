"""tests/unit: no process spawned: pure logic, a fake runtime, parsing, rendering.

Every test collected from this folder is marked ``unit`` here, so that
``pytest -m unit`` (what .ci/run runs on the other Python versions) selects
exactly this folder; tests/conftest.py refuses the marker anywhere else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if Path(item.path).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.unit)
