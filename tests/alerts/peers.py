"""Real local HTTP peers that misbehave, for delivery deadlines: one that reads the request and
then answers one byte at a time (a trickle that never ends), one that reads the request and
never answers at all. Each records what it received (headers included) and when."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the whole request had arrived
    closed_at: float | None = None  # when the client gave up on the connection


class _Peer:
    """A TCP server on a free loopback port; `answer(conn)` is what it does once a request
    has been read."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                return
            with self.lock:
                self.received.append(request)
            self.answer(conn)
            request.closed_at = time.monotonic()
        except OSError:
            pass
        finally:
            conn.close()

    def answer(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.closing.set()
        self.listener.close()
        with self.lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class Trickler(_Peer):
    """Answers `200 OK` one byte every `every` seconds, and never finishes the headers."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        super().__init__()

    def answer(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nX-Trickle: "
        sent = 0
        while not self.closing.is_set():
            byte = head[sent : sent + 1] or b"a"
            conn.sendall(byte)  # raises once the client has closed and gone
            sent += 1
            if _closed_by_client(conn, self.every):
                return


class Silent(_Peer):
    """Reads the request and never answers; holds the connection until the client leaves."""

    def answer(self, conn: socket.socket) -> None:
        while not self.closing.is_set():
            if _closed_by_client(conn, 0.2):
                return


def _closed_by_client(conn: socket.socket, wait: float) -> bool:
    """Waits up to `wait` seconds; True if the client closed its side meanwhile."""
    conn.settimeout(wait)
    try:
        return conn.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True
    finally:
        conn.settimeout(None)


def _read_request(conn: socket.socket) -> Received | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Received(headers, body, time.monotonic())
