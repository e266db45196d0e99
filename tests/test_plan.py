from __future__ import annotations

import pytest

from monitor.config import Config
from monitor.models import Status
from monitor.polling.watchlist import watchlist
from monitor.times import format_duration
from monitor.upstream.quota import (
    SAFETY_MARGIN,
    Demand,
    demands_of,
    discovery_per_day,
    plan_for,
    plan_quota,
    quota_warning,
    rate_warning,
    request_capacity,
    requests_per_day,
    stretched,
)
from tests.conftest import ConfigFactory

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("demands", "capacity", "expected"),
    [
        pytest.param([Demand(60.0, "")], 100, 1440, id="one event every minute"),
        pytest.param([Demand(60.0, "")] * 100, 100, 1440, id="a full batch costs one request"),
        pytest.param([Demand(60.0, "")] * 101, 100, 2880, id="one event over makes two"),
        pytest.param(
            [Demand(60.0, "ticketmaster/US")] * 50 + [Demand(60.0, "ticketmaster/GB")] * 50,
            100,
            2880,
            id="regions never share a request",
        ),
        pytest.param(
            [Demand(30.0, "")] * 10 + [Demand(300.0, "")] * 10,
            100,
            2880,
            id="the longer interval rides in the shorter one's room",
        ),
        pytest.param(
            [Demand(30.0, "")] * 90 + [Demand(300.0, "")] * 30,
            100,
            2880 + 288,
            id="what does not fit the room pays at its own interval",
        ),
        pytest.param(
            [Demand(30.0, "")] * 90 + [Demand(60.0, "")] * 5 + [Demand(300.0, "")] * 10,
            100,
            2880 + 288,
            id="room is filled from the next shortest interval on",
        ),
        pytest.param(
            [Demand(30.0, "ticketmaster/US")] * 10 + [Demand(300.0, "ticketmaster/GB")] * 10,
            100,
            2880 + 288,
            id="room never carries another region",
        ),
        pytest.param([Demand(1.0, "")] * 2000, 50, 40 * 86400, id="2,000 events, batch 50, 1s"),
    ],
)
def test_requests_per_day(demands: list[Demand], capacity: int, expected: float) -> None:
    assert requests_per_day(demands, capacity) == pytest.approx(expected)


def test_a_plan_within_the_quota_stretches_nothing() -> None:
    plan = plan_quota([Demand(60.0, "")] * 300, 100, quota=5000)
    assert plan.requests_per_day == pytest.approx(4320)
    assert plan.fits
    assert plan.scale == 1.0


def test_an_oversized_plan_stretches_to_fit_under_the_margin() -> None:
    demands = [Demand(30.0, "")] * 1000  # 10 requests every 30s: 28,800 a day
    plan = plan_quota(demands, 100, quota=5000)
    assert not plan.fits
    fitted = requests_per_day(demands, 100, plan.scale)
    assert fitted <= 5000 * SAFETY_MARGIN
    # The smallest stretch that fits: one second less would not.
    interval = stretched(30.0, plan.factor(1))
    assert requests_per_day([Demand(interval - 1, "")] * 1000, 100) > 5000 * SAFETY_MARGIN


def test_higher_priority_events_are_stretched_less() -> None:
    demands = [Demand(60.0, "", priority=1)] * 500 + [Demand(60.0, "", priority=5)] * 100
    plan = plan_quota(demands, 100, quota=2000)
    assert requests_per_day(demands, 100, plan.scale) <= 2000 * SAFETY_MARGIN
    low, high = stretched(60.0, plan.factor(1)), stretched(60.0, plan.factor(5))
    assert 60.0 <= high < low
    assert high == pytest.approx(60.0 * max(1.0, plan.scale / 5), abs=1.0)


def test_the_warning_names_the_intervals_that_fit(make_config: ConfigFactory) -> None:
    config: Config = make_config(
        ticketmaster={"daily_quota": 5000, "batch_size": 100},
        polling={"interval": "30s"},
        discovery={"enabled": False},
        events=[{"id": f"E{i}"} for i in range(150)]
        + [{"id": "VIP", "priority": 10, "interval": "30s"}],
    )
    plan = plan_for(config)
    assert plan.requests_per_day == pytest.approx(2 * 2880)
    warning = quota_warning(config, plan)
    assert warning is not None
    assert "needs 5,760 requests a day but the daily quota is 5,000" in warning
    assert f"30s -> {format_duration(stretched(30.0, plan.factor(1)))}" in warning
    assert "30s -> 30s (priority 10)" in warning
    assert quota_warning(config, plan_for(config, quota=6000)) is None
    assert "fit_quota" in warning, "advice to stretch them, since nothing does yet"
    fitted = config.model_copy(
        update={"polling": config.polling.model_copy(update={"fit_quota": True})}
    )
    stretching = quota_warning(fitted, plan_for(fitted))
    assert stretching is not None
    assert "fit_quota" not in stretching, "no advice to set what is set"


@pytest.mark.parametrize(
    ("events", "interval", "rate", "warned"),
    [
        (5000, "5s", 2, "needs 10.0 requests a second but ticketmaster.requests_per_second is 2"),
        (5000, "25s", 2, None),
        (5000, "5s", 10, None),
        (200, "1s", 2, None),
    ],
)
def test_a_plan_over_the_request_rate_is_warned_of_with_intervals_that_fit(
    make_config: ConfigFactory, events: int, interval: str, rate: float, warned: str | None
) -> None:
    config: Config = make_config(
        ticketmaster={"batch_size": 100, "requests_per_second": rate},
        polling={"interval": interval},
        discovery={"enabled": False},
        events=[{"id": f"E{i:05d}"} for i in range(events)],
    )
    warning = rate_warning(config)
    if warned is None:
        assert warning is None
    else:
        assert warning is not None
        assert warned in warning
        assert "intervals that fit: 5s -> 27.8s" in warning, warning


