"""Engines and the session factory, every wait on the database bounded (database.* settings).

SQLite gets WAL, foreign keys and a busy timeout: a writer that finds the database locked
waits its turn instead of failing. PostgreSQL gets a connect timeout, TCP keepalives and a
TCP user timeout (a dead peer or a lost route drops the connection), a server-side statement
timeout, a pre-ping with its own limit before a pooled connection is used, and a client-side
limit on a server that stops answering: a database host that accepts connections and then
says nothing (a silent partition, a hung server) makes a query fail in seconds, not hang."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url

from app.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from app.config import DatabaseConfig

# The client gives up on a server that has not answered this long after statement_timeout
# (which the server itself enforces, answering with an error).
ANSWER_GRACE = 5.0


def resolve_database_url(url: str, base_dir: Path | None = None) -> URL:
    """Relative SQLite paths start at the config file's folder; `postgresql://` means psycopg 3.
    Text that is not a URL is a ConfigError that does not repeat it (it may hold a password)."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise ConfigError(
            "database URL: not a URL like sqlite:///envparity.db or "
            "postgresql+psycopg://user@host/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database or "").expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        parsed = parsed.set(database=str(path))
    return parsed


def make_engine(url: str | URL, limits: DatabaseConfig | None = None, **kwargs: Any) -> Engine:
    """An engine with the database.* limits (their defaults without `limits`); `connect_args`
    in `kwargs`, and parameters in a PostgreSQL URL's query, win over the limits."""
    if limits is None:
        from app.config import DatabaseConfig

        limits = DatabaseConfig()
    url = make_url(url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        return _postgres_engine(url, limits, kwargs)
    if backend == "sqlite":
        busy = limits.busy_timeout.total_seconds()
        # The driver's own timeout covers the first statements, before the pragmas run.
        kwargs["connect_args"] = {"timeout": busy, **kwargs.get("connect_args", {})}
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", partial(_sqlite_pragmas, int(busy * 1000)))
        return engine
    raise ConfigError(
        f"database URL: {backend!r} is not a database envparity stores in; use SQLite "
        "(sqlite:///envparity.db) or PostgreSQL (postgresql+psycopg://user@host/dbname)"
    )


def _sqlite_pragmas(busy_ms: int, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # First: switching a new database to WAL takes a lock, and may have to wait for it.
    cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# --------------------------------------------------------------------------- PostgreSQL


def _postgres_engine(url: URL, limits: DatabaseConfig, kwargs: dict[str, Any]) -> Engine:
    statement = limits.statement_timeout.total_seconds()
    given = set(url.query)  # the URL's own libpq parameters are the user's choice
    args: dict[str, Any] = {
        # libpq counts whole seconds (and at least 2).
        "connect_timeout": max(2, round(limits.connect_timeout.total_seconds())),
        "keepalives": 1,
        "keepalives_idle": max(1, round(limits.keepalives_idle.total_seconds())),
        "keepalives_interval": max(1, round(limits.keepalives_interval.total_seconds())),
        "keepalives_count": limits.keepalives_count,
    }
    if _libpq_version(url) >= 120000:  # older libpq refuses a parameter it does not know
        args["tcp_user_timeout"] = round(limits.tcp_user_timeout.total_seconds() * 1000)
    args = {k: v for k, v in args.items() if k not in given}
    kwargs["connect_args"] = {**args, **kwargs.get("connect_args", {})}
    bounded = _bounded_connection_class() if url.get_driver_name() == "psycopg" else None
    if bounded is None:  # another driver: SQLAlchemy's own pre-ping, without a limit
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    # A SET rather than the `options` startup parameter, which PgBouncer refuses.
    event.listen(engine, "connect", partial(_statement_timeout, round(statement * 1000)))
    if bounded is not None:
        answer = statement + ANSWER_GRACE if statement else None
        event.listen(engine, "do_connect", partial(_connect_bounded, bounded, answer))
        event.listen(engine, "connect", _mark_fresh)
        event.listen(engine, "checkout", partial(_pre_ping, limits.ping_timeout.total_seconds()))
    return engine


def _statement_timeout(milliseconds: int, dbapi_connection: Any, _record: Any) -> None:
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # a setting of the session, in no transaction
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SET statement_timeout = {milliseconds:d}")
    finally:
        cursor.close()
        dbapi_connection.autocommit = autocommit


def _libpq_version(url: URL) -> int:
    """The libpq psycopg runs on (120000 for 12.0); 0 when unknown."""
    if url.get_driver_name() != "psycopg":
        return 0
    try:
        import psycopg
    except ImportError:
        return 0
    return psycopg.pq.version()


@cache
def _bounded_connection_class() -> type[Any] | None:
    """A psycopg connection whose every wait on the server (a query, a commit, a ping) ends
    after `answer_within` seconds, closing the connection; None where this psycopg has no
    timeout on its waits (before 3.3)."""
    try:
        import psycopg
        from psycopg import errors
    except ImportError:
        return None
    wait_timeout = getattr(errors, "_WaitTimeout", None)
    parameters = inspect.signature(psycopg.Connection.wait).parameters
    if not isinstance(wait_timeout, type) or not issubclass(wait_timeout, BaseException):
        return None
    if not {"interval", "timeout"} <= set(parameters):
        return None
    timed_out: type[BaseException] = wait_timeout

    class Bounded(psycopg.Connection[Any]):
        answer_within: float | None = None

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            limit = timeout if timeout is not None else self.answer_within
            try:
                return super().wait(gen, interval=interval, timeout=limit)
            except timed_out:
                if timeout is not None:  # psycopg's own limit: its own handling
                    raise
                # Mid-protocol, the connection is of no further use: closing it tells
                # SQLAlchemy it is gone (is_disconnect), so the pool drops it.
                self.close()
                raise psycopg.OperationalError(
                    f"the database did not answer within {limit:g} s"
                ) from None

    return Bounded


def _connect_bounded(
    bounded: type[Any], answer: float | None, _dialect: Any, _record: Any, cargs: Any, cparams: Any
) -> Any:
    connection = bounded.connect(*cargs, **cparams)
    connection.answer_within = answer
    return connection


def _mark_fresh(_dbapi_connection: Any, record: Any) -> None:
    record.info["fresh"] = True  # just connected: no need to ping it


def _pre_ping(limit: float, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Before a pooled connection is used: one empty round trip, answered within `limit`
    seconds, or the pool's connections are replaced (with a new connection, which has its
    own connect timeout)."""
    if record.info.pop("fresh", False):
        return
    import psycopg

    before, autocommit = dbapi_connection.answer_within, dbapi_connection.autocommit
    try:
        dbapi_connection.answer_within = limit
        if not autocommit:
            dbapi_connection.autocommit = True  # no transaction for the ping
        dbapi_connection.execute(";")
        dbapi_connection.autocommit = autocommit
    except psycopg.Error as error:
        raise exc.InvalidatePoolError(f"pre-ping failed: {error}") from error
    finally:
        dbapi_connection.answer_within = before


@contextmanager
def without_time_limits(connection: Connection) -> Iterator[None]:
    """Within the connection's transaction, statements take as long as they need: a
    migration's ALTER of a large table, or its wait for another process's migration."""
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
    dbapi: Any = connection.connection.dbapi_connection
    bounded = hasattr(dbapi, "answer_within")
    before = dbapi.answer_within if bounded else None
    if bounded:
        dbapi.answer_within = None
    try:
        yield
    finally:
        if bounded:
            dbapi.answer_within = before


def ping(engine: Engine, timeout: float) -> None:
    """Returns once the database answered `SELECT 1`; raises OperationalError if it failed or
    did not answer within `timeout` seconds, whatever the connection's state (readyz)."""
    outcome: list[BaseException | None] = []

    def check() -> None:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except BaseException as error:  # handed to the caller's thread
            outcome.append(error)
        else:
            outcome.append(None)

    # A thread, so the caller has its answer on time even while the check still waits (it
    # ends at the connection's own limits).
    checker = threading.Thread(target=check, daemon=True, name="envparity-db-ping")
    checker.start()
    checker.join(timeout)
    if not outcome:
        raise exc.OperationalError(
            "SELECT 1", None, TimeoutError(f"the database did not answer within {timeout:g} s")
        )
    if outcome[0] is not None:
        raise outcome[0]


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker  # the ORM loads when a command first needs it

    return sessionmaker(engine, expire_on_commit=False)
