"""A real HTTP proxy in front of moto that answers some requests with AWS errors."""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx

EC2_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
    "<Message>{message}</Message></Error></Errors><RequestID>fault</RequestID></Response>"
)


class FaultProxy:
    """Forwards to `upstream`; `deny` actions get AccessDenied; every `throttle_every`-th
    request gets a throttling error (`throttle_status` 503 or 400 + RequestLimitExceeded);
    every request waits `delay` seconds first (a slow account)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.deny: set[str] = set()
        self.throttle_every = 0
        self.throttle_status = 503
        self.delay = 0.0
        self.counter = itertools.count(1)
        self.faults = 0
        self.requests = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                return None

            def do_POST(self) -> None:
                proxy.handle(self)

            def do_GET(self) -> None:
                proxy.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        target = request.headers.get("X-Amz-Target", "")
        action = (
            target.rsplit(".", 1)[-1] if target else parse_qs(body.decode()).get("Action", [""])[0]
        )
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.requests += 1
            n = next(self.counter)
        if action in self.deny:
            self._error(
                request, 403, "UnauthorizedOperation", f"not authorized to perform {action}", target
            )
            return
        if self.throttle_every and n % self.throttle_every == 0:
            with self.lock:
                self.faults += 1
            if self.throttle_status == 503:
                self._error(request, 503, "ServiceUnavailable", "try again", target)
            else:
                self._error(
                    request,
                    400,
                    "RequestLimitExceeded" if not target else "ThrottlingException",
                    "slow down",
                    target,
                )
            return
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        answer = httpx.request(
            request.command, self.upstream + request.path, headers=headers, content=body, timeout=30
        )
        request.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "content-encoding",
            ):
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(answer.content)))
        request.end_headers()
        request.wfile.write(answer.content)

    def _error(
        self, request: BaseHTTPRequestHandler, status: int, code: str, message: str, target: str
    ) -> None:
        if target:  # JSON protocol (SSM, Secrets Manager, ECS...)
            body = json.dumps({"__type": code, "message": message}).encode()
            content_type = "application/x-amz-json-1.1"
        else:
            body = EC2_ERROR.format(code=code, message=message).encode()
            content_type = "text/xml"
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
