"""What the diff engine takes and gives: plain data, no database."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from app.clock import format_time
from app.states import (
    Allowance,
    Change,
    Severity,
    SideName,
    SnapshotStatus,
    SourceStatus,
    WaiverOrigin,
)

if TYPE_CHECKING:
    from app.diff.forms import Form


# Not frozen: a frozen dataclass is made several times slower, and a side holds up to a
# million of these. Nothing changes one after it is made.
@dataclass(slots=True)
class SideResource:
    source: str
    category: str
    resource_type: str
    key: str
    # The attributes, or None when only their canonical JSON text (`body`) was loaded:
    # the engine decodes it only for resources it cannot prove equal by hash.
    attributes: dict[str, Any] | None
    hash: str = ""  # content hash of the raw attributes, when the store knows it
    body: str = ""  # their canonical JSON text, when the store has it
    # Its normal form across environments (app.diff.forms), when the store has one; valid
    # only under the context its side names for this resource's source (Side.form_contexts).
    form: Form | None = None

    def document(self) -> dict[str, Any]:
        if self.attributes is not None:
            return self.attributes
        value: dict[str, Any] = json.loads(self.body)
        return value


_HASH = 32  # bytes of a SHA-256 digest


def _packed(digests: list[str]) -> bytes:
    """SHA-256 hex digests, 32 bytes each, one after the other."""
    packed = bytes.fromhex("".join(digests))
    if len(packed) != _HASH * len(digests):
        raise ValueError("a stored hash is not a SHA-256 hex digest")
    return packed


@functools.cache
def _form_type() -> type[Form]:
    from app.diff.forms import Form  # (not at the top: the stored-report path never needs it)

    return Form


class ResourceColumns(Sequence[SideResource]):
    """A stored side's resources as columns: one list per field, and the content hashes and
    normal forms' digests packed 32 bytes each, instead of one record (and four strings) per
    resource. A side of a million resources is then a few lists, about 280 bytes a resource
    rather than 550, none of them an object the cyclic collector tracks one by one. Read as
    a sequence it gives each resource as a SideResource, made when asked for; the engine
    reads the columns directly where every form is trusted (app.diff.engine)."""

    __slots__ = (
        "categories",
        "digests",
        "form_keys",
        "hashes",
        "keys",
        "plain",
        "source_names",
        "sources",
        "types",
    )

    def __init__(self, with_forms: bool) -> None:
        self.sources: list[str] = []
        self.categories: list[str] = []
        self.types: list[str] = []
        self.keys: list[str] = []
        self.hashes = bytearray()  # each resource's content hash
        # With forms: each resource's normalized key (the key itself where they are equal),
        # its form's digest, and whether the form is plain (1) or not (0).
        self.form_keys: list[str] | None = [] if with_forms else None
        self.digests = bytearray()
        self.plain = bytearray()
        self.source_names: set[str] = set()  # the sources of the resources it holds

    def extend(
        self,
        source: str,
        rows: Sequence[Sequence[str]],
        one: Callable[[str, str], str] = lambda name, _: name,
    ) -> None:
        """One source's resources as the store lists them (`[category, resource_type, key,
        content hash]` rows), without forms; `one` keeps one copy of each repeated name
        (`dict.setdefault` of a dict the caller keeps)."""
        self.source_names.add(source)
        self.sources.extend([source] * len(rows))
        self.categories.extend([one(r[0], r[0]) for r in rows])
        self.types.extend([one(r[1], r[1]) for r in rows])
        self.keys.extend([r[2] for r in rows])
        self.hashes += _packed([r[3] for r in rows])

    def extend_formed(
        self,
        source: str,
        rows: Sequence[Sequence[str]],
        forms: Sequence[Sequence[Any]],
        one: Callable[[str, str], str] = lambda name, _: name,
    ) -> None:
        """`extend` with each row's normal form (`(normalized key, digest, plain)`)."""
        if len(forms) != len(rows):
            raise ValueError(f"{len(forms)} forms for {len(rows)} resources")
        self.extend(source, rows, one)
        assert self.form_keys is not None
        self.form_keys.extend(
            [r[2] if f[0] == r[2] else f[0] for r, f in zip(rows, forms, strict=True)]
        )
        self.digests += _packed([f[1] for f in forms])
        self.plain += bytes([1 if f[2] else 0 for f in forms])

    def hash(self, i: int) -> str:
        return self.hashes[i * _HASH : (i + 1) * _HASH].hex()

    def form(self, i: int) -> Form | None:
        if self.form_keys is None:
            return None
        return _form_type()(
            self.form_keys[i], self.digests[i * _HASH : (i + 1) * _HASH].hex(), self.plain[i] == 1
        )

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, i: int) -> SideResource: ...

    @overload
    def __getitem__(self, i: slice) -> list[SideResource]: ...

    def __getitem__(self, i: int | slice) -> SideResource | list[SideResource]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return SideResource(
            self.sources[i],
            self.categories[i],
            self.types[i],
            self.keys[i],
            None,
            self.hash(i),
            form=self.form(i),
        )

    def __iter__(self) -> Iterator[SideResource]:
        return (self[i] for i in range(len(self)))


@dataclass(frozen=True, slots=True)
class SourceState:
    name: str
    type: str
    status: SourceStatus
    error: str | None = None


@dataclass(frozen=True)
class Side:
    """One snapshot as the engine sees it."""

    environment: str
    snapshot_id: int | None
    taken_at: datetime | None
    status: SnapshotStatus
    vars: dict[str, str]
    sources: dict[str, SourceState]
    # Resources loaded from the store are ResourceColumns; any sequence of SideResource will do.
    resources: Sequence[SideResource]
    # source type -> attribute paths that change on their own and never count
    volatile: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # source name -> digest of the context its resources' forms were made under
    form_contexts: dict[str, str] = field(default_factory=dict)
    # The bodies (canonical JSON by content hash) of resources loaded without one: the store
    # reads only the documents a comparison cannot prove equal by their forms or hashes.
    fetch: Callable[[Iterable[str]], dict[str, str]] | None = None
    # What the engine normalized of this side, by the normalizer's vars (shared by the
    # copies of a side that several comparisons use; see app.reports.service.SideCache).
    normalized: dict[str, dict[tuple[str, str], Any]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # Its resources by identity, by the normalizer and the sources whose forms were used
    # (shared as `normalized` is: one side in many comparisons is indexed once).
    indexes: dict[tuple[str, frozenset[str]], Any] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def failed_sources(self) -> set[str]:
        return {name for name, s in self.sources.items() if s.status != SourceStatus.OK}


@dataclass(frozen=True)
class Waiver:
    """A reviewed difference (from the config's `ignore:` or stored with `waiver add`)."""

    reason: str
    comparison: str | None = None
    category: str | None = None
    resource_type: str | None = None
    key: str | None = None
    path: str | None = None
    owner: str | None = None
    expires: datetime | None = None
    id: int | None = None  # None for the config's ignore rules
    origin: WaiverOrigin = WaiverOrigin.CONFIG

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "origin": self.origin,
            "reason": self.reason,
            "owner": self.owner,
            "expires": format_time(self.expires) if self.expires else None,
        }


@dataclass(frozen=True)
class Tolerance:
    path: str
    allow: Allowance
    comparison: str | None = None
    category: str | None = None
    resource_type: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class SeverityRule:
    severity: Severity
    comparison: str | None = None
    category: str | None = None
    resource_type: str | None = None
    key: str | None = None
    path: str | None = None
    change: Change | None = None


@dataclass(frozen=True)
class Rules:
    tolerances: tuple[Tolerance, ...] = ()
    severity: tuple[SeverityRule, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    # Vars of every declared environment, for leak detection.
    environments: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class DriftItem:
    category: str
    resource_type: str
    key: str
    path: str
    change: Change
    left: Any
    right: Any
    severity: Severity = Severity.WARNING
    waived: bool = False
    waiver: dict[str, Any] | None = None
    tolerated: bool = False
    tolerance: str | None = None
    fingerprint: str = ""
    detail: str | None = None
    first_seen: datetime | None = None
    parts: tuple[str, ...] = ()  # the path as attribute names and [labels]

    @property
    def counts(self) -> bool:
        """Drift a person must act on: neither waived nor tolerated."""
        return not (self.waived or self.tolerated)


@dataclass(frozen=True)
class Unknown:
    """A source that failed on one side: its resources could not be compared."""

    side: SideName
    environment: str
    source: str
    error: str | None
    resources: int  # how many resources on the other side went uncompared


@dataclass
class DiffResult:
    comparison: str
    items: list[DriftItem]
    unknown: list[Unknown]
    compared: int  # resources compared (identities on either side, less the unknown)
    differing: int  # of those, resources with counting drift
    # (category, resource_type, key) of every compared resource, in order; None until
    # `loader` reads them (a stored report's list, read only by what needs it: the gate and
    # the overview need only `categories`)
    listed: list[tuple[str, str, str]] | None = None
    loader: Callable[[], list[tuple[str, str, str]]] | None = field(
        default=None, repr=False, compare=False
    )
    known_categories: frozenset[str] | None = field(default=None, compare=False)

    @property
    def resources(self) -> list[tuple[str, str, str]]:
        if self.listed is None:
            self.listed = self.loader() if self.loader is not None else []
        return self.listed

    @property
    def categories(self) -> frozenset[str]:
        """The categories of the compared resources."""
        if self.listed is None and self.known_categories is not None:
            return self.known_categories
        return frozenset(category for category, _, _ in self.resources)

    @property
    def parity(self) -> float:
        return 1.0 if self.compared == 0 else round(1 - self.differing / self.compared, 4)
