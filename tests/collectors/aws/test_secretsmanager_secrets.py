"""aws.secretsmanager.secrets against a moto server over HTTP: metadata, and values only hashed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from collectors.aws.secretsmanager_secrets import (
    SecretsManagerSecrets,
    canonical_secret,
    secret_attributes,
)
from collectors.base import FetchContext, Resource
from collectors.runner import SourceOutcome
from tests.support import HASHER

T = "aws.secretsmanager.secrets"
PLAINTEXT = "hunter2-correct-horse"
hasher = HASHER


def run(aws: Any, **options: Any) -> SourceOutcome:
    outcome: SourceOutcome = aws.run(T, **options)
    assert outcome.status == "ok", outcome.error
    return outcome


def dump(resources: list[Resource]) -> str:
    return json.dumps([[r.key, r.attributes] for r in resources], default=str)


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS operation called, by name."""
    calls: list[str] = []
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private: untyped)

    def recording(self: BaseClient, operation_name: str, api_params: Any) -> Any:
        calls.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


def test_every_secret_past_one_page(aws: Any) -> None:
    sm = aws.client("secretsmanager")
    for i in range(105):  # ListSecrets returns 100 a page
        sm.create_secret(Name=f"staging/app/s{i:03d}", SecretString=f"v{i}")
    secrets = aws.by_key(T)
    assert len(secrets) == 105
    assert "staging/app/s104" in secrets


def test_metadata_of_a_secret(aws: Any) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(
        Name="staging/orders/db",
        SecretString=PLAINTEXT,
        Description="orders database",
        KmsKeyId="alias/orders",
        Tags=[{"Key": "team", "Value": "orders"}],
    )
    sm.rotate_secret(
        SecretId="staging/orders/db",
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    sm.create_secret(Name="staging/plain", SecretString="x")

    secrets = aws.by_key(T)

    db = secrets["staging/orders/db"]
    assert db.category == "config"
    assert db.resource_type == "aws.secretsmanager.secret"
    attrs = db.attributes
    assert attrs["description"] == "orders database"
    assert attrs["kms_key_id"] == "alias/orders"
    assert attrs["rotation_enabled"] is True
    assert attrs["rotation_days"] == 30
    assert attrs["tags"] == {"team": "orders"}
    assert attrs["last_changed"]
    plain = secrets["staging/plain"].attributes
    assert plain["kms_key_id"] == "alias/aws/secretsmanager"
    assert plain["rotation_enabled"] is False
    assert plain["rotation_days"] is None


@pytest.mark.slow
def test_metadata_mode_never_reads_a_value(aws: Any, api_calls: list[str]) -> None:
    aws.client("secretsmanager").create_secret(Name="staging/db", SecretString=PLAINTEXT)
    api_calls.clear()

    outcome = run(aws)

    assert "ListSecrets" in api_calls
    assert "GetSecretValue" not in api_calls
    [secret] = outcome.resources
    assert "value" not in secret.attributes
    assert secret.secret_paths == ()
    assert PLAINTEXT not in dump(outcome.resources)


def test_hash_mode_keeps_only_keyed_hashes(aws: Any) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="staging/orders/api", SecretString=PLAINTEXT)
    sm.create_secret(Name="staging/billing/api", SecretString=PLAINTEXT)
    sm.create_secret(Name="staging/other", SecretString="something else")
    sm.create_secret(Name="staging/db", SecretString='{"username": "app", "password": "pw1"}')
    sm.create_secret(Name="staging/db-copy", SecretString='{"password":"pw1","username":"app"}')
    sm.create_secret(Name="staging/binary", SecretBinary=b"\x00\x01binary")
    sm.create_secret(Name="staging/empty")  # no value yet

    outcome = run(aws, secrets="hash")

    text = dump(outcome.resources)
    for plain in (PLAINTEXT, "pw1", "username", "something else", "AAFiaW5hcnk="):
        assert plain not in text
    values = {r.key: r.attributes["value"] for r in outcome.resources}
    assert values["staging/orders/api"] == hasher(PLAINTEXT)
    # One secret shared by two services: equal hashes, which is how reuse is found.
    assert values["staging/billing/api"] == values["staging/orders/api"]
    assert values["staging/other"] != values["staging/orders/api"]
    # JSON secrets are hashed whole, in canonical form: key order and spacing do not count.
    assert values["staging/db"].startswith("secret:hmac-sha256:")
    assert values["staging/db-copy"] == values["staging/db"]
    assert values["staging/binary"].startswith("secret:hmac-sha256:")
    assert values["staging/empty"] is None


def test_hash_mode_hashes_inside_fetch_with_the_scan_key(aws: Any) -> None:
    aws.client("secretsmanager").create_secret(Name="staging/db", SecretString=PLAINTEXT)

    options = aws.options(T, secrets="hash")
    ctx = FetchContext(environment="staging", base_dir=Path("."), hash_secret=hasher)
    raw = SecretsManagerSecrets().fetch(options, ctx)
    assert PLAINTEXT not in json.dumps(raw, default=str)
    [secret] = SecretsManagerSecrets().normalize(raw, options)
    assert secret.attributes["value"] == hasher(PLAINTEXT)
    assert secret.secret_paths == (("value",),)


def test_tag_filters_and_no_value_read_for_the_others(aws: Any, api_calls: list[str]) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="a", SecretString="1", Tags=[{"Key": "env", "Value": "staging"}])
    sm.create_secret(Name="b", SecretString="2", Tags=[{"Key": "env", "Value": "production"}])
    api_calls.clear()

    secrets = aws.by_key(T, secrets="hash", filters={"tag:env": "staging"})

    assert set(secrets) == {"a"}
    assert api_calls.count("GetSecretValue") == 1


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (
            {
                "Name": "s",
                "RotationEnabled": True,
                "RotationLambdaARN": "arn:aws:lambda:us-east-1:123456789012:function:rotate-pg",
                "RotationRules": {"ScheduleExpression": "rate(10 days)"},
            },
            {
                "rotation_enabled": True,
                "rotation_lambda": "rotate-pg",
                "rotation_schedule": "rate(10 days)",
                "rotation_days": None,
            },
        ),
        ({"Name": "s", "Value": None}, {"value": None}),
        ({"Name": "s", "Tags": [{"Key": "k", "Value": "v"}]}, {"tags": {"k": "v"}}),
    ],
)
def test_secret_attributes(secret: dict[str, Any], expected: dict[str, Any]) -> None:
    attributes = secret_attributes(secret)
    assert {k: attributes.get(k, "<absent>") for k in expected} == expected


def test_canonical_secret() -> None:
    assert canonical_secret('{ "b": 1, "a": [2, 3] }') == '{"a":[2,3],"b":1}'
    assert canonical_secret("plain text") == "plain text"
    assert canonical_secret("{not json") == "{not json"
