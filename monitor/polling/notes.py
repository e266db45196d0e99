"""What the poller tells the log about odd answers and finished events, once per process."""

from __future__ import annotations

import logging

from monitor.models import Answer, EventState, Reading

logger = logging.getLogger(__name__)


class Notes:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._events: set[str] = set()
        """Events already reported as probably invalid, or as past their `until`."""

    def until_passed(self, event_id: str) -> None:
        if event_id in self._events:
            return
        self._events.add(event_id)
        logger.info(
            "event %s: its `until` time has passed; it is no longer polled",
            event_id,
            extra={"event_id": event_id},
        )

    def undocumented(self, answer: Answer, reading: Reading) -> None:
        """Log each undocumented value once per process; it counts as no reading."""
        for raw, parsed in (
            (answer.status, reading.status),
            (answer.resale_status, reading.resale_status),
        ):
            text = repr(raw)
            if raw is None or parsed is not None or text in self._values:
                continue
            self._values.add(text)
            logger.warning(
                "event %s: undocumented status value %s is treated as no reading "
                "(reported once per value)",
                answer.event_id,
                text,
                extra={"event_id": answer.event_id},
            )

    def probably_invalid(self, event_id: str, state: EventState, why: str | None) -> None:
        if state.unknown_streak or event_id in self._events:
            return
        self._events.add(event_id)
        logger.warning(
            "event %s: the API answered UNKNOWN%s on its first poll; probably an invalid "
            "event ID, or an event in the UK or Ireland without `region: GB` or `IE` "
            "(a pasted `url:` sets it)",
            event_id,
            "" if why is None else f" ({why})",
            extra={"event_id": event_id},
        )
