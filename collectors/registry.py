"""Source types register themselves by name; a package walk discovers every module."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, TypeVar

from collectors.base import SourceType, valid_type_name

_REGISTRY: dict[str, type[SourceType[Any]]] = {}
_loaded = False

T = TypeVar("T", bound=type[SourceType[Any]])


class DuplicateSourceType(RuntimeError):
    """Two modules registered the same source type name."""


def register(cls: T) -> T:
    """Class decorator: makes a source type available under its `type_name`."""
    name = cls.type_name
    if not valid_type_name(name):
        raise ValueError(f"source type name {name!r} is not dotted lowercase words")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise DuplicateSourceType(
            f"source type {name!r} is registered by both {existing.__module__} and {cls.__module__}"
        )
    _REGISTRY[name] = cls
    return cls


def load_all() -> None:
    """Imports every module under `collectors` once, so that their @register calls run."""
    global _loaded
    if _loaded:
        return
    import collectors

    for info in pkgutil.walk_packages(collectors.__path__, prefix="collectors."):
        importlib.import_module(info.name)
    _loaded = True


def source_types() -> dict[str, type[SourceType[Any]]]:
    load_all()
    return dict(sorted(_REGISTRY.items()))


def modules_for(name: str) -> list[str]:
    """Where a source type lives by convention: `aws.ec2.instances` in
    `collectors/aws/ec2_instances.py`, `file` in `collectors/files.py` (the contract test
    holds every source type to it)."""
    head, _, rest = name.partition(".")
    candidates = [f"collectors.{head}.{rest.replace('.', '_')}"] if rest else []
    return [*candidates, f"collectors.{name}", f"collectors.{name}s"]


def get(name: str) -> type[SourceType[Any]] | None:
    """The source type; only its own module is imported when it follows the convention
    (a config of file sources never loads the AWS SDK), else every module is."""
    found = find(name)
    if found is None:
        load_all()
    return _REGISTRY.get(name)


def find(name: str) -> type[SourceType[Any]] | None:
    """The source type, looked for only where the convention puts it: None for a name no
    collector has (a pushed source's own type), without importing every collector."""
    if name not in _REGISTRY and valid_type_name(name):
        for module in modules_for(name):
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name is None or not module.startswith(exc.name):
                    raise  # the module exists but one of its imports does not: a real error
                continue
            if name in _REGISTRY:
                break
    return _REGISTRY.get(name)
