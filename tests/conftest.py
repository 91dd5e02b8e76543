"""Shared fixtures: databases built by migrations (SQLite and PostgreSQL), configs, the CLI."""

from __future__ import annotations

import collections
import functools
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.db.migrate import upgrade
from app.db.session import make_engine, make_sessionmaker
from tests.support import TEST_SECRET_KEY, Project

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
    # When CI itself runs on GitHub Actions, `--format github` in a test must not append to
    # the real job's step summary.
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


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


@functools.cache
def _admin_engine() -> Engine:
    """One pooled AUTOCOMMIT engine on the server (an engine and a connection a statement cost
    50 ms: twice a test)."""
    return make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _admin_execute(statement: str) -> None:
    with _admin_engine().connect() as conn:
        conn.execute(text(statement))


class Clones:
    """Copies of the template, made a few ahead and each dropped after its test, by one
    background thread: a test waits for neither CREATE DATABASE nor DROP DATABASE (a copy
    takes ~0.1 s; the spares made during slower tests serve runs of quick ones)."""

    AHEAD = 3

    def __init__(self, template: str) -> None:
        self.template = template
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envparity-clones")
        self.spares: collections.deque[Future[str]] = collections.deque()

    def _create(self, prefix: str) -> str:
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def take(self, prefix: str) -> str:
        """A fresh clone (the oldest spare if there is one); the spares are topped up."""
        name = self.spares.popleft().result() if self.spares else self._create(prefix)
        while len(self.spares) < self.AHEAD:
            self.spares.append(self.worker.submit(self._create, prefix))
        return name

    def drop(self, name: str) -> None:
        self.worker.submit(_admin_execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        while self.spares:
            self.drop(self.spares.popleft().result())
        self.worker.shutdown(wait=True)


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
    _admin_engine().dispose()


@pytest.fixture(scope="session")
def postgres_clones(postgres_template: str) -> Iterator[Clones]:
    clones = Clones(postgres_template)
    yield clones
    clones.close()


def fresh_database(
    request: pytest.FixtureRequest, folder: Path, prefix: str, backend: str | None = None
) -> Iterator[str]:
    """A fresh, migrated database URL for `backend` (by default `request.param`): SQLite in
    `folder`, or a clone of the PostgreSQL template (dropped afterwards)."""
    if (backend or request.param) == "sqlite":
        url = f"sqlite:///{folder / 'envparity.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    clones: Clones = request.getfixturevalue("postgres_clones")
    name = clones.take(prefix)
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    clones.drop(name)


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
