"""A real TCP proxy on a free loopback port that can go silent: it forwards to its target
until `blackhole()`, after which it still accepts connections and reads what it is sent, and
forwards nothing, in either direction, on old and new connections alike (a silent partition:
the kernel keeps acknowledging, nobody answers)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class Proxy:
    def __init__(self, host: str, port: int, *, forwarding: bool = True) -> None:
        self.target = (host, port)
        self.forwarding = forwarding
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.closing = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def blackhole(self) -> None:
        self.forwarding = False

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.sockets.append(client)
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _pump(self, client: socket.socket) -> None:
        upstream = None
        if self.forwarding:
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                return
            upstream.settimeout(None)
            with self.lock:
                self.sockets.append(upstream)
        peers = {client: upstream, **({upstream: client} if upstream else {})}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            while not self.closing.is_set():
                for key, _ in selector.select(timeout=0.2):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        self._close(peers)
                        return
                    other = peers[sock]
                    if self.forwarding and other is not None:
                        try:
                            other.sendall(data)
                        except OSError:
                            self._close(peers)
                            return
                    # else: swallowed, and the sender hears nothing back
        self._close(peers)

    @staticmethod
    def _close(peers: dict[socket.socket, socket.socket | None]) -> None:
        for sock in peers:
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self.closing.set()
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.close()
