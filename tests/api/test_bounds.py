"""Hostile and oversized requests: bodies bounded before they are read (against the real
`envparity serve`, its memory measured), the token checked before a body is parsed, pushes
parsed off the event loop, scan waiters that hold no thread, 405 with `Allow`, the OpenAPI
of /metrics and of the 202s, and no database address in unauthenticated answers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app import runtime
from app.auth.tokens import TokenRepository
from app.db.session import make_engine
from app.main import create_app
from app.snapshots import jsonstream
from tests.support import (
    PUSH,
    Api,
    Project,
    api_client,
    create_tokens,
    envparity_serve,
    installation_env,
    serving,
)

MB = 1024 * 1024
SENT_AT_MOST = 400 * MB  # what a client below tries to send; loopback takes it in about 1 s
RSS_CEILING_KB = 300 * 1024

CONFIG = """
server: {max_push_mb: 20}
environments:
  fleet: {}
"""


# ----------------------------------------------------------------------------- the real server


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    tokens: dict[str, str]

    def rss_kb(self) -> int:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`envparity serve` in its own process (its RSS is its own), on a SQLite database."""
    root = tmp_path_factory.mktemp("bounds")
    (root / "envparity.yaml").write_text(CONFIG, encoding="utf-8")
    env = installation_env(root)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ENVPARITY_"):
                mp.delenv(name)
        for name, value in env.items():
            if name.startswith("ENVPARITY_"):
                mp.setenv(name, value)
        rt = runtime.load(root / "envparity.yaml")
        tokens = create_tokens(rt, ("read", "write"))
        rt.close()
    with envparity_serve(root) as server:
        yield Served(server.url, server.process, tokens)


class PeakRss:
    """The server's highest RSS while the block runs, sampled every 10 ms."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.peak_kb = served.rss_kb()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        while not self.stop.wait(0.01):
            self.peak_kb = max(self.peak_kb, self.served.rss_kb())

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.peak_kb = max(self.peak_kb, self.served.rss_kb())


def stream_zeros(url: str, headers: dict[str, str]) -> tuple[int | None, int, float]:
    """Up to 400 MB of zeros, chunked (no Content-Length), in 1 MB pieces: the answer's status
    (None if the server closed the connection first), the bytes the client got to send, and
    the seconds it took."""
    sent = 0

    def zeros() -> Iterator[bytes]:
        nonlocal sent
        chunk = bytes(MB)
        while sent < SENT_AT_MOST:
            sent += len(chunk)
            yield chunk

    started = time.monotonic()
    try:
        status: int | None = httpx.post(
            url, content=zeros(), headers=headers, timeout=30
        ).status_code
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        status = None
    return status, sent, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "token", "answers", "limit"),
    [
        ("/login", None, {413, None}, 1 * MB),  # the dashboard's sign-in: no token by design
        ("/api/v1/waivers", None, {401, None}, 1 * MB),  # refused unread
        ("/api/v1/waivers", "write", {413, None}, 1 * MB),  # server.max_body_kb (64)
        ("/api/v1/environments/fleet/snapshots", None, {401, None}, 1 * MB),
        ("/api/v1/environments/fleet/snapshots", "write", {413, None}, 20 * MB),  # max_push_mb
    ],
)
def test_an_endless_body_is_cut_off_with_memory_bounded(
    served: Served, path: str, token: str | None, answers: set[int | None], limit: int
) -> None:
    headers = {"Authorization": f"Bearer {served.tokens[token]}"} if token else {}
    with PeakRss(served) as rss:
        status, sent, seconds = stream_zeros(served.url + path, headers)
    assert status in answers, (status, sent)
    # Cut off near the limit, not at the end (400 MB): the kernel's socket buffers and the
    # chunks in flight while a loaded server gets round to closing add up to a few tens of MB.
    assert sent < limit + 32 * MB, f"the client sent {sent // MB} MB before the server stopped it"
    assert seconds < 10
    assert rss.peak_kb < RSS_CEILING_KB, f"RSS reached {rss.peak_kb // 1024} MB"
    assert httpx.get(served.url + "/api/v1/healthz", timeout=5).status_code == 200


def declared_length_answer(served: Served, path: str, headers: dict[str, str]) -> bytes:
    """The first line of the answer to request headers that announce a 10 GB body, of which
    not one byte is sent: the server must answer without waiting for it."""
    host, port = served.url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Length: 10737418240"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            answer = conn.recv(4096)
        except TimeoutError:
            return b"(no answer within 5 s: the server waits for the body)"
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        ("/login", None, b"413"),
        ("/api/v1/waivers", None, b"401"),
        ("/api/v1/waivers", "write", b"413"),
        ("/api/v1/environments/fleet/snapshots", "write", b"413"),
    ],
)
def test_a_declared_length_over_the_limit_is_refused_unread(
    served: Served, path: str, token: str | None, status: bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {served.tokens[token]}"
    first_line = declared_length_answer(served, path, headers)
    assert first_line.startswith(b"HTTP/1.1 " + status), first_line


# ----------------------------------------------------------------------------- in process


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project on SQLite only: what these tests check does not depend on the database
    (the API on both databases: tests/api/test_api.py)."""
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, f"sqlite:///{root / 'envparity.db'}")
    for name, value in project.env().items():
        monkeypatch.setenv(name, value)
    return project


