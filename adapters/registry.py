"""Adapter kinds by name: the built-in ones and plugins from the ``bus.adapters`` entry points.

A kind is a class with ``kind``, ``options_model`` and a constructor
``(options, context: AdapterContext)``. ``adapter_kind(name)`` finds it; ``build_adapter`` builds
one from the raw config options (validating them with the kind's ``options_model``).

``register_kind(cls)`` adds a kind for the rest of this process, for a program that runs the bus
from the repository's checkout without installing a distribution of its own: the benchmark's
``bench-echo`` (``bench.trivial_adapter``), which is not in the wheel and so cannot be an entry
point of it. Neither a registered kind nor a plugin can shadow a built-in kind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from adapters.base import Adapter, AdapterConfigError, AdapterContext, AdapterOptions

__all__ = ["AdapterKind", "adapter_kind", "available_kinds", "build_adapter", "register_kind"]

ENTRY_POINT_GROUP = "bus.adapters"
_BUILTIN = {
    "rest": "adapters.rest:RestAdapter",
    "soap": "adapters.soap:SoapAdapter",
    "sql": "adapters.sql:SqlAdapter",
}
# The bus's own kinds (``manual``: its operator inbox is the bus's own) come in through the
# entry points like any plugin, so this package never imports upwards; they are listed as built-in.
_OWN_PLUGIN_MODULES = ("bus.",)
# Kinds registered by the program running the bus (``register_kind``), by name.
_registered: dict[str, Any] = {}


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


def register_kind(cls: Any) -> None:
    """Make ``cls`` (its ``kind``, ``options_model`` and constructor) a kind in this process.

    Registering the same class again does nothing; another class under a taken name is refused.
    """
    name = cls.kind
    if name in _BUILTIN or _registered.get(name, cls) is not cls:
        raise AdapterConfigError(f"adapter kind {name!r} is already taken")
    _registered[name] = cls


def _registered_kind(name: str) -> AdapterKind:
    cls = _registered[name]
    return AdapterKind(name, cls, f"registered by {cls.__module__}")


def available_kinds() -> dict[str, AdapterKind]:
    """Every adapter kind: built-in, registered, installed plugins; none shadows a built-in."""
    kinds = {name: AdapterKind(name, _load(t), "built-in") for name, t in _BUILTIN.items()}
    kinds.update({name: _registered_kind(name) for name in _registered})
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
    if name in _registered:
        return _registered_kind(name)
    found = list(entry_points(group=ENTRY_POINT_GROUP, name=name))
    if not found:
        installed = {
            *_BUILTIN, *_registered, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        }
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
