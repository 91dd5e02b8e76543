"""The push format (SPEC): parsing that refuses a malformed document whole, naming the JSON path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from app.errors import InvalidInput
from collectors.base import Category


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PushSource(_Strict):
    name: str = Field(min_length=1, max_length=200)
    type: str = Field(default="push", min_length=1, max_length=100)
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None


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


def parse_push(data: Any) -> PushDocument:
    """A valid push document, or InvalidInput naming the path of every problem found."""
    try:
        doc = PushDocument.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"path": json_path(err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        raise _refused(problems) from None
    problems = []
    sources: dict[str, PushSource] = {}
    for i, source in enumerate(doc.sources):
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
        elif owner.status == "failed":
            problems.append(
                {
                    "path": f"$.resources[{i}].source",
                    "message": f"source {resource.source!r} is failed and cannot have resources",
                }
            )
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


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, as every JSON document of envparity writes times."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