def test_interval_by_status_is_planned_at_its_shortest_interval(
    make_config: ConfigFactory,
) -> None:
    config = make_config(
        polling={"interval": "5m", "interval_by_status": {"FEW_TICKETS_LEFT": "15s"}},
        events=[{"id": "E1"}],
        discovery={"enabled": False},
    )
    assert plan_for(config).requests_per_day == pytest.approx(86400 / 15)


def test_fit_quota_stretches_the_watched_intervals(make_config: ConfigFactory) -> None:
    config = make_config(
        ticketmaster={"daily_quota": 1000, "batch_size": 10},
        polling={"interval": "1m", "fit_quota": True},
        events=[
            {"id": "LOW", "interval_by_status": {"FEW_TICKETS_LEFT": "30s"}},
            {"id": "VIP", "priority": 10},
        ],
    )
    plan = plan_for(config)
    watches = watchlist(config, plan)
    low, vip = watches["LOW"], watches["VIP"]
    assert low.interval == stretched(60.0, plan.factor(1)) > 60.0
    assert low.interval_by_status[Status.FEW_TICKETS_LEFT] == stretched(30.0, plan.factor(1))
    assert vip.interval == stretched(60.0, plan.factor(10)) < low.interval
    assert requests_per_day(demands_of(config), 10, plan.scale) <= 1000 * SAFETY_MARGIN
    assert watchlist(config)["LOW"].interval == 60.0, "without a plan nothing stretches"


@pytest.mark.parametrize(
    ("interval", "factor", "expected"),
    [
        (30.0, 1.0, 30.0),
        (30.0, 0.5, 30.0),
        (30.0, 1.28, 38.4),
        (60.0, 5.76, 346.0),
        (1.0, 1.001, 1.01),
        (0.05, 1.0666, 0.0534),
    ],
)
def test_stretched_rounds_up_to_three_figures(
    interval: float, factor: float, expected: float
) -> None:
    assert stretched(interval, factor) == expected
    assert (
        interval * factor <= stretched(interval, factor) <= interval * factor * 1.01 or factor <= 1
    )


def test_the_plan_counts_requests_as_full_as_the_size_and_the_url_allow(
    make_config: ConfigFactory,
) -> None:
    events = [{"id": f"G5v{i:06d}ZpCY3S"} for i in range(2000)]  # 15 characters
    auto = make_config(events=events)
    assert request_capacity(auto) == 200, "a first guess until a size is learnt"
    assert (
        request_capacity(auto, learnt=1000) == (8000 - len(auto.ticketmaster.base_url) - 100) // 16
    )
    wide = make_config(events=events, ticketmaster={"max_url_bytes": 20_000})
    assert request_capacity(wide, learnt=1000) == 1000
    pinned = make_config(events=events, ticketmaster={"batch_size": 50})
    assert request_capacity(pinned, learnt=1000) == 50
    # 2,000 events every 10 s: 10 requests of 200 at first, 2 of 1,000 once learnt.
    fast = make_config(
        events=events,
        polling={"interval": "10s"},
        ticketmaster={"max_url_bytes": 20_000},
        discovery={"enabled": False},
    )
    assert plan_for(fast).requests_per_day == pytest.approx(10 * 8640)
    assert plan_for(fast, learnt_size=1000).requests_per_day == pytest.approx(2 * 8640)


def test_event_details_draw_on_the_same_quota(make_config: ConfigFactory) -> None:
    """A search per 200 universal IDs and one per linked legacy ID, every refresh: for
    1,000 events refreshed daily, 5 requests of the 5,000 a day."""
    legacy = "0B005F8BC6A04A1B"
    events = [{"id": f"G5v{i:06d}ZpCY3S"} for i in range(1000)]
    daily = make_config(events=events, polling={"interval": "1h"})
    assert discovery_per_day(daily) == 5
    assert plan_for(daily).requests_per_day == pytest.approx(5 * 24 + 5)
    hourly = make_config(
        events=[*events[:399], {"url": f"https://www.ticketmaster.com/x/event/{legacy}"}],
        discovery={"refresh": "1h"},
    )
    assert discovery_per_day(hourly) == (2 + 1) * 24
    assert discovery_per_day(make_config(events=events, discovery={"enabled": False})) == 0


def test_fitting_leaves_room_for_event_details(make_config: ConfigFactory) -> None:
    config = make_config(
        ticketmaster={"daily_quota": 1000, "batch_size": 10},
        polling={"interval": "1m", "fit_quota": True},
        events=[{"id": f"E{i}"} for i in range(20)],
        discovery={"refresh": "10m"},
    )
    plan = plan_for(config)
    assert plan.reserved_per_day == 144
    polls = requests_per_day(demands_of(config), 10, plan.scale)
    assert polls + plan.reserved_per_day <= 1000 * SAFETY_MARGIN


def test_searches_draw_on_the_quota_too(make_config: ConfigFactory) -> None:
    search = {"name": "oasis", "keyword": "Oasis", "every": "6h"}
    config = make_config(
        events=[], discover=[search, {**search, "name": "big", "max_events": 1000}]
    )
    # 4 runs a day: a page for 200 events, five for 1,000.
    assert discovery_per_day(config) == 4 * 1 + 4 * 5
