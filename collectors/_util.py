"""Helpers shared by collectors: turning parsed documents into JSON-safe attribute documents."""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Mapping, Set
from typing import Any

from collectors.base import Attributes


def json_safe(value: Any) -> Any:
    """A copy of a parsed tree that `json.dumps` accepts and that round-trips as equal.

    Dates and times become ISO 8601 strings, bytes (YAML `!!binary`) their base64 text,
    tuples lists, sets sorted lists, non-finite floats the strings "nan", "inf" and "-inf"
    (strict JSON has no such numbers), and mapping keys strings, spelt as JSON spells
    `true`, `false` and `null` (so YAML's `on:` key reads "true", not "True").
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {_json_key(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, Set):
        return sorted((json_safe(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    safe = json_safe(key)
    return safe if isinstance(safe, str) else str(safe)


def as_attributes(document: Any) -> Attributes:
    """A parsed document as attributes: a mapping as it is, anything else under "value"."""
    safe = json_safe(document)
    if isinstance(safe, dict):
        return safe
    return {"value": safe}
