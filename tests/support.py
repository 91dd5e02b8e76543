"""Test helpers that tests import: a project folder with a config and the real CLI, free
ports and servers polled until they answer (the app under uvicorn in a thread, the real
`envparity serve` in a process), the hasher and redactor of the unit tests, a moto server
and boto3 clients on it, and the API's test config, push document and client."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from collectors.secrets import Redactor, SecretHasher

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from app import runtime
    from collectors.base import Resource
    from collectors.runner import SourceOutcome

REPO = Path(__file__).resolve().parent.parent
TEST_SECRET_KEY = "9f" * 32  # ENVPARITY_SECRET_KEY of every test (tests/conftest.py sets it)


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


# --------------------------------------------------------------------------- secrets

HASH_KEY = b"k" * 32  # the key the unit tests hash secrets with (collectors, diff engine)
HASHER = SecretHasher(HASH_KEY)  # stateless: one serves every test


def make_redactor(**options: Any) -> Redactor:
    """A fresh redactor on HASH_KEY (a redactor keeps memos: one per module or test)."""
    return Redactor(SecretHasher(HASH_KEY), **options)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_answers(
    url: str,
    timeout: float = 30,
    process: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
) -> None:
    """Polls GET `url` until it answers 200; fails the test if `process` exits first or
    `timeout` seconds pass (with the `log` file's text, if given)."""
    deadline = time.monotonic() + timeout

    def why() -> str:
        return log.read_text(errors="replace") if log is not None and log.exists() else ""

    while True:
        if process is not None:
            assert process.poll() is None, f"{process.args} exited {process.returncode}: {why()}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer within {timeout:.0f} s {why()}"
        time.sleep(0.05)


@contextmanager
def serving(rt: runtime.Runtime) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, for as long as the block runs."""
    import uvicorn

    from app.main import create_app

    port = free_port()
    config = uvicorn.Config(create_app(runtime=rt), host="127.0.0.1", port=port, log_level="error")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(url + "/api/v1/healthz", timeout=10)
        yield url
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


def installation_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a command run on `root`'s envparity.yaml and SQLite envparity.db,
    none of this process's ENVPARITY_ variables."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENVPARITY_")},
        "ENVPARITY_SECRET_KEY": TEST_SECRET_KEY,
        "ENVPARITY_DATABASE_URL": f"sqlite:///{root / 'envparity.db'}",
        "ENVPARITY_CONFIG": str(root / "envparity.yaml"),
        **extra,
    }


@dataclass
class Served:
    """`envparity serve` in its own process: its address, the process, its stderr's file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def envparity_serve(root: Path) -> Iterator[Served]:
    """The real `envparity serve` command on a free loopback port, on `root`'s config and
    SQLite database, until the block ends (its stderr goes to `root`/serve.log)."""
    port = free_port()
    log = root / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--no-scheduler"],
            env=installation_env(root), stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(url + "/api/v1/healthz", timeout=30, process=process, log=log)
        yield Served(url, process, log)
    finally:
        process.terminate()
        process.wait(timeout=30)


# --------------------------------------------------------------------------- the API

API_CONFIG = """
environments:
  staging:
    sources: [{type: file, name: app, path: staging.yaml}]
  production:
    sources: [{type: file, name: app, path: production.yaml}]
  fleet: {}
comparisons:
  - {source: staging, target: production, gate: {fail_on: warning}}
"""

PUSH = {
    "taken_at": "2026-11-22T04:00:00Z",
    "sources": [{"name": "agent", "type": "push", "status": "ok", "error": None}],
    "resources": [
        {
            "source": "agent",
            "category": "packages",
            "resource_type": "pip",
            "key": "requests",
            "attributes": {"version": "2.32.3"},
        },
    ],
}


class Api:
    """A client of the API with a token per scope: `call(method, "/path", scope)`."""

    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def call(self, method: str, path: str, scope: str | None = "admin", **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[scope]}"} if scope else {}
        return self.client.request(method, "/api/v1" + path, headers=headers, **kw)


def create_tokens(rt: runtime.Runtime, scopes: Iterable[str]) -> dict[str, str]:
    """A token of each scope (named after it), by scope."""
    from app.auth.tokens import TokenRepository

    with rt.sessions.begin() as session:
        return {s: TokenRepository(session).create(s, s, None)[1] for s in scopes}


@contextmanager
def api_client(project: Project, scopes: Iterable[str]) -> Iterator[Api]:
    """The app in process on the project's config (already written), a token per scope."""
    from fastapi.testclient import TestClient

    from app import runtime
    from app.main import create_app

    rt = runtime.load(project.config)
    tokens = create_tokens(rt, scopes)
    try:
        with TestClient(create_app(runtime=rt)) as client:
            yield Api(client, tokens)
    finally:
        rt.close()


# --------------------------------------------------------------------------- AWS (moto)


@contextmanager
def moto_server(log: Path | None = None) -> Iterator[str]:
    """moto's server (a simulated AWS) on a free loopback port, in a process of its own (on
    the other core: in this process it would share the tests' GIL): its endpoint URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log or os.devnull, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output, stderr=output,
        )  # fmt: skip
    try:
        wait_until_answers(url + "/moto-api/data.json", timeout=60, process=process, log=log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


class AwsHelper:
    """boto3 clients on the moto server, and a way to run a source type against it."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def reset(self) -> None:
        """Every service's state emptied (moto's own API)."""
        httpx.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def client(self, service: str, region: str = "us-east-1") -> Any:
        import boto3

        return boto3.client(service, region_name=region, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def options(self, type_name: str, **options: Any) -> Any:
        from collectors import registry

        cls = registry.get(type_name)
        assert cls is not None, type_name
        options.setdefault("region", "us-east-1")
        return cls.Options.model_validate(
            {"type": type_name, "endpoint_url": self.endpoint, **options}
        )

    def collect(self, type_name: str, **options: Any) -> list[Resource]:
        from collectors import registry
        from collectors.base import FetchContext

        cls = registry.get(type_name)
        assert cls is not None
        ctx = FetchContext(environment="staging", base_dir=Path("."))
        return cls().collect(self.options(type_name, **options), ctx)

    def run(self, type_name: str, **options: Any) -> SourceOutcome:
        """Through the scan's runner: timeout, errors caught, secrets hashed (HASH_KEY)."""
        from collectors.base import FetchContext
        from collectors.runner import run_source

        ctx = FetchContext(environment="staging", base_dir=Path("."))
        return run_source(self.options(type_name, **options), ctx, make_redactor())

    def by_key(self, type_name: str, **options: Any) -> dict[str, Resource]:
        return {r.key: r for r in self.collect(type_name, **options)}


AWS_TEST_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# --------------------------------------------------------------------------- time


class FakeClock:
    """A Clock (app.clock) for the outer loops under test, which moves only when told:
    `advance(seconds)`, or `sleep(seconds)`, which advances instead of sleeping; `monotonic()`
    moves with `now()`. `wait(event, seconds)` returns at once when the event is set, else as
    soon as the clock has been advanced `seconds` past the call (by the test, or another
    thread's sleep): a loop on another thread (a heartbeat, `Deliverer.run`) makes a pass only
    when the test moves time on; `waiting` counts the waits under way. `slept` lists every
    sleep. Starts at the real now, or `start`."""

    def __init__(self, start: datetime | None = None) -> None:
        from app.clock import utcnow

        self._moved = threading.Condition()
        self._now = start if start is not None else utcnow()
        self._monotonic = 1000.0
        self.slept: list[float] = []
        self.waiting = 0

    def now(self) -> datetime:
        with self._moved:
            return self._now

    def monotonic(self) -> float:
        with self._moved:
            return self._monotonic

    def advance(self, seconds: float) -> None:
        with self._moved:
            self._now += timedelta(seconds=seconds)
            self._monotonic += seconds
            self._moved.notify_all()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._moved:
                self.slept.append(seconds)
            self.advance(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        with self._moved:
            until = self._monotonic + max(0.0, seconds)
            self.waiting += 1
            try:
                while not event.is_set() and self._monotonic < until:
                    self._moved.wait(0.01)  # real time: setting the event does not wake this
            finally:
                self.waiting -= 1
        return event.is_set()


def scan_on(clock: Any, config: Path, *environments: str) -> None:
    """Scans the environments as `envparity scan` does (each stored snapshot evaluated), on
    `clock`: a FakeClock started in the past makes snapshots that old without waiting."""
    from app import runtime
    from app.alerts.evaluate import evaluating_scanner

    rt = runtime.load(config)
    rt.clock = clock
    try:
        scanner = evaluating_scanner(rt)
        for environment in environments:
            result = scanner.scan(environment)
            assert result.status == "complete", result
    finally:
        rt.close()


# ----------------------------------------------------------------------------- the browser

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright never downloads one here
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """Skips the calling test module when Chromium or Playwright is missing, or fails it when
    ENVPARITY_REQUIRE_BROWSER=1 (CI). Call at module level, before importing playwright."""
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
    elif importlib.util.find_spec("playwright") is None:
        reason = "playwright is not installed: make venv"
    if reason is None:
        return
    if os.environ.get("ENVPARITY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (ENVPARITY_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
