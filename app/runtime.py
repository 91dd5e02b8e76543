"""What a command or the server needs, built from settings and config: engine, sessions, keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from app.clock import SYSTEM, Clock
from app.config import Config, find_config_path, load_config
from app.db.migrate import ensure_schema
from app.db.session import make_engine, make_sessionmaker, resolve_database_url
from app.secrets import make_redactor
from app.settings import Settings, get_settings
from collectors.secrets import Redactor

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


@dataclass
class Runtime:
    settings: Settings
    config: Config
    database_url: URL
    engine: Engine
    redactor: Redactor
    # What the scans, evaluations and alert delivery built from this runtime read and wait on.
    clock: Clock = SYSTEM

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Made on first use: a command that reads with Core alone never loads the ORM."""
        return make_sessionmaker(self.engine)

    # What the layers above keep for the process's lifetime, by name (app.reports.service
    # keeps the sides its evaluations loaded here: `kept_sides`).
    kept: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def close(self) -> None:
        self.engine.dispose()


def database_url_for(settings: Settings, config: Config) -> URL:
    """$ENVPARITY_DATABASE_URL wins over the config's database_url."""
    if settings.database_url:
        return resolve_database_url(settings.database_url, Path.cwd())
    return resolve_database_url(config.database_url, config.base_dir)


def redactor_for(settings: Settings, config: Config) -> Redactor:
    key_file: Path | None = settings.secret_key_file
    if key_file is None and config.model.secrets.key_file:
        key_file = config.base_dir / Path(config.model.secrets.key_file).expanduser()
    return make_redactor(settings.secret_key, key_file, config.model.secrets)


def load(
    config_path: str | Path | None = None,
    *,
    migrate: bool = True,
    own_database: bool = False,
) -> Runtime:
    """`own_database`: use the config's database_url even if $ENVPARITY_DATABASE_URL is set
    (the demo must never write into a real installation's database)."""
    settings = get_settings()
    config = load_config(find_config_path(config_path, settings.config))
    if own_database:
        settings = settings.model_copy(
            update={"database_url": None, "secret_key": None, "secret_key_file": None}
        )
    url = database_url_for(settings, config)
    engine = make_engine(url, config.model.database)
    if migrate:
        ensure_schema(engine)
    return Runtime(
        settings=settings,
        config=config,
        database_url=url,
        engine=engine,
        redactor=redactor_for(settings, config),
    )


@contextmanager
def unit_of_work(config_path: str | Path | None = None) -> Iterator[tuple[Runtime, Session]]:
    """A command's unit of work: the runtime and one transaction, committed on success."""
    rt = load(config_path)
    try:
        with rt.sessions.begin() as session:
            yield rt, session
    finally:
        rt.close()
