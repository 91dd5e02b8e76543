"""A moto server over real HTTP for the AWS source types; state is reset before each test."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from collectors import registry
from collectors.base import FetchContext, Resource
from collectors.runner import SourceOutcome, run_source
from collectors.secrets import Redactor, SecretHasher


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> AwsHelper:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    httpx.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return AwsHelper(moto_endpoint)


class AwsHelper:
    """boto3 clients on the moto server, and a way to run a source type against it."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def options(self, type_name: str, **options: Any) -> Any:
        cls = registry.get(type_name)
        assert cls is not None, type_name
        options.setdefault("region", "us-east-1")
        return cls.Options.model_validate(
            {"type": type_name, "endpoint_url": self.endpoint, **options}
        )

    def collect(self, type_name: str, **options: Any) -> list[Resource]:
        cls = registry.get(type_name)
        assert cls is not None
        ctx = FetchContext(environment="staging", base_dir=Path("."))
        return cls().collect(self.options(type_name, **options), ctx)

    def run(self, type_name: str, **options: Any) -> SourceOutcome:
        """Through the scan's runner: timeout, errors caught, secrets hashed (key `k` * 32)."""
        ctx = FetchContext(environment="staging", base_dir=Path("."))
        return run_source(
            self.options(type_name, **options), ctx, Redactor(SecretHasher(b"k" * 32))
        )

    def by_key(self, type_name: str, **options: Any) -> dict[str, Resource]:
        return {r.key: r for r in self.collect(type_name, **options)}
