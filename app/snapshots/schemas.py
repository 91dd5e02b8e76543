"""The push format (SPEC): parsing that refuses a malformed document whole, naming the JSON path."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.errors import InvalidInput
from app.states import SourceStatus
from collectors.base import Category

# A snapshot may be stamped this far ahead of this machine's clock (clocks drift); later
# is refused: a snapshot from the future would stay "latest" forever.
CLOCK_SKEW = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PushSource(_Strict):
    name: str = Field(min_length=1, max_length=200)
    type: str = Field(default="push", min_length=1, max_length=100)
    status: SourceStatus = SourceStatus.OK
    error: str | None = Field(default=None, max_length=65536)


class PushResource(_Strict):
    source: str = Field(min_length=1)
    category: Category
    resource_type: str = Field(min_length=1, max_length=200)
    key: str = Field(min_length=1)
    attributes: dict[str, Any]


class PushHeader(_Strict):
    """A push document but for its resources, which are validated one by one as they are
    read (app.snapshots.ingest)."""

    taken_at: AwareDatetime
    sources: list[PushSource] = Field(min_length=1)
    resources: list[Any]
    # Written by `export`, ignored by `push`.
    environment: str | None = None
    snapshot_id: int | None = None
    status: str | None = None


class PushDocument(PushHeader):
    """The whole push document (its schema, in the API's description)."""

    resources: list[PushResource]


def json_path(loc: tuple[int | str, ...]) -> str:
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    """A JSON number as a float; one too large for a float (1e999) is refused, as NaN is."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:80]!r}")
        out[key] = value
    return out


def load_json(text: str | bytes, where: str = "the body") -> Any:
    """Strict JSON: no NaN or Infinity, no key given twice (which one would count?), no
    nesting deep enough to exhaust the parser; else InvalidInput saying where."""
    try:
        return json.loads(text, parse_constant=no_constant, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{where}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); nothing stored"
        ) from None
    except RecursionError:
        raise InvalidInput(f"{where}: nested too deep to read; nothing stored") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{where}: not valid JSON ({exc}); nothing stored") from None


def refused(problems: list[dict[str, str]], total: int | None = None) -> InvalidInput:
    """The refusal of a whole push: the first problem, how many more were found in all
    (`total`, when more were found than listed), and up to 100 in the detail."""
    first = problems[0]
    others = (len(problems) if total is None else total) - 1
    more = f" (and {others} more)" if others > 0 else ""
    return InvalidInput(
        f"push refused, nothing stored: {first['path']}: {first['message']}{more}",
        detail=problems[:100],
    )
