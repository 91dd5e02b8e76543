"""Many processes at once, as users run them: ten pushes to a fresh SQLite database all land
(the first use migrates it once, the writers take turns); ten first uses of a fresh database
all succeed, on SQLite and PostgreSQL; concurrent first loads of the secret key all get the
same key; an evaluation holds SQLite's write lock only while it writes; a writer waits its
busy timeout for the lock, and no longer."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app import runtime
from app.alerts.evaluate import Evaluator
from app.config import DatabaseConfig
from app.db import migrate
from app.db.models import Snapshot
from app.db.session import make_engine
from tests.conftest import POSTGRES_ADMIN_URL, _admin_execute
from tests.support import REPO, Project

PROCESSES = 10


def push_document(env: str, count: int, version: str) -> str:
    return json.dumps(
        {
            "taken_at": "2026-11-22T04:00:00Z",
            "sources": [{"name": "agent", "type": "push", "status": "ok", "error": None}],
            "resources": [
                {
                    "source": "agent",
                    "category": "packages",
                    "resource_type": "pip",
                    "key": f"pkg-{i:05d}",
                    "attributes": {"version": version, "env": env, "extra": {"a": [1, 2, i]}},
                }
                for i in range(count)
            ],
        }
    )


def at_once(
    commands: list[list[str]], cwd: Path, env: dict[str, str]
) -> list[subprocess.CompletedProcess[str]]:
    """Starts every command before waiting for any."""
    started = [
        subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    done = []
    for process in started:
        out, err = process.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


@pytest.fixture
def fresh_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project whose SQLite database does not exist yet, its variables set here too."""
    database = tmp_path / "fresh" / "envparity.db"
    database.parent.mkdir()
    project = Project(tmp_path / "project", f"sqlite:///{database}")
    for name, value in project.env().items():
        monkeypatch.setenv(name, value)
    return project


@pytest.mark.slow
def test_ten_concurrent_pushes_to_a_fresh_sqlite_database_all_land(fresh_project: Project) -> None:
    project = fresh_project
    database = Path(make_url(project.database_url).database or "")
    names = [f"env{i}" for i in range(PROCESSES)]
    environments = "".join(f"  {name}: {{}}\n" for name in names)
    comparisons = "".join(
        f"  - {{source: {a}, target: {b}}}\n" for a, b in itertools.pairwise(names)
    )
    project.write_config(f"environments:\n{environments}comparisons:\n{comparisons}")
    for i, name in enumerate(names):
        project.write(f"{name}.json", push_document(name, 1000, f"1.{i % 3}"))
    assert not database.exists()

    env = {**os.environ, **project.env()}
    done = at_once(
        [[sys.executable, "-m", "app", "push", name, f"{name}.json"] for name in names],
        project.root,
        env,
    )
    failures = [(p.returncode, p.stderr.strip()[-300:]) for p in done if p.returncode != 0]
    assert failures == []
    rt = runtime.load(project.config)
    try:
        with rt.sessions.begin() as session:
            assert session.scalar(select(func.count()).select_from(Snapshot)) == PROCESSES
    finally:
        rt.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nobody has used yet: no SQLite file, or an empty PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'first-use.db'}"
        return
    request.getfixturevalue("postgres_template")  # skips cleanly without PostgreSQL
    name = f"envparity_first_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_ten_concurrent_first_uses_of_a_fresh_database_all_succeed(
    empty_database: str, tmp_path: Path
) -> None:
    project = Project(tmp_path / "project", empty_database)
    project.write_config("environments:\n  staging: {}\n")
    done = at_once(
        [[sys.executable, "-m", "app", "alerts", "list"]] * PROCESSES,
        project.root,
        {**os.environ, **project.env()},
    )
    failures = [(p.returncode, p.stderr.strip()[-300:]) for p in done if p.returncode != 0]
    assert failures == []
    engine = make_engine(empty_database)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


