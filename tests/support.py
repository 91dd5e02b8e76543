"""Test helpers that tests import: a project folder with a config and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Project:
    """A folder with an envparity.yaml and the files its sources read."""

    root: Path
    database_url: str

    @property
    def config(self) -> Path:
        return self.root / "envparity.yaml"

    def write(self, relative: str, content: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
        return path

    def write_config(self, content: str) -> Path:
        return self.write("envparity.yaml", content)

    def env(self) -> dict[str, str]:
        return {"ENVPARITY_DATABASE_URL": self.database_url, "ENVPARITY_CONFIG": str(self.config)}

    def invoke(self, *args: str, input: str | None = None) -> Invocation:
        """The command in this process; the fixture has set this project's variables."""
        return invoke(*args, "--config", str(self.config), input=input) if args else invoke()

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """The real `envparity` command in a subprocess, as a user runs it."""
        env = {**os.environ, **self.env()}
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=self.root,
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )


@dataclass
class Invocation:
    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, input: str | None = None) -> Invocation:
    """The `envparity` command in this process (faster than `Project.run`, same code path)."""
    from typer.testing import CliRunner

    from app.cli import app

    result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
    return Invocation(result.exit_code, result.stdout, result.stderr)


def database_bytes(database_url: str) -> bytes:
    """Every byte the database holds for us: the SQLite files (-wal and -shm included), or
    every PostgreSQL row as text."""
    from app.db.session import make_engine

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = Path(url.database or "")
        return b"".join(
            p.read_bytes() for p in database.parent.glob(database.name + "*") if p.is_file()
        )
    engine = make_engine(database_url)
    chunks = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            rows = conn.execute(text(f'SELECT t::text FROM "{table}" t')).scalars()
            chunks.extend(row.encode() for row in rows)
    engine.dispose()
    return b"\n".join(chunks)


def alert_events(project: Project) -> list[Any]:
    """Every event of the alert outbox, oldest first."""
    from sqlalchemy import select

    from app import runtime
    from app.db.models import AlertEvent

    rt = runtime.load(project.config)
    try:
        with rt.sessions.begin() as session:
            return list(session.scalars(select(AlertEvent).order_by(AlertEvent.id)))
    finally:
        rt.close()
