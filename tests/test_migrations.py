"""Migrations are the only way the schema is made: they match the models and go both ways."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from app.db.base import Base
from app.db.migrate import current_revision, head_revision, upgrade
from app.db.models import EnvironmentRow, Scan


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_to_nothing_and_back(engine: Engine) -> None:
    upgrade_to = head_revision()
    from alembic import command

    from app.db.migrate import alembic_config

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == upgrade_to
    assert {"snapshots", "documents", "scans"} <= set(inspect(engine).get_table_names())


def test_documents_move_to_rowid_tables_on_sqlite_with_every_row(engine: Engine) -> None:
    """7e2b9d4f0a16: documents of a kilobyte or more spilled to overflow pages of their own in
    a WITHOUT ROWID table; rebuilt as rowid tables, every stored row stays, key and all."""
    from alembic import command

    from app.db.migrate import alembic_config

    cfg = alembic_config()
    body = '{"note":"' + "x" * 3000 + '"}'
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "3d8f2a6c1b47")
        conn.execute(
            text("INSERT INTO documents (hash, body) VALUES ('a', :b), ('b', '[]')"), {"b": body}
        )
        conn.execute(
            text("INSERT INTO normal_forms (context, chunk, body) VALUES ('c', 'a', '[]')")
        )
    upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT hash, body FROM documents ORDER BY hash")).all() == [
            ("a", body),
            ("b", "[]"),
        ]
        assert conn.execute(text("SELECT * FROM normal_forms")).all() == [("c", "a", "[]")]
        with pytest.raises(IntegrityError), conn.begin_nested():  # still the key
            conn.execute(text("INSERT INTO documents (hash, body) VALUES ('a', '{}')"))
        if engine.dialect.name == "sqlite":
            tables = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name IN ('documents', 'normal_forms')")
            ).scalars()
            assert not any("WITHOUT ROWID" in sql.upper() for sql in tables)


def test_one_running_scan_per_environment_and_any_number_finished(sessions: Any) -> None:
    """The index the model names without its condition: unique over the running rows only."""

    def scan(status: str) -> Scan:
        return Scan(environment_id=env.id, status=status, trigger="manual", owner="test")

    with sessions.begin() as session:
        env = EnvironmentRow(name="staging")
        session.add(env)
        session.flush()
        session.add_all([scan("finished"), scan("finished"), scan("failed"), scan("running")])
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(scan("running"))
