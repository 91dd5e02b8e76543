"""The logs of `envparity serve` and `envparity scheduler` (docs/operations.md#logs): json,
kv and text lines with the same facts, the request log that never holds a token, uvicorn's
lines in the same format, and a port in use refused with a clear message. The processes are
the real commands; what they write on stderr is read back."""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import logs
from app.cli.server import listen
from app.errors import EnvparityError
from app.main import REDACTED, Redaction
from tests.alerts.recorder import Recorder
from tests.support import create_tokens, free_port, installation_env, invoke, wait_until_answers

CONFIG = """
environments:
  staging:
    sources: [{{type: file, name: app, path: staging.yaml}}]
  production:
    schedule: 1s
    sources: [{{type: file, name: app, path: production.yaml}}]
comparisons:
  - {{source: staging, target: production}}
alerts:
  webhooks: [{{name: ops, url: "{hook}", min_severity: info}}]
"""

# --------------------------------------------------------------------------- the formats


def record(
    message: str = "scan #%s of %s started", *args: object, exc_info: Any = None, **fields: Any
) -> logging.LogRecord:
    """A record as `log.info(message, *args, extra=fields)` makes it, at a fixed time."""
    made = logging.LogRecord(
        "app.snapshots.service", logging.INFO, __file__, 1, message, args, exc_info
    )
    made.created = 1795320000.5  # 2026-11-22T04:00:00.500Z
    made.__dict__.update(fields)
    return made


KV_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s|$)')


def parse_kv(line: str) -> dict[str, Any]:
    """A logfmt line as the docs describe it; every character of the line must be read."""
    pairs = list(KV_PAIR.finditer(line))
    assert "".join(m[0] for m in pairs).strip() == line.strip(), line
    return {m[1]: json.loads(m[2]) if m[2].startswith('"') else m[2] for m in pairs}


def test_json_lines_carry_time_level_logger_message_and_fields() -> None:
    line = logs.JsonFormatter().format(
        record(environment="staging", scan_id=3, event="scan.started", ok=True)
    )
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-11-22T04:00:00.500Z",
        "level": "info",
        "logger": "app.snapshots.service",
        "message": "scan #%s of %s started",
        "environment": "staging",
        "scan_id": 3,
        "event": "scan.started",
        "ok": True,
    }
    shown = json.loads(logs.JsonFormatter().format(record("%s of %s", 3, "staging", time="x")))
    assert shown["message"] == "3 of staging"
    assert shown["time"] == "2026-11-22T04:00:00.500Z"
    assert shown["field.time"] == "x"  # a field never replaces one of the four


def test_json_and_kv_lines_hold_a_traceback_on_their_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failing = record("failed", exc_info=sys.exc_info())
    document = json.loads(logs.JsonFormatter().format(failing))
    assert "ValueError: boom" in document["exception"]
    kv = logs.KeyValueFormatter().format(failing)
    assert "\n" not in kv
    assert "ValueError: boom" in parse_kv(kv)["exception"]


def test_kv_values_are_quoted_when_they_must_be() -> None:
    line = logs.KeyValueFormatter().format(
        record(
            'a "quoted" message\nwith a second line',
            empty="",
            spaced="two words",
            equals="a=b",
            plain="staging",
            none=None,
            count=2,
            ratio=0.5,
            flag=False,
            items=["a", "b c"],
            **{"odd key": "v"},
        )
    )
    assert "\n" not in line
    assert " plain=staging " in line
    assert " count=2 " in line
    assert " none=null " in line
    parsed = parse_kv(line)
    assert parsed["message"] == 'a "quoted" message\nwith a second line'
    assert parsed["empty"] == ""
    assert parsed["spaced"] == "two words"
    assert parsed["equals"] == "a=b"
    assert parsed["flag"] == "false"
    assert json.loads(parsed["items"]) == ["a", "b c"]
    assert parsed["odd_key"] == "v"
    assert list(parsed)[:4] == ["time", "level", "logger", "message"]


def test_text_lines_show_time_level_logger_and_message() -> None:
    line = logs.TextFormatter().format(record("%s of %s", 3, "staging", environment="staging"))
    assert line == "2026-11-22T04:00:00.500Z INFO app.snapshots.service: 3 of staging"


def test_a_log_format_or_level_that_is_none_of_the_choices_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = invoke("serve", "--log-format", "xml")
    assert refused.returncode == 2
    assert "--log-format must be one of text, json or kv" in refused.stderr
    monkeypatch.setenv("ENVPARITY_LOG_LEVEL", "loud")
    refused = invoke("scheduler")
    assert refused.returncode == 2
    assert "ENVPARITY_LOG_LEVEL must be one of debug, info, warning, error or critical" in (
        refused.stderr
    )


