"""aws.lambda.functions against a moto server over HTTP: settings, variables, runtime, layers."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from collectors.aws.lambda_functions import function_resources, layer_versions
from collectors.runner import SourceOutcome
from tests.support import HASHER

T = "aws.lambda.functions"
PLAINTEXT = "hunter2-correct-horse"
hasher = HASHER


def run(aws: Any, **options: Any) -> SourceOutcome:
    outcome: SourceOutcome = aws.run(T, **options)
    assert outcome.status == "ok", outcome.error
    return outcome


def code() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return 1\n")
    return buf.getvalue()


def role(aws: Any) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn: str = aws.client("iam").create_role(
        RoleName="orders-staging", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    return arn


def make_function(aws: Any, name: str, **extra: Any) -> None:
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": role(aws) if "Role" not in extra else extra.pop("Role"),
        "Handler": "app.handler",
        "Code": {"ZipFile": code()},
        **extra,
    }
    aws.client("lambda").create_function(**params)


def test_settings_variables_and_versions(aws: Any) -> None:
    api = aws.client("lambda")
    api.publish_layer_version(LayerName="deps", Content={"ZipFile": code()})
    deps = api.publish_layer_version(LayerName="deps", Content={"ZipFile": code()})
    otel = api.publish_layer_version(LayerName="otel", Content={"ZipFile": code()})
    make_function(
        aws,
        "orders-staging",
        Environment={
            "Variables": {
                "LOG_LEVEL": "info",
                "DB_PASSWORD": PLAINTEXT,
                "DATABASE_URL": f"postgres://app:{PLAINTEXT}@db.staging.internal/orders",
            }
        },
        Layers=[otel["LayerVersionArn"], deps["LayerVersionArn"]],
        TracingConfig={"Mode": "Active"},
        EphemeralStorage={"Size": 1024},
        Architectures=["arm64"],
        MemorySize=256,
        Timeout=10,
    )

    outcome = run(aws)

    by_type = {r.resource_type: r for r in outcome.resources}
    assert set(by_type) == {"aws.lambda.function", "aws.lambda.runtime"}
    config = by_type["aws.lambda.function"]
    assert config.category == "config"
    assert config.key == "orders-staging"
    attrs = config.attributes
    assert attrs["handler"] == "app.handler"
    assert attrs["memory"] == 256
    assert attrs["timeout"] == 10
    assert attrs["architectures"] == ["arm64"]
    assert attrs["ephemeral_storage"] == 1024
    assert attrs["tracing"] == "Active"
    assert attrs["role"].endswith(":role/orders-staging")
    env = attrs["environment"]
    assert env["LOG_LEVEL"] == "info"
    # Secret-looking names and URL passwords are hashed by the runner, nothing else.
    assert env["DB_PASSWORD"] == hasher(PLAINTEXT)
    assert env["DATABASE_URL"] == (f"postgres://app:{hasher(PLAINTEXT)}@db.staging.internal/orders")
    assert PLAINTEXT not in json.dumps([r.attributes for r in outcome.resources])

    packages = by_type["aws.lambda.runtime"]
    assert packages.category == "packages"
    assert packages.key == "orders-staging"
    assert packages.attributes == {"runtime": "python3.12", "layers": {"deps": 2, "otel": 1}}


@pytest.mark.slow
def test_defaults_of_a_plain_function(aws: Any) -> None:
    make_function(aws, "worker")
    functions = {(r.resource_type, r.key): r.attributes for r in aws.collect(T)}
    config = functions[("aws.lambda.function", "worker")]
    assert config["environment"] == {}
    assert config["architectures"] == ["x86_64"]
    assert "tags" not in config  # tags cost a call per function: only read for filters
    assert functions[("aws.lambda.runtime", "worker")]["layers"] == {}


def test_tag_filters_select_functions(aws: Any) -> None:
    arn = role(aws)
    make_function(aws, "orders-staging", Role=arn, Tags={"env": "staging", "team": "orders"})
    make_function(aws, "orders-production", Role=arn, Tags={"env": "production"})
    make_function(aws, "untagged", Role=arn)

    resources = aws.collect(T, filters={"tag:env": "staging"})

    assert {r.key for r in resources} == {"orders-staging"}
    config = next(r for r in resources if r.resource_type == "aws.lambda.function")
    assert config.attributes["tags"] == {"env": "staging", "team": "orders"}


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ([], {}),
        (
            [
                {"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:deps:7"},
                {"Arn": "arn:aws:lambda:us-east-1:464622532012:layer:Datadog-Extension:45"},
            ],
            {"deps": 7, "Datadog-Extension": 45},
        ),
        (
            [
                {"Arn": "arn:aws:lambda:us-east-1:111111111111:layer:deps:1"},
                {"Arn": "arn:aws:lambda:us-east-1:222222222222:layer:deps:3"},
            ],
            {
                "arn:aws:lambda:us-east-1:111111111111:layer:deps": 1,
                "arn:aws:lambda:us-east-1:222222222222:layer:deps": 3,
            },
        ),
    ],
)
def test_layer_versions(layers: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    assert layer_versions(layers) == expected


def test_function_resources_from_a_recorded_response() -> None:
    recorded = {
        "FunctionName": "img",
        "PackageType": "Image",
        "MemorySize": 2048,
        "Timeout": 900,
        "Environment": {"Error": {"ErrorCode": "KMSAccessDeniedException", "Message": "..."}},
        "LastModified": "2026-11-20T10:00:00.000+0000",
    }
    config, packages = function_resources(recorded, "img", None)
    assert config.attributes["package_type"] == "Image"
    assert config.attributes["environment"] == {}
    assert config.attributes["environment_error"] == "KMSAccessDeniedException"
    assert packages.attributes == {"runtime": None, "layers": {}}
