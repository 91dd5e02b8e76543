"""ORM models. Resource content is content-addressed: see app/snapshots/store.py. A state
column is a String holding the strings of the app.states set its comment names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.db.base import Base, UTCDateTime
from app.states import DeliveryStatus


class EnvironmentRow(Base):
    """An environment as the database knows it; its definition lives in the config file."""

    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Scan(Base):
    """One run of an environment's collectors; while `running` it is the environment's lock."""

    __tablename__ = "scans"
    __table_args__ = (
        # At most one running scan per environment, enforced by the database itself: a
        # unique index over the rows `WHERE status = 'running'` (partial on both databases;
        # the migrations make it). The condition is not repeated here: naming it per
        # dialect (`postgresql_where=`) makes SQLAlchemy import its PostgreSQL dialect,
        # every driver module of it, in every command (about 70 ms), and the schema is the
        # migrations' (tests/test_migrations.py checks both the index and its condition).
        Index("uq_scans_running_environment", "environment_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20))  # a ScanStatus
    trigger: Mapped[str] = mapped_column(String(20))  # a ScanTrigger
    owner: Mapped[str] = mapped_column(String(200))  # host:pid of the process running it
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)

    environment: Mapped[EnvironmentRow] = relationship()


class Snapshot(Base):
    """Everything one scan or push collected for one environment."""

    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_environment_taken", "environment_id", "taken_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(20))  # a SnapshotStatus
    origin: Mapped[str] = mapped_column(String(20))  # a SnapshotOrigin
    resource_count: Mapped[int] = mapped_column(Integer, default=0)

    environment: Mapped[EnvironmentRow] = relationship()
    sources: Mapped[list[SnapshotSource]] = relationship(
        back_populates="snapshot", order_by="SnapshotSource.position", cascade="all, delete-orphan"
    )


class SnapshotSource(Base):
    """One source's outcome in a snapshot, and the manifest of what it collected."""

    __tablename__ = "snapshot_sources"
    __table_args__ = (UniqueConstraint("snapshot_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10))  # a SourceStatus
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    resource_count: Mapped[int] = mapped_column(Integer, default=0)
    # The content hash of the manifest document listing this source's resources.
    manifest: Mapped[str | None] = mapped_column(String(64))
    # The census of secrets the redactor hashed (JSON: rules_version, counts per rule, paths
    # and the rule for each): what `envparity secrets audit` reads. Never a value. Loaded
    # only when read: it grows with the secrets a source holds (hundreds of KB for thousands),
    # and the gate and the overview load every latest snapshot's sources without it.
    secrets: Mapped[str | None] = mapped_column(Text, deferred=True)

    snapshot: Mapped[Snapshot] = relationship(back_populates="sources")


class Baseline(Base):
    """The approved snapshot of an environment, for `ENV@baseline`."""

    __tablename__ = "baselines"

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    set_by: Mapped[str | None] = mapped_column(String(200))


class Document(Base):
    """A canonical JSON document stored once under the SHA-256 of its bytes."""

    __tablename__ = "documents"
    # An ordinary rowid table on SQLite: a document of a kilobyte or more does not fit the
    # share of a page a WITHOUT ROWID table's key b-tree gives a row (see the migration
    # 7e2b9d4f0a16).

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


class NormalForms(Base):
    """The normal forms (app.diff.forms) of one stored chunk's resources under one context:
    a JSON list of `[normalized key, normal hash, plain]`, row for row with the chunk.
    Worked out when the chunk is stored, or by the first comparison that needs them; a
    context no environment uses any more is garbage, like an unreferenced document."""

    __tablename__ = "normal_forms"

    context: Mapped[str] = mapped_column(String(64), primary_key=True)
    chunk: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


class WaiverRow(Base):
    """A reviewed, expected difference stored with `envparity waiver add` (or the API)."""

    __tablename__ = "waivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comparison: Mapped[str | None] = mapped_column(String(210))
    category: Mapped[str | None] = mapped_column(String(20))
    resource_type: Mapped[str | None] = mapped_column(String(200))
    key: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DriftSeen(Base):
    """When each difference (by fingerprint) was first and last observed in a comparison."""

    __tablename__ = "drift_seen"

    comparison: Mapped[str] = mapped_column(String(210), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class Token(Base):
    """An API token: only its SHA-256 is kept; the token itself is shown once."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(10))  # a Scope
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))  # envp_ and a few characters, to recognise it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ComparisonState(Base):
    """Per declared comparison: what its last evaluation was judged from. Its row is also
    the comparison's evaluation lock (updated first thing in an evaluation's transaction)."""

    __tablename__ = "comparison_state"

    comparison: Mapped[str] = mapped_column(String(210), primary_key=True)
    left_snapshot_id: Mapped[int | None] = mapped_column(Integer)
    right_snapshot_id: Mapped[int | None] = mapped_column(Integer)
    # The stored waivers' state (count, highest id, newest) at the last evaluation.
    waiver_state: Mapped[str | None] = mapped_column(String(100))
    # The first waiver expiry after the last evaluation: due again from then on.
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The digest of the config that shapes a report (vars, rules, waivers in the file).
    rules: Mapped[str | None] = mapped_column(String(64))
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evaluation_id: Mapped[int | None] = mapped_column(Integer)
    # JSON [left snapshot id, right snapshot id, rules digest, error type] of an evaluation
    # that failed unexpectedly: not tried again until one of the three changes.
    failed: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)


class Evaluation(Base):
    """A comparison re-evaluated after a scan or push: its stored report and counts."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_comparison", "comparison", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comparison: Mapped[str] = mapped_column(String(210))
    left_snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"))
    right_snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The report's JSON (as `diff --format json` gives it), a content-addressed document.
    report: Mapped[str] = mapped_column(String(64))
    # The compared resources (category, resource type, key), a document too (for JUnit).
    resources: Mapped[str] = mapped_column(String(64))
    # The categories of those resources, a JSON list: the gate and the overview need only
    # these (None for an evaluation stored before the column: the list is read instead).
    categories: Mapped[str | None] = mapped_column(Text, nullable=True)
    unwaived: Mapped[int] = mapped_column(Integer, default=0)
    critical: Mapped[int] = mapped_column(Integer, default=0)
    warning: Mapped[int] = mapped_column(Integer, default=0)
    info: Mapped[int] = mapped_column(Integer, default=0)
    parity: Mapped[float] = mapped_column(Float, default=1.0)
    unknown_sources: Mapped[int] = mapped_column(Integer, default=0)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)


class OpenDrift(Base):
    """Counting drift of a comparison as of its last evaluation: what has been announced as
    opened and not yet as resolved."""

    __tablename__ = "open_drift"

    comparison: Mapped[str] = mapped_column(String(210), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    severity: Mapped[str] = mapped_column(String(10))  # a Severity
    category: Mapped[str] = mapped_column(String(20))
    resource_type: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    change: Mapped[str] = mapped_column(String(20))  # a Change
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertEvent(Base):
    """The outbox: one message for one target, written in the evaluation's transaction and
    sent by the deliverer (pending -> delivered | failed)."""

    __tablename__ = "alert_events"
    __table_args__ = (
        Index("ix_alert_events_due", "status", "next_attempt_at"),
        # Deleting an evaluation (a pruned or removed snapshot's) clears the events naming
        # it: without this, PostgreSQL scans the whole outbox once per deleted evaluation.
        Index("ix_alert_events_evaluation", "evaluation_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comparison: Mapped[str] = mapped_column(String(210))
    kind: Mapped[str] = mapped_column(String(20))  # an EventKind
    target: Mapped[str] = mapped_column(String(120))  # slack | webhook:NAME
    evaluation_id: Mapped[int | None] = mapped_column(
        ForeignKey("evaluations.id", ondelete="SET NULL")
    )
    payload: Mapped[str] = mapped_column(Text)  # the event as JSON; secrets already masked
    items: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A deliverer's claim: nobody else sends it until then.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Slack bot mode: the configured channel and the posted message's ts, as `channel:ts`
    # (later messages in that channel thread under the first).
    remote_ref: Mapped[str | None] = mapped_column(String(100))
