"""The citizen's "who read my data" report over HTTP: ``GET /v1/citizens/me/access-log``."""

from __future__ import annotations

__all__ = ["CITIZEN_LOG_PATH"]

CITIZEN_LOG_PATH = "/v1/citizens/me/access-log"
