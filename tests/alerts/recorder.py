"""A real local HTTP server standing in for Slack and webhook receivers: it records every
request and answers what a test scripted (429 with Retry-After, 500, 404 ...), else 200."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived
    status: int  # what the recorder answered

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: dict[str, list[tuple[int, dict[str, str], str]]] = {}
        self.lock = threading.Lock()
        self.ts = itertools.count(1)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, text = recorder._answer(self.path)
                with recorder.lock:
                    recorder.requests.append(
                        Recorded(self.path, dict(self.headers), body, time.monotonic(), status)
                    )
                payload = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def respond(self, path: str, *answers: tuple[int, dict[str, str], str]) -> None:
        """The next requests to `path` get these answers, in order; then 200."""
        with self.lock:
            self.script.setdefault(path, []).extend(answers)

    def _answer(self, path: str) -> tuple[int, dict[str, str], str]:
        with self.lock:
            queue = self.script.get(path)
            if queue:
                return queue.pop(0)
        if path.endswith("/chat.postMessage"):  # Slack's Web API answers JSON with a ts
            ts = f"1700000000.{next(self.ts):06d}"
            body = json.dumps({"ok": True, "channel": "C0PARITY", "ts": ts})
            return 200, {"Content-Type": "application/json"}, body
        return 200, {"Content-Type": "text/plain"}, "ok"

    def to(self, path: str, accepted_only: bool = True) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r.path == path and (not accepted_only or 200 <= r.status < 300)
            ]

    def wait_for(self, path: str, count: int, timeout: float = 15) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while len(self.to(path)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.to(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
