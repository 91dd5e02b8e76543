"""A source whose timeout fired stops working: it does not read on, unseen, in its thread.

Each test gives a source a peer that never finishes (a server trickling its body, a pipe fed a
byte at a time, a slow AWS account with many pages) and checks, from the peer's side, that the
source let go soon after the scan gave up on it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collectors.base import FetchContext
from collectors.files import FileOptions
from collectors.http import HttpOptions
from collectors.runner import TIMEOUT_GRACE, run_source
from tests.support import make_redactor

REDACTOR = make_redactor()


class Trickle:
    """A server whose answer never ends: one byte every 20 ms; it notes when the client hangs
    up."""

    def __init__(self) -> None:
        self.hung_up = threading.Event()
        trickle = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    self.wfile.write(b'{"padding": "')
                    while True:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.02)
                except OSError:
                    trickle.hung_up.set()

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/config"


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    server = Trickle()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.slow
def test_an_http_source_that_timed_out_hangs_up_on_a_trickling_server(
    trickle: Trickle, tmp_path: Path
) -> None:
    # httpx's timeout is per read: bytes every 20 ms never trip it; only the source's does.
    options = HttpOptions(type="http", url=trickle.url, timeout=0.5)
    started = time.monotonic()
    outcome = run_source(options, FetchContext("staging", tmp_path), REDACTOR)
    assert outcome.status == "failed"
    assert "timed out after 0.5s" in (outcome.error or "")
    assert time.monotonic() - started < 0.5 + TIMEOUT_GRACE + 1
    assert trickle.hung_up.wait(3), "the source kept reading after its timeout fired"


@pytest.mark.slow
def test_a_file_source_that_timed_out_stops_reading_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "settings.json"
    os.mkfifo(fifo)
    closed = threading.Event()

    def feed() -> None:  # the writer of a pipe that never ends (a slow mount looks the same)
        try:
            with fifo.open("wb", buffering=0) as fh:
                fh.write(b'{"padding": "')
                while True:
                    fh.write(b"x")
                    time.sleep(0.02)
        except OSError:
            closed.set()

    threading.Thread(target=feed, daemon=True).start()
    options = FileOptions(type="file", path=str(fifo), timeout=0.5)
    outcome = run_source(options, FetchContext("staging", tmp_path), REDACTOR)
    assert outcome.status == "failed"
    assert "timed out after 0.5s" in (outcome.error or "")
    assert closed.wait(3), "the source kept reading the pipe after its timeout fired"
