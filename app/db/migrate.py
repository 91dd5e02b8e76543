"""Alembic from code: migrations are the only way the schema is made, in tests too.

Checking that a database is at head happens on every command, so it reads the revision
files and the `alembic_version` table directly; Alembic itself is imported only to migrate.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from app.errors import SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_REVISION = re.compile(r"^revision(?:: str)? = [\"']([0-9a-f]+)[\"']", re.MULTILINE)
_DOWN = re.compile(r"^down_revision(?:: [^=]+)? = (?:[\"']([0-9a-f]+)[\"']|None)", re.MULTILINE)


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def revisions() -> frozenset[str]:
    """Every revision this release knows."""
    return frozenset(_graph()[0])


@cache
def head_revision() -> str | None:
    """The revision no other revision builds on (the scripts form a single line)."""
    known, parents = _graph()
    heads = known - parents
    if len(heads) > 1:
        raise RuntimeError(f"several migration heads: {sorted(heads)}")
    return next(iter(heads), None)


def _graph() -> tuple[set[str], set[str]]:
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            raise RuntimeError(f"{script.name}: no revision line")
        revisions.add(revision[1])
        if down[1]:
            parents.add(down[1])
    return revisions, parents


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """One migrator at a time, in one transaction: on SQLite an exclusive transaction (the
    others wait their busy timeout for it), on PostgreSQL an advisory lock (migrations/env.py).
    Whoever comes second finds the schema migrated and has nothing to do; a migration cut
    short leaves the schema as it was."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def ensure_schema(engine: Engine) -> None:
    """Brings a new or SQLite database to head; a shared database behind head is an error."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None or engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    raise SchemaOutOfDate(
        f"the database schema is at revision {current}, this envparity needs {head}: "
        "run `envparity db upgrade`"
    )
