"""Keeps secrets out of everything a person or a database can read."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
# Query parameters that carry credentials in any URL we might print, configured or not.
_SECRET_PARAMS = re.compile(r"(?i)\b(apikey|api_key|token|secret|password|signature)=([^&\s\"'#]+)")


class Redactor:
    """Replaces registered secrets, and credential-looking query parameters, with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Very short values would mask ordinary words; no real credential is that short.
        self._secrets.update(s for s in secrets if len(s) >= 4)
        if self._secrets:
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}={MASK}", text)


redactor = Redactor()
"""The process-wide redactor; the app registers the configured secrets on it at start-up."""


def redact(text: str) -> str:
    return redactor(text)


class RedactingFilter(logging.Filter):
    """Redacts the finished message and any traceback of every record passing a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(formatted), None
        return True
