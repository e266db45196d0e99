from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.config import Rule, parse_config
from monitor.errors import ConfigError
from monitor.models import Availability, Change, ChangeKind, ResaleStatus, SaleOpening, Status
from monitor.notify.routing import allows, passes, routed
from tests.conftest import ConfigFactory
from tests.e2e import run_cli

A, F, N, U = ("TICKETS_AVAILABLE", "FEW_TICKETS_LEFT", "TICKETS_NOT_AVAILABLE", "UNKNOWN")


def av(status: str, resale: str = N) -> Availability:
    return Availability(Status(status), ResaleStatus(resale))


def rule(**settings: object) -> Rule:
    return Rule.model_validate(settings)


def ch(
    previous: Availability | None, current: Availability, kind: ChangeKind = ChangeKind.INVENTORY
) -> Change:
    lifecycle = ("onsale", "canceled") if kind is ChangeKind.LIFECYCLE else None
    sale = SaleOpening("public", None, 0.0) if kind is ChangeKind.SALE_OPENED else None
    return Change("c1", "E1", None, previous, current, 0.0, lifecycle=lifecycle, sale=sale)


@pytest.mark.unit
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
    assert passes(rule(**settings), ch(previous, current)) is expected


@pytest.mark.unit
def test_no_rules_let_everything_through_and_any_rule_of_a_set_suffices() -> None:
    assert allows((), ch(av(A), av(F)))
    either = (rule(to=[A]), rule(to=[F]))
    assert allows(either, ch(av(N), av(F)))
    assert not allows(either, ch(av(A), av(N)))
    assert not routed(((), (rule(to=[A]),)), ch(av(N), av(F))), "every set must pass"


LIFECYCLE, SALE = ChangeKind.LIFECYCLE, ChangeKind.SALE_OPENED


@pytest.mark.unit
@pytest.mark.parametrize(
    ("settings", "kind", "expected"),
    [
        ({"kind": "lifecycle"}, LIFECYCLE, True),
        ({"kind": ["lifecycle", "sale_opened"]}, SALE, True),
        ({"kind": "lifecycle"}, SALE, False),
        ({}, LIFECYCLE, False),
        ({"to": [A]}, SALE, False),
        ({"kind": "lifecycle"}, ChangeKind.INVENTORY, False),
        ({"kind": ["inventory", "lifecycle"], "to": [A]}, ChangeKind.INVENTORY, True),
    ],
)
def test_rules_select_kinds_of_change(
    settings: dict[str, object], kind: ChangeKind, expected: bool
) -> None:
    """A rule names the kinds it lets through; without `kind` it is about availability."""
    assert passes(rule(**settings), ch(av(N), av(A), kind)) is expected


@pytest.mark.unit
def test_no_rules_let_every_kind_through() -> None:
    assert allows((), ch(av(A), av(A), LIFECYCLE))
    assert allows((), ch(av(A), av(A), SALE))


@pytest.mark.unit
def test_a_kind_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="lifecycle"):
        rule(kind="cancelled")


@pytest.mark.unit
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
    assert routed(config.rules_for(e1, "fans"), ch(av(N), av(A)))
    assert not routed(config.rules_for(e1, "fans"), ch(av(A), av(N)))
    assert not routed(config.rules_for(e2, "everyone"), ch(av(A), av(N))), "E2 hears only resale"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(
            {"field": "status", "to": ["tickets_available"]},
            "to: unknown status 'tickets_available' (did you mean 'TICKETS_AVAILABLE'?)",
            id="lower case",
        ),
        pytest.param(
            {"to": ["AVAILABLE"]},
            "to: unknown status 'AVAILABLE' (did you mean 'TICKETS_AVAILABLE'?)",
            id="near miss",
        ),
        pytest.param(
            {"field": "status", "from": ["SOLD_OUT"]},
            "from: unknown status 'SOLD_OUT'; valid: TICKETS_AVAILABLE, FEW_TICKETS_LEFT",
            id="no near value",
        ),
        pytest.param(
            {"field": "resale_status", "to": "FEW_TICKETS_LEFT"},
            "to: unknown resale status 'FEW_TICKETS_LEFT' (resale has no such state)",
            id="a primary state for resale",
        ),
        pytest.param(
            {"field": "stauts", "to": "TICKETS_AVAILABLE"},
            "field: input should be 'status' or 'resale_status'",
            id="misspelt field",
        ),
    ],
)
def test_a_rule_naming_an_unknown_state_is_refused_with_the_valid_ones(
    make_config: ConfigFactory, rule: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(notifiers={"fans": {"type": "log", "when": rule}})
    (problem,) = caught.value.problems
    assert f"notifiers.fans.when[0].{expected}" in problem, problem


@pytest.mark.unit
def test_a_single_state_stands_for_a_list(make_config: ConfigFactory) -> None:
    config = make_config(notifiers={"fans": {"type": "log", "when": {"to": "TICKETS_AVAILABLE"}}})
    (rule,) = config.notifiers["fans"].when
    assert rule.to == ("TICKETS_AVAILABLE",)


async def test_check_strict_refuses_a_notifier_that_can_never_hear_anything(
    tmp_path: Path,
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "ticketmaster: {api_key: abcdefgh}\n"
        "notifiers:\n"
        "  fans:\n"
        "    type: log\n"
        "    when: {field: status, from: TICKETS_AVAILABLE, to: TICKETS_AVAILABLE}\n"
        "  vip: {type: log, tags: [vip]}\n"
        "events: [{id: E1}]\n"
    )
    code, _, err = await run_cli("check", "--strict", "--config", str(path))
    assert code == 2, err
    assert "notifiers.fans.when: no rule can match" in err
    assert "notifiers.vip: no watched event reaches this notifier (tags ['vip']" in err
    code, _, err = await run_cli("check", "--config", str(path))
    assert code == 0, "without --strict they are warnings"
    path.write_text(path.read_text().replace("to: TICKETS_AVAILABLE", "to: tickets_available"))
    code, _, err = await run_cli("check", "--config", str(path))
    assert code == 2, "a typo in a rule is a mistake, strict or not"
    assert "did you mean 'TICKETS_AVAILABLE'?" in err
