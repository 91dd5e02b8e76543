"""The states envparity speaks of, each a closed set of strings defined once: severities and
their order, gate, scan, snapshot and source statuses, token scopes, drift changes, alert
event kinds and delivery states, and the few smaller sets the API names.

Every set is a StrEnum: a member is its string (equal to it, hashed like it, written as it
by json, f-strings, templates and database drivers), so typing a state changes no stored or
printed value; only `repr` differs, and no message uses it. Strings read back from the
database or a JSON document compare equal to the members; `Severity(text)` makes a member.
In a pydantic model a state validates and documents itself exactly as the `Literal` of its
values did (the same inline JSON schema, the same messages), and gives members.

Imports nothing of envparity (it sits below every other module) and nothing heavy: the
CLI loads it at start-up."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema


def choice_schema(values: Iterable[str]) -> CoreSchema:
    """The pydantic schema of a `Literal` of `values`, which gives back the value itself (a
    state's member where one is given): its JSON schema is the Literal's
    (`{"enum": [...], "type": "string"}`) and so are its messages ("Input should be 'info',
    'warning' or 'critical'")."""
    from pydantic_core import core_schema

    given = {value: value for value in values}
    return core_schema.no_info_after_validator_function(
        given.__getitem__, core_schema.literal_schema([str(value) for value in given])
    )


class State(StrEnum):
    """A closed set of strings (the base of every state here)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return choice_schema(cls)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The members' strings, in their order."""
        return tuple(member.value for member in cls)


class OneOf:
    """Annotated metadata for a field that takes a state or a little more, validated as the
    one `Literal` of those values in their order (its schema, its messages):
    `Annotated[Severity | Literal[""], OneOf("", *Severity.worst_first())]`."""

    def __init__(self, *values: str) -> None:
        self.choices = values

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return choice_schema(self.choices)


# ----------------------------------------------------------------------------- severity


class Severity(State):
    """How much a difference matters, best first: the one order that every ranking, sort and
    display of severities derives from."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for the mildest; higher is worse."""
        return _SEVERITY_RANK[self]

    @classmethod
    def rank_of(cls, severity: str) -> int:
        """The rank of a severity given as a member or as its string (a stored item's)."""
        return _SEVERITY_RANK[severity]

    @classmethod
    def best_first(cls) -> tuple[Severity, ...]:
        """Mildest first: the order of ranks."""
        return _BEST_FIRST

    @classmethod
    def worst_first(cls) -> tuple[Severity, ...]:
        """Worst first, as people read them: counts, legends, filters, sorted items."""
        return _WORST_FIRST

    @classmethod
    def worst(cls, severities: Iterable[str]) -> Severity | None:
        """The worst of these severities (members or strings); None if there are none."""
        found = max(severities, key=_SEVERITY_RANK.__getitem__, default=None)
        return None if found is None else cls(found)


_BEST_FIRST: tuple[Severity, ...] = tuple(Severity)
_WORST_FIRST: tuple[Severity, ...] = _BEST_FIRST[::-1]
# Keyed by the members, so that their strings find their rank too.
_SEVERITY_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(_BEST_FIRST)}


# ----------------------------------------------------------------------------- the diff


class Change(State):
    """What kind of difference a drift item is."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    LEAK = "leak"  # one environment's value (a var, a secret) found in the other
    SECRET_REUSED = "secret_reused"  # the same secret on both sides


class Allowance(State):
    """What a `tolerate:` rule lets pass without counting."""

    SAME_FAMILY = "same_family"  # m5.large vs m5.xlarge
    PATCH = "patch"
    MINOR = "minor"
    ANY = "any"


class SideName(State):
    """A side of a comparison (`Side` is the diff engine's view of one snapshot)."""

    LEFT = "left"
    RIGHT = "right"


class WaiverOrigin(State):
    """Where a waiver comes from: the config's `ignore:` rules or the waivers table."""

    CONFIG = "config"
    DATABASE = "database"


# ----------------------------------------------------------------------------- snapshots


class SourceStatus(State):
    """What one source of a snapshot did. collectors/ cannot import app: its SourceOutcome
    says the same two strings with its own `Literal` (a test holds the two equal)."""

    OK = "ok"
    FAILED = "failed"


class SnapshotStatus(State):
    """A stored snapshot: every source ok, some failed, or all failed."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"

    @classmethod
    def of_sources(cls, statuses: Iterable[str]) -> SnapshotStatus:
        """A snapshot's status from its sources' (no source counts as complete)."""
        found = set(statuses)
        if found <= {SourceStatus.OK}:
            return cls.COMPLETE
        return cls.FAILED if found == {SourceStatus.FAILED} else cls.PARTIAL


class ScanStatus(State):
    """A scan: running (the environment's lock), finished as its snapshot's status, failed
    without one, or abandoned by a process that stopped."""

    RUNNING = "running"
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"
    ABANDONED = "abandoned"


class SnapshotOrigin(State):
    SCAN = "scan"
    PUSH = "push"


class ScanTrigger(State):
    """Who started a scan."""

    CLI = "cli"
    API = "api"
    SCHEDULER = "scheduler"


# ----------------------------------------------------------------------------- the gate


class GateStatus(State):
    """The gate's answer: pass or fail when it could judge; stale, partial or missing data
    when it could not (it never passes on those)."""

    PASS = "pass"
    FAIL = "fail"
    STALE = "stale"
    PARTIAL = "partial"
    MISSING = "missing"


# ----------------------------------------------------------------------------- alerts


class EventKind(State):
    """What an alert event tells."""

    OPENED = "drift.opened"
    RESOLVED = "drift.resolved"
    REMINDER = "drift.reminder"


class DeliveryStatus(State):
    """An outbox event: still to send (or being retried), delivered, or failed for good
    (`envparity alerts retry` puts it back)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


# ----------------------------------------------------------------------------- tokens


class Scope(State):
    """What an API token may do, smallest first: a scope includes the ones before it."""

    READ = "read"
    GATE = "gate"
    WRITE = "write"
    ADMIN = "admin"

    def includes(self, needed: str) -> bool:
        """Whether this scope is `needed` or above it."""
        return _SCOPE_RANK[self] >= _SCOPE_RANK[needed]


_SCOPE_RANK: dict[str, int] = {scope: rank for rank, scope in enumerate(Scope)}