@pytest.fixture
def api(local: Project) -> Iterator[Api]:
    project = local
    project.write_config(CONFIG)
    with api_client(project, ("read", "write")) as api:
        yield api


def test_the_token_is_checked_before_a_body_is_parsed(api: Api) -> None:
    """A body FastAPI parsed itself would be read, and refused as invalid (422), before the
    auth dependency ran; the API reads a body only once the token is known good."""
    not_json = b"{" * 50_000
    headers = {"Authorization": "Bearer envp_unknown", "Content-Type": "application/json"}
    unknown = api.client.post("/api/v1/waivers", content=not_json, headers=headers)
    assert unknown.status_code == 401, unknown.text
    too_small = api.call("POST", "/waivers", "read", content=not_json)
    assert too_small.status_code == 403, too_small.text
    refused = api.call("POST", "/waivers", "write", content=not_json)
    assert refused.status_code == 422
    stored = api.call("POST", "/waivers", "write", json={"reason": "r", "path": "pool"})
    assert stored.status_code == 201, stored.text


@pytest.mark.parametrize(
    "body", [b'{"reason": "a", "reason": "b"}', b'{"reason": "a", "owner": NaN}']
)
def test_a_waiver_body_is_strict_json(api: Api, body: bytes) -> None:
    refused = api.call("POST", "/waivers", "write", content=body)
    assert refused.status_code == 422
    assert "not valid JSON" in refused.json()["error"]
    assert api.call("GET", "/waivers", "read").json() == []


def test_no_api_route_has_a_body_that_fastapi_reads_before_auth() -> None:
    """FastAPI reads a declared body parameter before any dependency: every route that takes
    a body reads it itself, after its token dependency (see app/api/reports.waiver_body)."""
    from app.api import alerts, reports, snapshots

    routes = [
        route
        for module in (alerts, reports, snapshots)
        for route in module.router.routes
        if isinstance(route, APIRoute)
    ]
    assert len(routes) > 10
    assert [r.path for r in routes if r.body_field is not None] == []


def test_bodies_past_max_body_kb_are_413(api: Api) -> None:
    padded = {"reason": "r", "owner": "x" * (65 * 1024)}
    too_large = api.call("POST", "/waivers", "write", json=padded)
    assert too_large.status_code == 413
    assert too_large.json() == {"error": "the body is larger than 64 KB", "detail": None}
    # every endpoint has the limit, even one that takes no body
    answer = api.call("GET", "/environments", "read", content=b"x" * (65 * 1024))
    assert answer.status_code == 413


