"""A push taken in resource by resource: each one is checked, redacted, encoded and given its
normal form as it is read, then only its row (identity and content hash) stays in memory and
its canonical document goes to a temporary file until the snapshot is written. A push of a
million resources thus never holds them all parsed, redacted or encoded at once.

Nothing is written to the database before the whole document has been read and found valid:
a push with any problem is refused whole (InvalidInput naming the JSON path of each), and
the snapshot is written in one short transaction at the end.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from app.clock import format_time, utcnow
from app.config import Config
from app.snapshots.canonical import bytes_hash, canonical_json
from app.snapshots.forms import EnvironmentForms
from app.snapshots.jsonstream import Event, Item
from app.snapshots.repository import SourceRecord
from app.snapshots.schemas import (
    CLOCK_SKEW,
    EPOCH,
    PushHeader,
    PushResource,
    PushSource,
    json_path,
    refused,
)
from app.snapshots.store import Row
from app.states import SourceStatus
from collectors.base import CATEGORIES
from collectors.limits import LimitExceeded, check_document, check_key
from collectors.secrets import Census, Redactor
from collectors.secrets.census import redact_resource

_SOURCES: TypeAdapter[list[PushSource]] = TypeAdapter(list[PushSource])
_FIELDS = frozenset(PushResource.model_fields)
_KEPT = 100  # problems listed in the refusal's detail (all are counted)
_IN_MEMORY = 1 << 20  # a source's documents stay in memory up to this many bytes


class Spool:
    """One source's pushed resources on their way to storage (an app.snapshots.store
    Staged): the rows in memory, their canonical documents (and their normal forms') in a
    temporary file."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self._file = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)  # noqa: SIM115

    def add(self, category: str, resource_type: str, key: str, digest: str, body: bytes) -> None:
        self.rows.append((category, resource_type, key, digest))
        # Canonical JSON holds no raw newline: one line per document, after its hash. A
        # document two resources share is written twice (and stored once): cheaper than a
        # set of every hash spooled.
        self._file.write(digest.encode() + body + b"\n")

    def add_documents(self, documents: dict[str, str]) -> None:
        """Documents no row names (normal forms' documents), given by `bodies` all the same."""
        for digest, body in documents.items():
            self._file.write(digest.encode() + body.encode() + b"\n")

    def bodies(self, hashes: set[str]) -> Iterator[tuple[str, str]]:
        self._file.seek(0)
        for line in self._file:
            digest = line[:64].decode()
            if digest in hashes:
                yield digest, line[64:-1].decode()
        self._file.seek(0, 2)

    def documents(self, hashes: set[str]) -> dict[str, Any]:
        return {digest: json.loads(body) for digest, body in self.bodies(hashes)}

    def close(self) -> None:
        self._file.close()


class PushIngest:
    """Takes a push document's events (app.snapshots.jsonstream, or `document_events` of a
    parsed one) and gives the sources to store, or refuses the push."""

    def __init__(
        self, config: Config, environment: str, redactor: Redactor, now: datetime | None = None
    ) -> None:
        self.limits = config.model.limits.limits()
        self.forms = EnvironmentForms(config, environment)
        self.redactor = redactor
        self.now = now or utcnow()
        self.header: dict[str, Any] = {}
        self.sources: dict[str, PushSource] | None = None
        self.sources_valid = True
        self.waiting: list[Item] = []  # resources read before the sources they name
        self.count = 0
        self.has_resources = False
        self.problems: list[dict[str, str]] = []
        self.problem_count = 0
        self.seen: dict[tuple[str, str], int] = {}
        self.spools: dict[str, Spool] = {}
        self.censuses: dict[str, Census] = {}

    # ------------------------------------------------------------------ reading
    def take(self, events: Iterable[Event]) -> list[SourceRecord]:
        """The sources to store, once every event has been taken; InvalidInput otherwise."""
        try:
            for kind, value in events:
                if kind == "item":
                    self._arrived(value)
                elif kind == "resources":
                    self.has_resources = True
                elif kind == "field":
                    self._field(*value)
                else:
                    self._not_an_object(value)
            return self._finish()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()

    def _problem(self, path: str, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < _KEPT:
            self.problems.append({"path": path, "message": message})

    def _invalid(self, exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> None:
        for err in exc.errors(include_url=False):
            self._problem(json_path(prefix + tuple(err["loc"])), err["msg"])

    def _not_an_object(self, value: Any) -> None:
        try:
            PushHeader.model_validate(value)
        except ValidationError as exc:
            self._invalid(exc)

    def _field(self, name: str, value: Any) -> None:
        if name == "resources":  # not an array: the header's validation says so
            self.has_resources = True
            self._invalid_resources(value)
            return
        self.header[name] = value
        if name == "sources":
            self._sources(value)

    def _invalid_resources(self, value: Any) -> None:
        try:
            TypeAdapter(list[PushResource]).validate_python(value)
        except ValidationError as exc:
            self._invalid(exc, ("resources",))

    def _sources(self, value: Any) -> None:
        try:
            sources = _SOURCES.validate_python(value)
        except ValidationError as exc:
            self._invalid(exc, ("sources",))
            self.sources_valid = False
            sources = []
        by_name: dict[str, PushSource] = {}
        for i, source in enumerate(sources):
            for field in ("name", "type", "error"):
                if "\x00" in (getattr(source, field) or ""):
                    self._problem(f"$.sources[{i}].{field}", "holds a NUL character")
            if source.name in by_name:
                self._problem(f"$.sources[{i}].name", "duplicate source name")
            by_name[source.name] = source
        self.sources = by_name
        for source in by_name.values():
            self.spools[source.name] = Spool()
            self.censuses[source.name] = Census(self.redactor.rules_id)
        waiting, self.waiting = self.waiting, []
        for index, item in enumerate(waiting):
            self._resource(index, item)

    def _arrived(self, item: Item) -> None:
        index = self.count
        self.count += 1
        if self.count > self.limits.max_resources:
            raise refused(
                [
                    {
                        "path": "$.resources",
                        "message": f"more than {self.limits.max_resources:,} resources "
                        f"(limits.max_resources is {self.limits.max_resources:,})",
                    }
                ]
            )
        if self.sources is None:
            # The sources come later in this document: the resources before them are held
            # until they do (a push with its sources first is read in bounded memory).
            self.waiting.append(item)
        else:
            self._resource(index, item)

    # ------------------------------------------------------------------ one resource
    def _resource(self, i: int, item: Item) -> None:
        resource = _resource_of(item.value)
        if resource is None:
            try:
                model = PushResource.model_validate(item.value)
            except ValidationError as exc:
                self._invalid(exc, ("resources", i))
                return
            resource = _Pushed(**model.__dict__)
        if not self.sources_valid or self.sources is None:
            return
        self._check(i, resource, self.sources, item)
        if not self.problem_count:  # else refused anyway: not worth redacting or encoding
            self._stage(i, resource, self.sources[resource.source].type)

    def _check(self, i: int, r: _Pushed, sources: dict[str, PushSource], item: Item) -> None:
        owner = sources.get(r.source)
        if owner is None:
            self._problem(f"$.resources[{i}].source", "names no source in $.sources")
        elif owner.status == SourceStatus.FAILED:
            self._problem(
                f"$.resources[{i}].source",
                f"source {r.source!r} is failed and cannot have resources",
            )
        for field in ("source", "resource_type", "key"):
            if "\x00" in getattr(r, field):
                self._problem(f"$.resources[{i}].{field}", "holds a NUL character")
        try:
            check_key(r.key, self.limits)
        except LimitExceeded as exc:
            self._problem(f"$.resources[{i}].key", str(exc))
        limits = self.limits
        if not (  # else its text is too short, and too flat, to break a limit
            item.chars is not None
            and item.containers is not None
            and item.chars <= min(limits.max_key_length, limits.max_string_length)
            and item.containers <= limits.max_depth
        ):
            try:
                check_document(r.attributes, limits, f"$.resources[{i}].attributes")
            except LimitExceeded as exc:
                self._problem(f"$.resources[{i}].attributes", str(exc))
        identity = (r.resource_type, r.key)
        first = self.seen.setdefault(identity, i)
        if first != i:
            self._problem(
                f"$.resources[{i}]", f"same resource_type and key as $.resources[{first}]"
            )

    def _stage(self, i: int, r: _Pushed, source_type: str) -> None:
        key, attributes = redact_resource(
            self.redactor, self.censuses[r.source], r.resource_type, r.key, r.attributes
        )
        body = canonical_json(attributes)
        try:
            encoded = body.encode("utf-8")
        except UnicodeEncodeError:
            # JSON may escape half of a UTF-16 pair ("\ud800"): a str, but no text.
            path = surrogate_at(r.attributes, f"$.resources[{i}].attributes") or f"$.resources[{i}]"
            self._problem(path, SURROGATE)
            return
        digest = bytes_hash(encoded)
        maker = self.forms.maker(source_type)
        maker.form(key, digest, attributes)
        spool = self.spools[r.source]
        spool.add(r.category, r.resource_type, key, digest, encoded)
        if maker.made:  # its normalized document, written with the raw ones
            spool.add_documents(maker.take_made())

    # ------------------------------------------------------------------ the end
    def _finish(self) -> list[SourceRecord]:
        if self.sources is None and self.waiting:
            # No sources at all: the resources are checked for their shape only.
            self.sources_valid = False
            for index, item in enumerate(self.waiting):
                self._resource(index, item)
        header = {**self.header, "resources": []} if self.has_resources else self.header
        try:
            doc = PushHeader.model_validate(header)
        except ValidationError as exc:
            self._invalid(exc)
        else:
            self._check_time(doc.taken_at)
        if self.problems:
            raise refused(self.problems, self.problem_count)
        self.taken_at = doc.taken_at
        assert self.sources is not None  # validated: at least one source
        return [
            SourceRecord(
                name=s.name,
                type=s.type,
                status=s.status,
                error=self.redactor.scrub(s.error) if s.error else None,
                duration_ms=None,
                resources=[],
                census=self.censuses[s.name].as_json() if s.status == SourceStatus.OK else None,
                staged=self.spools[s.name],
            )
            for s in self.sources.values()
        ]

    def _check_time(self, taken_at: datetime) -> None:
        if taken_at > self.now + CLOCK_SKEW:
            self._problem(
                "$.taken_at",
                f"{format_time(taken_at)} is ahead of this server's clock "
                f"({format_time(self.now)}) by more than "
                f"{int(CLOCK_SKEW.total_seconds() // 60)} minutes",
            )
        elif taken_at < EPOCH:
            self._problem("$.taken_at", "before 1970")


def document_events(data: Any) -> Iterator[Event]:
    """A parsed push document as the events its text would give."""
    if not isinstance(data, dict):
        yield "document", data
        return
    for name, value in data.items():
        if name == "resources" and isinstance(value, list):
            yield "resources", None
            for item in value:
                yield "item", Item(item)
        else:
            yield "field", (name, value)


def _text(value: Any) -> bool:
    return type(value) is str and bool(value) and (value.isascii() or _encodes(value))


class _Pushed(NamedTuple):
    """A resource of the push, valid in shape."""

    source: str
    category: str
    resource_type: str
    key: str
    attributes: dict[str, Any]


def _resource_of(item: Any) -> _Pushed | None:
    """A well-formed resource without pydantic's validation (most of them, and the time of a
    large push); None for anything else, which pydantic then validates and explains."""
    if type(item) is not dict or item.keys() != _FIELDS:
        return None
    source, category, resource_type, key = (
        item["source"],
        item["category"],
        item["resource_type"],
        item["key"],
    )
    if not (
        _text(source)
        and _text(key)
        and _text(resource_type)
        and len(resource_type) <= 200
        and category in CATEGORIES
        and type(item["attributes"]) is dict
    ):
        return None
    # Names repeated by every resource are kept once, not once per row.
    return _Pushed(
        sys.intern(source), sys.intern(category), sys.intern(resource_type), key, item["attributes"]
    )


SURROGATE = "holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape): not text"


def surrogate_at(value: Any, path: str) -> str | None:
    """The JSON path of the first string (or key) in `value` that is not valid Unicode text."""
    if isinstance(value, str):
        return None if value.isascii() or _encodes(value) else path
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = surrogate_at(item, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _encodes(key):
                return f"{path}.{key.encode('utf-8', 'backslashreplace').decode()}"
            found = surrogate_at(item, f"{path}.{key}")
            if found:
                return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
