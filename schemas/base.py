"""Base classes of shared schemas and JSON Schema export."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["SharedRequest", "SharedResponse", "exactly_one_of", "export_json_schemas"]


def exactly_one_of(*names: str) -> dict[str, Any]:
    """The JSON Schema of "exactly one of these fields, as a string" (``json_schema_extra`` of a
    request whose validator says so), so a client or a fuzzer reads the rule too."""
    return {"oneOf": [{"required": [n], "properties": {n: {"type": "string"}}} for n in names]}


class SharedRequest(BaseModel):
    """A request to a service. ``subject_field`` names the field identifying the data subject."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    subject_field: ClassVar[str] = "pinfl"

    def subject(self) -> str:
        """The identifier of the person or organisation the request is about (for the audit)."""
        return str(getattr(self, self.subject_field))


class SharedResponse(BaseModel):
    """An answer of a service. Unknown fields are refused so adapters map exactly."""

    model_config = ConfigDict(extra="forbid")

    def other_subject(self, request: SharedRequest) -> str | None:
        """The field (dotted path) of this answer that names another person or organisation
        than ``request`` is about; None when it names the request's subject or none at all.
        By default the answer's field of the same name as the request's ``subject_field``."""
        name = request.subject_field
        if name not in type(self).model_fields:
            return None
        value = getattr(self, name)
        return None if value is None or str(value) == request.subject() else name


def export_json_schemas(models: Iterable[type[BaseModel]], directory: Path) -> list[Path]:
    """Write one ``<ModelName>.schema.json`` per model into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for model in models:
        path = directory / f"{model.__name__}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written