def test_a_push_is_parsed_off_the_event_loop(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing a large push holds the GIL and the event loop for as long as it runs
    (healthz stalled 3 s during a 49 MB push): it is read in the thread pool."""
    where: list[str] = []
    events = jsonstream.events

    def spy(raw: Any, *args: Any, **kwargs: Any) -> Any:
        for event in events(raw, *args, **kwargs):
            try:
                asyncio.get_running_loop()
                where.append("event loop")
            except RuntimeError:
                where.append("worker thread")
            yield event

    monkeypatch.setattr(jsonstream, "events", spy)
    stored = api.call("POST", "/environments/fleet/snapshots", "write", json=PUSH)
    assert stored.status_code == 201, stored.text
    assert where
    assert set(where) == {"worker thread"}


def test_a_push_larger_than_the_in_memory_spool_is_stored_whole(api: Api) -> None:
    """A body past 1 MB waits on disk until it is read: every resource still arrives."""
    resources = [
        {**PUSH["resources"][0], "key": f"package-{i}", "attributes": {"version": "1." * 200}}
        for i in range(4000)
    ]
    body = json.dumps({**PUSH, "resources": resources}).encode()
    assert len(body) > 1_500_000
    stored = api.call("POST", "/environments/fleet/snapshots", "write", content=body)
    assert stored.status_code == 201, stored.text
    snapshot = stored.json()["snapshot_id"]
    listed = api.call("GET", f"/snapshots/{snapshot}", "read").json()
    assert listed["resource_count"] == 4000


SLOW_SCAN = """
environments:
  staging:
    sources:
      - type: command
        name: slow
        command: [{python}, -c, "import time; time.sleep(5); print('x')"]
        parser: lines
"""


@pytest.mark.slow
def test_waiting_for_a_scan_holds_no_worker_thread(
    local: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """45 requests waiting for one scan (`wait=true`) used to hold 45 threads of the 40 in
    the pool: healthz, a sync route, waited for the scan to end. Waiting is asynchronous."""
    from app.api import scans as scans_api

    project = local
    project.write_config(SLOW_SCAN.format(python=sys.executable))
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        token = TokenRepository(session).create("write", "ci", None)[1]
    headers = {"Authorization": f"Bearer {token}"}
    waiting: list[int] = []  # the scan each request inside the wait for a scan waits for
    when_done = scans_api._when_done

    async def counted(*args: Any) -> Any:
        waiting.append(args[1])
        return await when_done(*args)

    monkeypatch.setattr(scans_api, "_when_done", counted)
    with serving(rt) as url, ThreadPoolExecutor(max_workers=45) as pool:
        start = f"{url}/api/v1/environments/staging/scans?wait=true&timeout=60"
        waiters = [pool.submit(httpx.post, start, headers=headers, timeout=60) for _ in range(45)]
        deadline = time.monotonic() + 30
        while len(waiting) < 45:  # until all of them are waiting
            assert time.monotonic() < deadline, f"{len(waiting)} of 45 requests are waiting"
            time.sleep(0.05)
        assert not any(w.done() for w in waiters)
        started = time.monotonic()
        health = httpx.get(url + "/api/v1/healthz", timeout=30)
        seconds = time.monotonic() - started
        answers = [w.result() for w in waiters]
    rt.close()
    assert health.status_code == 200
    assert seconds < 1.5, f"healthz took {seconds:.1f} s while scans were awaited"
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["status"] for a in answers} == {"complete"}
    assert len({a.json()["id"] for a in answers}) == 1  # one scan, everyone waited for it


@pytest.mark.slow
def test_a_wait_that_times_out_answers_202(project: Project) -> None:
    project.write_config(SLOW_SCAN.format(python=sys.executable).replace("sleep(5)", "sleep(2)"))
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        token = TokenRepository(session).create("write", "ci", None)[1]
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(runtime=rt)) as client:
        path = "/api/v1/environments/staging/scans?wait=true&timeout=0.3"
        own = client.post(path, headers=headers)
        assert own.status_code == 202
        assert own.json() == {"scan_id": own.json()["scan_id"], "already_running": False}
        other = client.post(path, headers=headers)
        assert other.status_code == 202
        assert other.json() == {"scan_id": own.json()["scan_id"], "already_running": True}
        done = client.post(path.replace("0.3", "30"), headers=headers)
        assert done.status_code == 200
        assert done.json()["status"] == "complete"
    rt.close()


# ----------------------------------------------------------------------------- smaller items


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/waivers", "GET, POST"),
        ("DELETE", "/api/v1/environments", "GET"),
        ("GET", "/api/v1/environments/fleet/scans", "POST"),
        ("POST", "/api/v1/healthz", "GET"),
        ("PUT", "/login", "GET, POST"),
    ],
)
def test_405_says_what_is_allowed(api: Api, method: str, path: str, allow: str) -> None:
    answer = api.client.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow
    assert answer.json() == {"error": "Method Not Allowed", "detail": None}


def test_openapi_describes_metrics_as_text_and_the_202s(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    metrics = paths["/api/v1/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert metrics["text/plain"]["schema"] == {"type": "string"}
    answer = api.call("GET", "/metrics", "read")
    assert answer.headers["content-type"].startswith("text/plain")
    scans = paths["/api/v1/environments/{name}/scans"]["post"]["responses"]
    assert scans["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ScanStarted"
    }
    assert "200" in scans
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas["ScanStarted"]["required"]) == {"scan_id", "already_running"}


def broken_database(rt: runtime.Runtime) -> None:
    """The runtime's database becomes a PostgreSQL server that refuses connections."""
    rt.engine.dispose()
    rt.engine = make_engine("postgresql+psycopg://envparity:pw@127.0.0.1:1/envparity")
    rt.__dict__.pop("sessions", None)  # the cached sessionmaker of the old engine


def test_unauthenticated_answers_do_not_name_the_database(local: Project) -> None:
    project = local
    project.write_config(CONFIG)
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        token = TokenRepository(session).create("read", "probe", None)[1]
    with TestClient(create_app(runtime=rt)) as client:
        cached = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/environments", headers=cached).status_code == 200
        broken_database(rt)
        ready = client.get("/api/v1/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable"}
        unknown = client.get(
            "/api/v1/environments", headers={"Authorization": "Bearer envp_unknown"}
        )
        assert unknown.status_code == 503
        assert unknown.json() == {"error": "database: unavailable", "detail": None}
        for answer in (ready, unknown):
            assert "127.0.0.1" not in answer.text
            assert "port" not in answer.text
        # a token this process has verified (cached): the reason is for its holder
        known = client.get("/api/v1/environments", headers=cached)
        assert known.status_code == 503
        assert "127.0.0.1" in known.json()["error"]
    rt.close()


def test_the_body_limit_is_in_the_server_config(tmp_path: Path) -> None:
    from app.config import ServerConfig

    assert ServerConfig().max_body_kb == 64
    assert ServerConfig(max_body_kb=1024).max_body_kb == 1024
    with pytest.raises(ValueError, match="max_body_kb"):
        ServerConfig(max_body_kb=0)


def test_a_200_byte_deep_push_is_refused_quickly_and_the_server_stays_small(
    served: Served,
) -> None:
    # 100 nested lists: normalization once grew exponentially with the depth (23 GB).
    body = (
        '{"taken_at": "2026-11-22T04:00:00Z", "sources": [{"name": "a"}], "resources": '
        '[{"source": "a", "category": "config", "resource_type": "f", "key": "k", '
        '"attributes": {"v": ' + "[" * 100 + "]" * 100 + "}}]}"
    )
    headers = {"Authorization": f"Bearer {served.tokens['write']}"}
    with PeakRss(served) as rss:
        started = time.monotonic()
        answer = httpx.post(
            served.url + "/api/v1/environments/fleet/snapshots",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=30,
        )
        elapsed = time.monotonic() - started
    assert answer.status_code == 422, answer.text
    assert "limits.max_depth" in answer.text
    assert elapsed < 5
    assert rss.peak_kb < 300 * 1024
    # The pages that show the environment still answer (nothing was stored to poison them).
    assert httpx.get(served.url + "/api/v1/healthz", timeout=5).status_code == 200
