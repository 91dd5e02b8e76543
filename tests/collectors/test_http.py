"""The `http` source against a real local server: JSON, redirects, failures and what errors show."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collectors.base import CollectorError, FetchContext, Resource
from collectors.http import HttpOptions, HttpSource, public_url
from tests.support import free_port

TOKEN = "Bearer s3cr3t-token"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/config":
            self._send(200, "application/json", {"replicas": 3, "db": {"host": "db.internal"}})
        elif path == "/version":
            self._send(200, "application/json", "1.4.2")
        elif path == "/whoami":
            self._send(200, "application/json", {"authorization": self.headers["Authorization"]})
        elif path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/config")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/down":
            self._send(503, "application/json", {"error": "maintenance"})
        elif path == "/slow":
            time.sleep(0.5)  # past the 0.2 s timeout the test gives
            self._send(200, "application/json", {})
        elif path == "/html":
            self._send(200, "text/html", None, b"<html>password=s3cr3t</html>")
        else:
            self._send(404, "application/json", {})

    def _send(self, status: int, content_type: str, document: Any, body: bytes = b"") -> None:
        payload = body or json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) breaks the pipe; nothing to report


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def closed_port() -> int:
    return free_port()


def collect(tmp_path: Path, **values: Any) -> list[Resource]:
    opts = HttpSource.Options.model_validate({"type": "http", **values})
    assert isinstance(opts, HttpOptions)
    return HttpSource().collect(opts, FetchContext(environment="staging", base_dir=tmp_path))


def test_json_object_becomes_the_attributes_keyed_by_url(tmp_path: Path, server: str) -> None:
    [resource] = collect(tmp_path, url=f"{server}/config?token=abc")

    assert resource.key == f"{server}/config"
    assert resource.attributes == {"replicas": 3, "db": {"host": "db.internal"}}
    assert (resource.category, resource.resource_type) == ("config", "http.json")


def test_json_scalar_sits_under_value(tmp_path: Path, server: str) -> None:
    [resource] = collect(
        tmp_path,
        url=f"{server}/version",
        key="app-version",
        category="packages",
        resource_type="http.version",
    )

    assert (resource.key, resource.attributes) == ("app-version", {"value": "1.4.2"})
    assert (resource.category, resource.resource_type) == ("packages", "http.version")


def test_headers_are_sent(tmp_path: Path, server: str) -> None:
    [resource] = collect(tmp_path, url=f"{server}/whoami", headers={"Authorization": TOKEN})

    assert resource.attributes == {"authorization": TOKEN}


def test_redirects_are_followed(tmp_path: Path, server: str) -> None:
    [resource] = collect(tmp_path, url=f"{server}/moved")

    assert resource.key == f"{server}/moved"
    assert resource.attributes["replicas"] == 3


def test_error_status_names_url_without_query_or_headers(tmp_path: Path, server: str) -> None:
    with pytest.raises(CollectorError) as caught:
        collect(tmp_path, url=f"{server}/down?token=abc", headers={"Authorization": TOKEN})

    message = str(caught.value)
    assert message.startswith(f"GET {server}/down answered 503")
    assert "token" not in message
    assert "s3cr3t" not in message


def test_non_json_body_is_an_error_that_does_not_echo_it(tmp_path: Path, server: str) -> None:
    with pytest.raises(CollectorError) as caught:
        collect(tmp_path, url=f"{server}/html")

    message = str(caught.value)
    assert message.startswith(f"GET {server}/html did not answer JSON: ")
    assert "s3cr3t" not in message


def test_connection_refused_names_the_host(tmp_path: Path, closed_port: int) -> None:
    with pytest.raises(CollectorError, match=r"^cannot connect to 127\.0\.0\.1: ") as caught:
        collect(tmp_path, url=f"http://user:pw-s3cr3t@127.0.0.1:{closed_port}/x?token=abc")

    assert "s3cr3t" not in str(caught.value)
    assert "token" not in str(caught.value)


def test_slow_answer_times_out(tmp_path: Path, server: str) -> None:
    with pytest.raises(CollectorError, match=r"^GET .*/slow timed out after 0\.2s$"):
        collect(tmp_path, url=f"{server}/slow?token=abc", timeout=0.2)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com/v1/config", "https://api.example.com/v1/config"),
        ("https://u:p@api.example.com:8443/v1?token=x#frag", "https://api.example.com:8443/v1"),
        ("http://[::1]:8080/x?y", "http://[::1]:8080/x"),
    ],
)
def test_public_url_drops_userinfo_query_and_fragment(url: str, expected: str) -> None:
    assert public_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/x", "http:///nohost"])
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="http:// or https:// URL"):
        HttpSource.Options.model_validate({"type": "http", "url": url})
