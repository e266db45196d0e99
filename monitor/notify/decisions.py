"""What a policy stage decides about a delivery: send it, drop it, or send it later."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Send:
    pass


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str


@dataclass(frozen=True, slots=True)
class DeferUntil:
    at: float


Decision = Send | Drop | DeferUntil

SEND = Send()
