"""What the diff engine takes and gives: plain data, no database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
    resources: list[SideResource]
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
