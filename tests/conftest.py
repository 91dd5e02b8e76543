"""Shared fixtures: databases built by migrations (SQLite and PostgreSQL), configs, the CLI."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.db.migrate import upgrade
from app.db.session import make_engine, make_sessionmaker
from tests.support import Project

TEST_SECRET_KEY = "9f" * 32
POSTGRES_ADMIN_URL = os.environ.get(
    "ENVPARITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("ENVPARITY_REQUIRE_POSTGRES") == "1"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own config, database or secret key."""
    for name in list(os.environ):
        if name.startswith("ENVPARITY_") and name not in (
            "ENVPARITY_TEST_POSTGRES_URL",
            "ENVPARITY_REQUIRE_POSTGRES",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ENVPARITY_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")  # tables are not wrapped mid-word in assertions


# --------------------------------------------------------------------------- PostgreSQL

_pg_state: dict[str, str | None] = {}


def _postgres_unreachable_reason() -> str | None:
    if "reason" not in _pg_state:
        try:
            engine = make_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except Exception as exc:
            _pg_state["reason"] = f"PostgreSQL at {POSTGRES_ADMIN_URL} unreachable: {exc}"
    return _pg_state["reason"]


def _admin_execute(statement: str) -> None:
    engine = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database that each test's database is cloned from."""
    reason = _postgres_unreachable_reason()
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(reason + " (ENVPARITY_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    name = f"envparity_tpl_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_ADMIN_URL).set(database=name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield name
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database(request: pytest.FixtureRequest, folder: Path, prefix: str) -> Iterator[str]:
    """A fresh, migrated database URL for `request.param`: SQLite in `folder`, or a clone of
    the PostgreSQL template (dropped afterwards)."""
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'envparity.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    template = request.getfixturevalue("postgres_template")
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database URL: SQLite in tmp_path, or a PostgreSQL clone."""
    yield from fresh_database(request, tmp_path, "envparity_t_")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


# --------------------------------------------------------------------------- configs and CLI


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    proj = Project(root, database_url)
    for name, value in proj.env().items():
        monkeypatch.setenv(name, value)
    return proj


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()