# --------------------------------------------------------------------------- redaction


def test_the_request_log_redacts_secret_named_parameters_and_tokens() -> None:
    redaction = Redaction()
    query = redaction.query(
        "left=staging&token=abc&api_key=k1&Password=p&X-Amz-Signature=s&sig=1&wait=true"
        "&access%5Ftoken=t&note=envp_0123456789abcdef&flag"
    )
    assert query == (
        f"left=staging&token={REDACTED}&api_key={REDACTED}&Password={REDACTED}"
        f"&X-Amz-Signature={REDACTED}&sig={REDACTED}&wait=true&access%5Ftoken={REDACTED}"
        f"&note={REDACTED}&flag"
    )
    assert redaction.text("/api/v1/environments/envp_abcdefgh") == (
        f"/api/v1/environments/{REDACTED}"
    )
    assert redaction.text("/x/AKIAIOSFODNN7EXAMPLE") == f"/x/{REDACTED}"
    assert redaction.query("") == ""


# --------------------------------------------------------------------------- the real server


@dataclass
class Process:
    """A real `envparity` command on `root`: its stderr, read back as it grows."""

    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()

    def wait_for(self, what: str, found: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout  # the process runs on real time: polled
        while not found():
            assert self.process.poll() is None, f"exited {self.process.returncode}: {self.text()}"
            assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s: {self.text()}"
            time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running(root: Path, *args: str, answers: bool = True, **env: str) -> Iterator[Process]:
    """`envparity ARGS` in its own process on `root`'s config and SQLite database."""
    log = root / f"{args[0]}.log"
    port = free_port()
    if args[0] == "serve":
        args = (*args, "--port", str(port))
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", *args],
            env=installation_env(root, **env), stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    started = Process(process, log, f"http://127.0.0.1:{port}")
    try:
        if answers:
            wait_until_answers(started.url + "/api/v1/healthz", 60, process, log)
        yield started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def setup(root: Path, hook: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The config, the files its sources read (drift between the two), and a token of each
    scope, made in this process on the database the commands will use."""
    from app import runtime

    (root / "envparity.yaml").write_text(CONFIG.format(hook=hook), encoding="utf-8")
    (root / "staging.yaml").write_text("replicas: 2\nlog_level: debug\n", encoding="utf-8")
    (root / "production.yaml").write_text("replicas: 6\nlog_level: info\n", encoding="utf-8")
    for name, value in installation_env(root).items():
        if name.startswith("ENVPARITY_"):
            monkeypatch.setenv(name, value)
    rt = runtime.load(root / "envparity.yaml")
    try:
        return create_tokens(rt, ("read", "write"))
    finally:
        rt.close()


@pytest.mark.slow
def test_serve_logs_json_lines_and_never_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    try:
        tokens = setup(tmp_path, recorder.url("/hook"), monkeypatch)
        write = tokens["write"]
        secrets = [write, tokens["read"], "hunter2-password", "envp_not-a-real-one-0123456789"]
        with running(tmp_path, "serve", "--log-format", "json") as server:
            bearer = {"Authorization": f"Bearer {write}"}
            api = server.url + "/api/v1"
            listed = httpx.get(f"{api}/environments?token={write}&x=1", headers=bearer, timeout=30)
            assert listed.status_code == 200
            scanned = httpx.post(
                f"{api}/environments/staging/scans?wait=true&password=hunter2-password",
                headers=bearer,
                timeout=60,
            )
            assert scanned.status_code == 200, scanned.text
            refused = httpx.get(
                f"{api}/environments?api_key={tokens['read']}",
                headers={"Authorization": "Bearer envp_not-a-real-one-0123456789"},
                cookies={"session": write},
                timeout=30,
            )
            assert refused.status_code == 401
            httpx.get(f"{server.url}/?access_token={write}", cookies={"t": write}, timeout=30)

            def records() -> list[dict[str, Any]]:
                return [json.loads(line) for line in server.lines()]

            def seen(event: str, **fields: Any) -> bool:
                return any(
                    r.get("event") == event and all(r.get(k) == v for k, v in fields.items())
                    for r in records()
                )

            server.wait_for("scheduled scan", lambda: seen("scan.finished", trigger="scheduler"))
            server.wait_for("alert batch", lambda: seen("alerts.batch"))
            # uvicorn shuts down, then ends by the signal it was sent, as its default would
            assert server.stop() in (0, -signal.SIGTERM)
    finally:
        recorder.close()

    text = server.text()
    for secret in secrets:
        assert secret not in text
    every = [json.loads(line) for line in server.lines()]  # every line is one JSON object
    for line in every:
        assert {"time", "level", "logger", "message"} <= set(line), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])

    def find(event: str) -> list[dict[str, Any]]:
        return [line for line in every if line.get("event") == event]

    [listening] = find("server.listening")
    assert listening["url"] == server.url + "/"
    assert listening["port"] == int(server.url.rsplit(":", 1)[1])
    assert listening["host"] == "127.0.0.1"
    assert listening["scheduler"] is True

    requests = {(r["method"], r["path"]): r for r in find("http.request")}
    got = requests[("GET", "/api/v1/environments")]  # the last of the two: the refused one
    assert got["status"] == 401
    assert got["query"] == f"api_key={REDACTED}"
    assert got["client"] == "127.0.0.1"
    assert isinstance(got["duration_ms"], float)
    listed_line = next(r for r in find("http.request") if r["status"] == 200)
    assert listed_line["query"] == f"token={REDACTED}&x=1"
    posted = requests[("POST", "/api/v1/environments/staging/scans")]
    assert (posted["status"], posted["query"]) == (200, f"wait=true&password={REDACTED}")
    assert requests[("GET", "/")]["query"] == f"access_token={REDACTED}"
    assert not [r for r in find("http.request") if r["path"] == "/api/v1/healthz"]  # DEBUG

    api_scan = next(r for r in find("scan.finished") if r["trigger"] == "api")
    assert api_scan["environment"] == "staging"
    assert api_scan["status"] == "complete"
    assert (api_scan["resources"], api_scan["sources"], api_scan["failed_sources"]) == (1, 1, 0)
    assert isinstance(api_scan["duration_ms"], int)
    started = [r for r in find("scan.started") if r["scan_id"] == api_scan["scan_id"]]
    assert [(r["environment"], r["trigger"]) for r in started] == [("staging", "api")]
    scheduled = next(r for r in find("scan.finished") if r["trigger"] == "scheduler")
    assert scheduled["environment"] == "production"
    [job] = find("schedule.job")
    assert (job["environment"], job["schedule"]) == ("production", "1s")

    batch = find("alerts.batch")[0]
    assert (batch["destinations"], batch["sent"], batch["failed"]) == (1, 1, 0)
    assert find("alert.delivered")[0]["target"] == "webhook:ops"

    assert find("server.stopping")
    assert find("server.stopped")
    uvicorn = [line["message"] for line in every if line["logger"].startswith("uvicorn")]
    assert any(m.startswith("Started server process") for m in uvicorn)
    assert any(m.startswith("Finished server process") for m in uvicorn)


@pytest.mark.slow
def test_scheduler_logs_kv_lines_chosen_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    try:
        setup(tmp_path, recorder.url("/hook"), monkeypatch)
        with running(tmp_path, "scheduler", answers=False, ENVPARITY_LOG_FORMAT="kv") as jobs:

            def finished() -> bool:
                return any("event=scan.finished" in line for line in jobs.lines())

            jobs.wait_for("scheduled scan", finished)
            assert jobs.stop() == 0
    finally:
        recorder.close()
    every = [parse_kv(line) for line in jobs.lines()]
    assert all(list(line)[:4] == ["time", "level", "logger", "message"] for line in every)
    events = [line.get("event") for line in every]
    assert events[:2] == ["scheduler.started", "schedule.job"]
    assert events[-2:] == ["scheduler.stopping", "scheduler.stopped"]
    scan = next(line for line in every if line.get("event") == "scan.finished")
    assert scan["environment"] == "production"
    assert scan["trigger"] == "scheduler"
    assert scan["status"] == "complete"
    assert scan["level"] == "info"
    assert scan["message"].startswith(f"scan #{scan['scan_id']} of production finished")


# --------------------------------------------------------------------------- a port in use


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EnvparityError) as refused:
            listen("127.0.0.1", port)
    assert refused.value.message == (
        f"port {port} on 127.0.0.1 is in use; choose another with --port"
    )
    with pytest.raises(EnvparityError, match=r"^cannot listen on 192\.0\.2\.1: no address of"):
        listen("192.0.2.1", port)  # TEST-NET-1: no machine's own address
    with pytest.raises(EnvparityError, match=r"^--port 70000 is not a port"):
        listen("127.0.0.1", 70000)


@pytest.mark.slow
def test_serve_on_a_busy_port_says_so_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "envparity.yaml").write_text("environments:\n  staging: {}\n", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = subprocess.run(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=installation_env(tmp_path), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is in use; choose another with --port"
    )
