"""A moto server over real HTTP for the AWS source types; state is reset before each test
(the server and the helper live in tests/support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import AWS_TEST_CREDENTIALS, AwsHelper, moto_server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> AwsHelper:
    for name, value in AWS_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    helper = AwsHelper(moto_endpoint)
    helper.reset()
    return helper
