"""The push format (SPEC): parsing that refuses a malformed document whole, naming the JSON path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from app.clock import format_time, utcnow
from app.errors import InvalidInput
from app.states import SourceStatus
from collectors.base import Category
from collectors.limits import LimitExceeded, Limits, check_document, check_key

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


class PushDocument(_Strict):
    taken_at: AwareDatetime
    sources: list[PushSource] = Field(min_length=1)
    resources: list[PushResource]
    # Written by `export`, ignored by `push`.
    environment: str | None = None
    snapshot_id: int | None = None
    status: str | None = None


def json_path(loc: tuple[int | str, ...]) -> str:
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
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
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{where}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); nothing stored"
        ) from None
    except RecursionError:
        raise InvalidInput(f"{where}: nested too deep to read; nothing stored") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{where}: not valid JSON ({exc}); nothing stored") from None


def parse_push(
    data: Any, limits: Limits | None = None, now: datetime | None = None
) -> PushDocument:
    """A valid push document, or InvalidInput naming the path of every problem found: its
    shape, the limits (depth, key and string lengths, resources), characters no database
    column holds (NUL), and a time ahead of this machine's clock."""
    limits = limits or Limits()
    now = now or utcnow()
    if isinstance(data, dict) and isinstance(data.get("resources"), list):
        count = len(data["resources"])
        if count > limits.max_resources:
            raise _refused(
                [
                    {
                        "path": "$.resources",
                        "message": f"{count:,} resources (limits.max_resources is "
                        f"{limits.max_resources:,})",
                    }
                ]
            )
    try:
        doc = PushDocument.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"path": json_path(err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        raise _refused(problems) from None
    problems = []
    if doc.taken_at > now + CLOCK_SKEW:
        problems.append(
            {
                "path": "$.taken_at",
                "message": f"{format_time(doc.taken_at)} is ahead of this server's clock "
                f"({format_time(now)}) by more than {int(CLOCK_SKEW.total_seconds() // 60)} "
                "minutes",
            }
        )
    elif doc.taken_at < EPOCH:
        problems.append({"path": "$.taken_at", "message": "before 1970"})
    sources: dict[str, PushSource] = {}
    for i, source in enumerate(doc.sources):
        for field in ("name", "type", "error"):
            if "\x00" in (getattr(source, field) or ""):
                problems.append(
                    {"path": f"$.sources[{i}].{field}", "message": "holds a NUL character"}
                )
        if source.name in sources:
            problems.append({"path": f"$.sources[{i}].name", "message": "duplicate source name"})
        sources[source.name] = source
    seen: dict[tuple[str, str], int] = {}
    for i, resource in enumerate(doc.resources):
        owner = sources.get(resource.source)
        if owner is None:
            problems.append(
                {"path": f"$.resources[{i}].source", "message": "names no source in $.sources"}
            )
        elif owner.status == SourceStatus.FAILED:
            problems.append(
                {
                    "path": f"$.resources[{i}].source",
                    "message": f"source {resource.source!r} is failed and cannot have resources",
                }
            )
        for field in ("source", "resource_type", "key"):
            if "\x00" in getattr(resource, field):
                problems.append(
                    {"path": f"$.resources[{i}].{field}", "message": "holds a NUL character"}
                )
        try:
            check_key(resource.key, limits)
        except LimitExceeded as exc:
            problems.append({"path": f"$.resources[{i}].key", "message": str(exc)})
        try:
            check_document(resource.attributes, limits, f"$.resources[{i}].attributes")
        except LimitExceeded as exc:
            problems.append({"path": f"$.resources[{i}].attributes", "message": str(exc)})
        identity = (resource.resource_type, resource.key)
        if identity in seen:
            problems.append(
                {
                    "path": f"$.resources[{i}]",
                    "message": f"same resource_type and key as $.resources[{seen[identity]}]",
                }
            )
        seen.setdefault(identity, i)
    if problems:
        raise _refused(problems)
    return doc


def _refused(problems: list[dict[str, str]]) -> InvalidInput:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return InvalidInput(
        f"push refused, nothing stored: {first['path']}: {first['message']}{more}",
        detail=problems[:100],
    )
