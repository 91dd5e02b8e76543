"""The content-addressed store on SQLite and PostgreSQL: documents are written once."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.snapshots.repository import SnapshotRepository, SourceRecord
from app.snapshots.store import DocumentStore

Row = tuple[str, str, str, dict[str, Any]]


def packages(n: int, version: str = "1.0.0") -> list[Row]:
    return [("packages", "package.pip", f"pkg-{i:05d}", {"version": version}) for i in range(n)]


def count_documents(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        return SnapshotRepository(session).count_documents()


def test_manifest_round_trips_every_resource(sessions: sessionmaker[Session]) -> None:
    rows = [
        ("config", "file", "deploy/app.yaml", {"db": {"pool": 10}, "list": [3, 1, 2]}),
        ("packages", "package.pip", "requests", {"version": "2.32.3"}),
        *packages(2000),
    ]
    with sessions.begin() as session:
        manifest, count = DocumentStore(session).write_manifest(rows)
    assert count == len(rows)
    with sessions.begin() as session:
        stored = DocumentStore(session).read_manifests([manifest])[manifest]
    assert sorted((r.category, r.resource_type, r.key, r.attributes) for r in stored) == sorted(
        rows, key=lambda r: (r[0], r[1], r[2])
    )


def test_same_resources_again_write_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first, _ = DocumentStore(session).write_manifest(packages(3000))
    before = count_documents(sessions)
    with sessions.begin() as session:
        again, _ = DocumentStore(session).write_manifest(list(reversed(packages(3000))))
    assert again == first  # order of collection never matters
    assert count_documents(sessions) == before


def test_one_changed_resource_rewrites_little(sessions: sessionmaker[Session]) -> None:
    rows = packages(3000)
    with sessions.begin() as session:
        DocumentStore(session).write_manifest(rows)
    before = count_documents(sessions)
    rows[1234] = ("packages", "package.pip", "pkg-01234", {"version": "9.9.9"})
    with sessions.begin() as session:
        DocumentStore(session).write_manifest(rows)
    # one attributes document, one chunk, one manifest
    assert count_documents(sessions) - before == 3


def test_snapshot_records_each_source_outcome(sessions: sessionmaker[Session]) -> None:
    from app.clock import utcnow

    with sessions.begin() as session:
        repo = SnapshotRepository(session)
        env = repo.ensure_environment("staging")
        snapshot = repo.add_snapshot(
            env,
            utcnow(),
            "scan",
            [
                SourceRecord("app", "file", "ok", None, 12, packages(3)),
                SourceRecord("pkgs", "command", "failed", "command exited with status 1", 40, []),
            ],
        )
        snapshot_id = snapshot.id
    with sessions.begin() as session:
        repo = SnapshotRepository(session)
        snapshot = repo.snapshot(snapshot_id)
        assert snapshot.status == "partial"
        assert snapshot.resource_count == 3
        assert [(s.name, s.status, s.error, s.resource_count) for s in snapshot.sources] == [
            ("app", "ok", None, 3),
            ("pkgs", "failed", "command exited with status 1", 0),
        ]
        assert snapshot.taken_at.tzinfo is not None
        assert list(repo.resources(snapshot)) == ["app"]
        assert repo.latest("staging") is not None
        assert repo.latest("staging").id == snapshot_id  # type: ignore[union-attr]
        assert repo.latest("production") is None