FIRST_LOADS = """
import multiprocessing, sys
from app.secrets import load_secret_key

def load(path, barrier, results):
    barrier.wait()
    try:
        results.put(load_secret_key(None, path).hex())
    except Exception as exc:
        results.put(f"error: {exc}")

if __name__ == "__main__":
    folder, rounds, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    context = multiprocessing.get_context("fork")
    for n in range(rounds):
        path = f"{folder}/round-{n}/secret.key"
        barrier, results = context.Barrier(workers), context.Queue()
        procs = [
            context.Process(target=load, args=(path, barrier, results)) for _ in range(workers)
        ]
        for p in procs:
            p.start()
        keys = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join()
        print(" ".join(sorted(set(keys))))
"""


@pytest.mark.slow
def test_concurrent_first_loads_of_the_secret_key_all_get_the_same_key(tmp_path: Path) -> None:
    script = tmp_path / "first_loads.py"
    script.write_text(textwrap.dedent(FIRST_LOADS))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "keys"), "10", "32"],
        cwd=REPO,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ENVPARITY_SECRET")},
            "PYTHONPATH": str(REPO),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rounds = done.stdout.split("\n")[:-1]
    assert len(rounds) == 10
    for n, keys in enumerate(rounds):
        assert len(keys.split()) == 1, keys  # one key per round, and no error
        stored = (tmp_path / "keys" / f"round-{n}" / "secret.key").read_text().strip()
        assert keys == stored
    assert not [p for p in (tmp_path / "keys").rglob("*") if p.name.endswith(".new")]


@pytest.mark.slow
def test_an_evaluation_holds_the_sqlite_write_lock_only_while_it_writes(
    fresh_project: Project,
) -> None:
    project = fresh_project
    database = Path(make_url(project.database_url).database or "")
    config = (
        "environments:\n  staging: {}\n  production: {}\n"
        "comparisons:\n  - {source: staging, target: production}\n"
    )
    project.write_config(config)
    for env, version in (("staging", "1.0"), ("production", "2.0")):
        path = project.write(f"{env}.json", push_document(env, 8000, version))
        pushed = project.invoke("push", env, str(path))
        assert pushed.returncode == 0, pushed.stderr
    # A changed rule: the comparison is judged again, 8,000 differences compared (4,000
    # took under half a second once sides were columns and documents stored normalized).
    project.write_config(config + "severity:\n  - {key: pkg-00001, severity: critical}\n")
    rt = runtime.load(project.config)
    stop, spans = threading.Event(), []

    def probe() -> None:
        """How long, at a time, another writer finds the database locked."""
        conn = sqlite3.connect(database, timeout=0, isolation_level=None)
        since = None
        while not stop.is_set():
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                if since is not None:
                    spans.append(time.monotonic() - since)
                    since = None
            except sqlite3.OperationalError:
                since = since or time.monotonic()
            time.sleep(0.002)
        if since is not None:
            spans.append(time.monotonic() - since)
        conn.close()

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        started = time.monotonic()
        [outcome] = Evaluator(rt.config, rt.sessions).catch_up()
        took = time.monotonic() - started
    finally:
        stop.set()
        prober.join()
        rt.close()
    assert outcome.opened == 0  # the same differences (one is critical now): no new event
    assert took > 0.5  # a comparison worth measuring
    assert max(spans, default=0.0) < 0.35 * took, (spans, took)


ADD_ENVIRONMENT = text("INSERT INTO environments (name, created_at) VALUES (:name, '2026-11-22')")


@pytest.mark.slow
def test_a_writer_waits_its_busy_timeout_for_the_lock_and_no_longer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'envparity.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    holder = sqlite3.connect(
        tmp_path / "envparity.db", isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")  # another process writing
    release = threading.Timer(1.5, holder.execute, args=("COMMIT",))
    release.start()
    try:
        started = time.monotonic()
        with engine.begin() as conn:  # the default: waits (30 s) and gets its turn
            conn.execute(ADD_ENVIRONMENT, {"name": "staging"})
        assert 1.2 < time.monotonic() - started < 10
        impatient = make_engine(url, DatabaseConfig(busy_timeout="1s"))
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with (
            pytest.raises(OperationalError, match="database is locked"),
            impatient.begin() as conn,
        ):
            conn.execute(ADD_ENVIRONMENT, {"name": "production"})
        assert 0.8 < time.monotonic() - started < 5
        impatient.dispose()
    finally:
        release.cancel()
        holder.close()
        engine.dispose()
