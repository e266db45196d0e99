from __future__ import annotations

import json

import pytest

from monitor.config import Rule, parse_config
from monitor.models import Availability, ResaleStatus, Status
from monitor.notify.routing import allows, passes, routed

A, F, N, U = ("TICKETS_AVAILABLE", "FEW_TICKETS_LEFT", "TICKETS_NOT_AVAILABLE", "UNKNOWN")


def av(status: str, resale: str = N) -> Availability:
    return Availability(Status(status), ResaleStatus(resale))


def rule(**settings: object) -> Rule:
    return Rule.model_validate(settings)


@pytest.mark.parametrize(
    ("settings", "previous", "current", "expected"),
    [
        ({}, av(N), av(A), True),
        ({}, av(A, N), av(A, A), True),
        ({"field": "status"}, av(A, N), av(A, A), False),
        ({"field": "resale_status"}, av(A, N), av(A, A), True),
        ({"field": "status", "to": [A, F]}, av(N), av(A), True),
        ({"field": "status", "to": [A, F]}, av(A), av(F), True),
        ({"field": "status", "to": [A, F]}, av(A), av(N), False),
        ({"field": "status", "from": [N], "to": [A]}, av(N), av(A), True),
        ({"field": "status", "from": [N], "to": [A]}, av(F), av(A), False),
        ({"from": [N]}, av(N, A), av(A, N), True),
        ({"to": [A]}, None, av(A), True),
        ({"from": [N]}, None, av(A), False),
        ({"field": "status", "to": [U]}, av(A), av(U), True),
    ],
)
def test_rule(
    settings: dict[str, object],
    previous: Availability | None,
    current: Availability,
    expected: bool,
) -> None:
    assert passes(rule(**settings), previous, current) is expected


def test_no_rules_let_everything_through_and_any_rule_of_a_set_suffices() -> None:
    assert allows((), av(A), av(F))
    either = (rule(to=[A]), rule(to=[F]))
    assert allows(either, av(N), av(F))
    assert not allows(either, av(A), av(N))
    assert not routed(((), (rule(to=[A]),)), av(N), av(F)), "every set must pass"


def test_tags_and_when_from_the_config() -> None:
    config = parse_config(
        json.dumps(
            {
                "ticketmaster": {"api_key": "abcdefgh"},
                "notifiers": {
                    "everyone": {"type": "log"},
                    "tour": {"type": "log", "tags": ["tour-2027"]},
                    "fans": {"type": "log", "when": {"field": "status", "to": [A, F]}},
                },
                "events": [
                    {"id": "E1", "tags": ["tour-2027"]},
                    {"id": "E2", "when": [{"field": "resale_status"}]},
                    {"id": "E3", "notify": ["tour"]},
                ],
            }
        ),
        "test.yaml",
        {},
    )
    e1, e2, e3 = config.events
    assert config.targets_of(e1) == ("everyone", "tour", "fans")
    assert config.targets_of(e2) == ("everyone", "fans")
    assert config.targets_of(e3) == ("tour",)
    assert routed(config.rules_for(e1, "fans"), av(N), av(A))
    assert not routed(config.rules_for(e1, "fans"), av(A), av(N))
    assert not routed(config.rules_for(e2, "everyone"), av(A), av(N)), "E2 hears only resale"
