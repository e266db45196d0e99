"""Logging set-up, done once, in one place."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from monitor.redact import RedactingFilter

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_EXTRA_FIELDS = ("event_id", "notifier", "delivery_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with event IDs and notifier names as fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in _EXTRA_FIELDS if hasattr(record, k)})
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class MalformedRequestFilter(logging.Filter):
    """Drops aiohttp's traceback for a request that is not HTTP: the client got its 400,
    and nothing is wrong with the daemon."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {
                "redact": {"()": RedactingFilter},
                "malformed": {"()": MalformedRequestFilter},
            },
            "formatters": {
                "text": {"format": _TEXT_FORMAT},
                "json": {"()": JsonFormatter},
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "stream": sys.stderr,
                    "formatter": fmt,
                    "filters": ["redact"],
                }
            },
            "root": {"level": level, "handlers": ["stderr"]},
            "loggers": {
                "aiohttp.access": {"level": "WARNING"},
                "aiohttp.server": {"filters": ["malformed"]},
                # Alembic narrates every step; the store logs the one line that matters.
                "alembic": {"level": "WARNING"},
            },
        }
    )
