"""One HTTP POST under a total deadline: connecting, sending and reading the whole answer end
by a fixed time however slowly the peer trickles, and the caller learns whether the request
had been sent in full (the peer may have acted on it) when no answer came.

httpx's timeouts bound each socket operation, not the request: a peer that sends one byte
every 5 seconds never trips a 10-second read timeout. So a timer shuts the connection's
socket down at the deadline (the socket comes from httpx's documented `trace` extension, which
also says when the request body was sent), and the blocked read returns at once."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

MAX_ANSWER_BYTES = 64 * 1024  # an answer is a status and a short text: the rest is not read


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    text: str


class Unsent(Exception):
    """The request did not reach the peer in full (refused, unreachable, cut while sending)."""


class Unanswered(Exception):
    """The request was sent in full, and no whole answer came before the deadline (or the
    peer closed without one): the peer may have acted on it."""


class _Watch:
    """The trace callback of one request: keeps its socket, notes when the body was sent,
    and shuts the socket down if the deadline comes first."""

    def __init__(self, seconds: float) -> None:
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.sent = False
        self.cut = False
        self.done = False
        self.timer = threading.Timer(seconds, self._cut)
        self.timer.daemon = True
        self.timer.start()

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            with self.lock:
                self.sock = sock if isinstance(sock, socket.socket) else None
                if self.cut:  # connected just as the time ran out
                    self._shutdown()
        elif name == "http11.send_request_body.complete":
            self.sent = True

    def _cut(self) -> None:
        with self.lock:
            if self.done:
                return
            self.cut = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self.sock is None:
            return
        with contextlib.suppress(OSError):  # already closed
            self.sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with self.lock:
            self.done = True
        self.timer.cancel()


def post(url: str, body: bytes, headers: dict[str, str], deadline: float) -> Answer:
    """POSTs `body` and reads the answer (its first 64 KiB), all before `deadline` (a
    time.monotonic() value). Raises Unsent or Unanswered; never returns late."""
    seconds = deadline - time.monotonic()
    if seconds <= 0:
        raise Unsent("no time left to send")
    watch = _Watch(seconds)
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(seconds), follow_redirects=False) as client,
            client.stream(
                "POST", url, content=body, headers=headers, extensions={"trace": watch.trace}
            ) as response,
        ):
            answer = bytearray()
            for chunk in response.iter_bytes():
                answer += chunk
                if len(answer) >= MAX_ANSWER_BYTES:
                    break
            return Answer(response.status_code, response.headers, _text(response, answer))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # Never str(exc): it may carry the URL, and a Slack webhook's URL is a secret.
        if watch.sent:
            raise Unanswered(
                f"no answer within {seconds:.3g} s" if watch.cut else type(exc).__name__
            ) from None
        raise Unsent(
            f"not sent within {seconds:.3g} s" if watch.cut else type(exc).__name__
        ) from None
    finally:
        watch.finish()


def _text(response: httpx.Response, body: bytearray) -> str:
    try:
        return bytes(body[:MAX_ANSWER_BYTES]).decode(response.encoding or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return bytes(body[:MAX_ANSWER_BYTES]).decode("utf-8", "replace")
