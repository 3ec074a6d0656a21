"""Structured logs: one JSON object per line, with the exchange's bounded context.

Callers log with ``extra={"bus": {...}}`` carrying message_id, correlation, client, service,
outcome and duration_ms. Payloads, secrets and personal identifiers are never passed here.

``configure_logging`` sends the ``bus`` and ``uvicorn`` loggers there, at the configured level
(``log_level``). Other libraries' loggers are left alone on purpose: httpx, for one, logs each
request's URL at INFO, and an adapter's URL may hold a personal identifier.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from signing.files import private_file

__all__ = ["JsonFormatter", "configure_logging"]

_LOGGERS = ("bus", "uvicorn")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "bus", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO", *, stream: Any = None, path: Path | None = None) -> None:
    """Send the ``bus`` and ``uvicorn`` loggers' records as JSON lines to ``path``, ``stream``
    or stderr."""
    handler: logging.Handler = (
        logging.FileHandler(private_file(path), encoding="utf-8")  # 0600: a node's log
        if path
        else logging.StreamHandler(stream or sys.stderr)
    )
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        for old in logger.handlers:
            if old is not handler:
                old.close()
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
