"""PostgreSQL that goes quiet, through a real TCP proxy on a free loopback port: a database
that accepts connections and forwards nothing fails a connection within the connect timeout,
one that stops answering after connecting fails the query (and the pre-ping) within their
limits, the API answers 503 within seconds; the server enforces the statement timeout; a
migration is not cut short by it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.db.session import make_engine
from tests.blackhole import Proxy
from tests.support import Project

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def quick() -> Any:
    """Limits short enough for a test (the API test keeps the defaults)."""
    from app.config import DatabaseConfig

    return DatabaseConfig(statement_timeout="1s", ping_timeout="2s", connect_timeout="2s")


@pytest.fixture
def proxy(database_url: str) -> Iterator[Proxy]:
    url = make_url(database_url)
    server = Proxy(url.host or "127.0.0.1", url.port or 5432)
    yield server
    server.close()


def through(database_url: str, proxy: Proxy) -> str:
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


def timed(
    work: Callable[[], Any], limit: float, proxy: Proxy
) -> tuple[BaseException | None, float]:
    """Runs `work` in a thread: what it raised, and how long it took; fails the test if it
    is still waiting after `limit` seconds (closing the proxy, which ends the wait)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    if not outcome:
        proxy.close()
        thread.join(10)
        pytest.fail(f"still waiting on the database after {limit:.0f} s")
    return outcome[0], time.monotonic() - started


def select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@pytest.mark.slow
def test_a_database_that_accepts_and_forwards_nothing_fails_within_the_connect_timeout(
    database_url: str, proxy: Proxy
) -> None:
    proxy.blackhole()
    engine = make_engine(through(database_url, proxy))  # the defaults: connect_timeout 5s
    try:
        error, took = timed(lambda: select_one(engine), limit=20, proxy=proxy)
    finally:
        engine.dispose()
    assert isinstance(error, OperationalError)
    assert "timeout" in str(error)
    assert took < 10


@pytest.mark.slow
def test_a_database_that_goes_quiet_after_connecting_fails_queries_within_their_limits(
    database_url: str, proxy: Proxy
) -> None:
    engine = make_engine(through(database_url, proxy), quick())
    try:
        conn = engine.connect()
        assert conn.execute(text("SELECT 1")).scalar() == 1
        proxy.blackhole()
        # The query in flight: the server never sees it, so its statement_timeout cannot
        # fire; the client gives up 5 s after it.
        error, took = timed(lambda: conn.execute(text("SELECT 1")), limit=20, proxy=proxy)
        assert isinstance(error, OperationalError)
        assert "did not answer within 6 s" in str(error)
        assert took < 6 + 1.5
        conn.close()
        assert conn.invalidated or conn.closed
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_pooled_connection_is_pinged_within_its_limit_before_use(
    database_url: str, proxy: Proxy
) -> None:
    engine = make_engine(through(database_url, proxy), quick())
    try:
        select_one(engine)  # one connection, back in the pool
        proxy.blackhole()
        # The pre-ping (2 s) fails, the pool is replaced, the new connection (2 s) fails.
        error, took = timed(lambda: select_one(engine), limit=20, proxy=proxy)
        assert isinstance(error, OperationalError)
        assert took < 2 + 2 + 2
        from app.db.session import ping

        error, took = timed(lambda: ping(engine, 1.0), limit=10, proxy=proxy)
        assert isinstance(error, OperationalError)
        assert "did not answer within 1 s" in str(error)
        assert took < 1.5
    finally:
        engine.dispose()


@pytest.mark.slow
def test_the_api_answers_503_within_seconds_when_the_database_goes_quiet(
    database_url: str, proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, through(database_url, proxy))
    project.write_config("environments:\n  staging: {}\nserver: {auth: false}\n")
    for name, value in project.env().items():
        monkeypatch.setenv(name, value)
    from app.main import create_app

    with TestClient(create_app(project.config)) as client:  # the default limits
        assert client.get("/api/v1/environments").status_code == 200
        assert client.get("/api/v1/readyz").status_code == 200
        proxy.blackhole()
        answers: list[int] = []
        for path in ("/api/v1/environments", "/api/v1/readyz"):
            error, took = timed(lambda p=path: answers.append(client.get(p).status_code), 30, proxy)
            assert error is None
            assert took < 10, path
        assert answers == [503, 503]


@pytest.mark.slow
def test_the_server_cancels_a_statement_past_statement_timeout(database_url: str) -> None:
    from app.config import DatabaseConfig

    engine = make_engine(database_url, DatabaseConfig(statement_timeout="1s"))
    try:
        started = time.monotonic()
        with (
            pytest.raises(OperationalError, match="statement timeout"),
            engine.connect() as conn,
        ):
            conn.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 3
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_migration_runs_as_long_as_it_needs(database_url: str) -> None:
    from app.config import DatabaseConfig
    from app.db.session import without_time_limits

    engine = make_engine(database_url, DatabaseConfig(statement_timeout="1s"))
    try:
        with engine.begin() as conn, without_time_limits(conn):
            conn.execute(text("SELECT pg_sleep(1.5)"))  # past statement_timeout, and fine
        with engine.connect() as conn:  # and the limit is back afterwards
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "1s"
    finally:
        engine.dispose()
