"""The shutdown plan: phases by priority and the deadline arithmetic."""

from __future__ import annotations

import pytest

from supervisor.core.shutdown import KILL_MARGIN, Phase, StopItem, phase_budget, plan, reserve

pytestmark = pytest.mark.timeout(10)


def test_phases_run_highest_priority_first_and_group_equal_priorities() -> None:
    phases = plan(
        [
            StopItem("db", 10, 5),
            StopItem("web_0", 999, 3),
            StopItem("web_1", 999, 7),
            StopItem("worker", 500, 20),
        ]
    )
    assert phases == [
        Phase(999, ("web_0", "web_1"), 7),
        Phase(500, ("worker",), 20),
        Phase(10, ("db",), 5),
    ]


def test_empty_plan() -> None:
    assert plan([]) == []


def test_budget_is_the_wish_when_everything_fits() -> None:
    assert phase_budget(7, [20, 5], remaining=60) == 7


def test_budgets_are_compressed_in_proportion_when_they_do_not_fit() -> None:
    remaining = 10.0
    budget = phase_budget(20, [10], remaining)
    usable = remaining - 2 * KILL_MARGIN
    assert budget == pytest.approx(usable * 20 / 30)
    # The later phase gets what is left, so the sum never passes the deadline.
    left = remaining - budget
    second = phase_budget(10, [], left)
    assert budget + second <= remaining


def test_time_a_fast_phase_saved_goes_to_later_phases() -> None:
    # 3 phases of 30 s each in 24 s: 8 s each if all use their budget...
    first = phase_budget(30, [30, 30], 24)
    assert first == pytest.approx((24 - 3 * KILL_MARGIN) / 3)
    # ...but if phase 1 finished at once, phase 2 may use half of all 24 s.
    second = phase_budget(30, [30], 24)
    assert second == pytest.approx((24 - 2 * KILL_MARGIN) / 2)


def test_no_time_left_means_kill_at_once() -> None:
    assert phase_budget(10, [], 0) == 0
    assert phase_budget(10, [], -1) == 0


def test_reserve_is_small_and_bounded() -> None:
    assert reserve(3) == pytest.approx(0.3)
    assert reserve(25) == 1.0
    assert reserve(90) == 1.0


def test_shutdown_timeout_three_beats_stopwaitsecs_thirty() -> None:
    timeout = 3.0
    budget = phase_budget(30, [], timeout - reserve(timeout))
    assert budget < timeout - reserve(timeout)
    assert budget > 2.5


# -- depends_on ------------------------------------------------------------------

def test_dependents_stop_before_their_dependencies_at_one_priority() -> None:
    items = [StopItem("web", 999, 5), StopItem("db", 999, 10), StopItem("cache", 999, 3)]
    phases = plan(items, {"web": ["db", "cache"], "cache": ["db"]})
    assert [p.names for p in phases] == [("web",), ("cache",), ("db",)]
    assert [p.want for p in phases] == [5, 3, 10]


def test_a_dependency_with_a_higher_priority_number_waits_for_its_dependents() -> None:
    # Priority alone would stop db first (500 > 10); web depends on it.
    items = [StopItem("db", 500, 10), StopItem("web", 10, 5), StopItem("worker", 500, 2)]
    phases = plan(items, {"web": ["db"]})
    assert [(p.priority, p.names) for p in phases] == [(500, ("worker",)), (10, ("web",)), (500, ("db",))]


def test_priority_order_still_holds_where_dependencies_do_not_say_otherwise() -> None:
    items = [StopItem("a", 900, 1), StopItem("b", 800, 1), StopItem("c", 700, 1)]
    assert [p.names for p in plan(items, {"a": ["c"]})] == [("a",), ("b",), ("c",)]
    # A moved dependency joins the phase of the priority it lands on.
    items = [StopItem("a", 900, 1), StopItem("b", 800, 1), StopItem("db", 950, 1)]
    phases = plan(items, {"a": ["db"]})
    assert [(p.priority, p.names) for p in phases] == [(900, ("a",)), (800, ("b", "db"))]


def test_the_order_passes_through_processes_that_are_not_running() -> None:
    # web -> cache (stopped, not in the plan) -> db: web still stops before db.
    items = [StopItem("web", 999, 1), StopItem("db", 999, 1)]
    assert [p.names for p in plan(items, {"web": ["cache"], "cache": ["db"]})] == [("web",), ("db",)]


def test_every_instance_of_a_pool_stops_before_what_the_pool_depends_on() -> None:
    items = [StopItem(f"web_{n}", 999, 1) for n in range(3)] + [StopItem("db", 999, 4)]
    deps = {f"web_{n}": ["db"] for n in range(3)}
    assert [p.names for p in plan(items, deps)] == [("web_0", "web_1", "web_2"), ("db",)]


def test_a_phase_of_10000_programs_is_logged_on_one_short_line():
    from supervisor.daemon.shutdown import _some

    names = [f"p{i:05d}" for i in range(10000)]
    assert _some(names) == ", ".join(names[:10]) + " and 9990 more"
    assert _some(names[:10]) == ", ".join(names[:10])
    assert _some([4242]) == "4242"
