"""Adapter kinds by name: the built-in ones and plugins from the ``bus.adapters`` entry points.

A kind is a class with ``kind``, ``options_model`` and a constructor
``(options, context: AdapterContext)``. ``adapter_kind(name)`` finds it; ``build_adapter`` builds
one from the raw config options (validating them with the kind's ``options_model``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from adapters.base import Adapter, AdapterConfigError, AdapterContext, AdapterOptions

__all__ = ["AdapterKind", "adapter_kind", "available_kinds", "build_adapter"]

ENTRY_POINT_GROUP = "bus.adapters"
_BUILTIN = {
    "rest": "adapters.rest:RestAdapter",
    "soap": "adapters.soap:SoapAdapter",
    "sql": "adapters.sql:SqlAdapter",
}
# The bus's own kinds (``manual``: its operator inbox is the bus's own) come in through the
# entry points like any plugin, so this package never imports upwards; they are listed as built-in.
_OWN_PLUGIN_MODULES = ("bus.",)


@dataclass(frozen=True)
class AdapterKind:
    name: str
    cls: Any
    source: str

    @property
    def options_model(self) -> type[AdapterOptions]:
        model: type[AdapterOptions] = self.cls.options_model
        return model

    @property
    def doc(self) -> str:
        module = importlib.import_module(self.cls.__module__)
        return (module.__doc__ or self.cls.__doc__ or "").strip()


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise AdapterConfigError(f"adapter {target!r} cannot be loaded: {exc}") from exc


def available_kinds() -> dict[str, AdapterKind]:
    """Every installed adapter kind; plugins cannot shadow a built-in kind."""
    kinds = {name: AdapterKind(name, _load(t), "built-in") for name, t in _BUILTIN.items()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in kinds:
            kinds[ep.name] = _plugin(ep)
    return kinds


def _plugin(ep: EntryPoint) -> AdapterKind:
    source = ep.dist.name if ep.dist else ep.value
    if ep.value.startswith(_OWN_PLUGIN_MODULES):
        source = "built-in"
    try:
        return AdapterKind(ep.name, ep.load(), source)
    except Exception as exc:
        raise AdapterConfigError(f"adapter plugin {ep.name!r} failed to load: {exc}") from exc


def adapter_kind(name: str) -> AdapterKind:
    """The kind ``name``: only its own plugin is loaded, so a broken plugin of another kind
    cannot stop a node that does not use it."""
    if name in _BUILTIN:
        return AdapterKind(name, _load(_BUILTIN[name]), "built-in")
    found = list(entry_points(group=ENTRY_POINT_GROUP, name=name))
    if not found:
        installed = {*_BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))}
        raise AdapterConfigError(
            f"unknown adapter kind {name!r} (installed: {', '.join(sorted(installed))})"
        )
    return _plugin(found[0])


def build_adapter(kind: str, options: dict[str, Any], context: AdapterContext) -> Adapter:
    found = adapter_kind(kind)
    try:
        parsed = found.options_model.model_validate(options)
    except ValidationError as exc:
        raise AdapterConfigError(f"{context.service}: bad {kind} adapter options: {exc}") from exc
    adapter: Adapter = found.cls(parsed, context)
    return adapter
