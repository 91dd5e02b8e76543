"""Alembic environment: the URL comes from the caller's connection, or from settings and config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from app.db import models  # noqa: F401  (registers the tables on the metadata)
from app.db.base import Base

target_metadata = Base.metadata


def _database_url() -> str:
    from app.config import DEFAULT_DATABASE_URL, find_config_path, load_config
    from app.db.session import resolve_database_url
    from app.settings import get_settings

    settings = get_settings()
    if settings.database_url:
        return resolve_database_url(settings.database_url).render_as_string(hide_password=False)
    path = find_config_path(None, settings.config)
    if path.exists():
        config = load_config(path)
        url = resolve_database_url(config.database_url, config.base_dir)
    else:
        url = resolve_database_url(DEFAULT_DATABASE_URL)
    return url.render_as_string(hide_password=False)


def _run(connection: Connection) -> None:
    from app.db.session import without_time_limits

    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    # A migration's statements (and its wait for another migrator) take what they take.
    with context.begin_transaction(), without_time_limits(connection):
        if connection.dialect.name == "postgresql":
            # Two processes upgrading one database at once take turns.
            connection.execute(text("SELECT pg_advisory_xact_lock(7406061)"))
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from app.db.session import make_engine

    engine = make_engine(_database_url())
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
