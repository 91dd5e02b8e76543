"""A database per test module (each module scans once and its tests read the results),
on SQLite and, where one is reachable, on PostgreSQL (as tests/conftest.py's fixtures)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import fresh_database


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, migrated database for one module: SQLite in a folder of its own (so that its
    files are the only ones there), or a clone of the PostgreSQL template."""
    yield from fresh_database(request, tmp_path_factory.mktemp("db"), "envparity_s_")


@pytest.fixture(scope="module")
def sqlite_module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """As module_database_url, on SQLite only."""
    yield from fresh_database(request, tmp_path_factory.mktemp("db"), "envparity_s_", "sqlite")


@pytest.fixture(scope="module")
def postgres_module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """As module_database_url, on PostgreSQL only (skipped where none is reachable; its
    tests carry the `postgres` marker)."""
    yield from fresh_database(request, tmp_path_factory.mktemp("db"), "envparity_s_", "postgresql")
