"""aws.ssm.parameters against a moto server over HTTP: values, pagination, SecureStrings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collectors.aws.ssm_parameters import SsmParameters, parameter_attributes
from collectors.base import FetchContext, Resource
from collectors.runner import SourceOutcome
from tests.support import HASHER

T = "aws.ssm.parameters"
PLAINTEXT = "hunter2-correct-horse"
hasher = HASHER


def run(aws: Any, **options: Any) -> SourceOutcome:
    outcome: SourceOutcome = aws.run(T, **options)
    assert outcome.status == "ok", outcome.error
    return outcome


def dump(resources: list[Resource]) -> str:
    return json.dumps([[r.key, r.attributes] for r in resources], default=str)


def put(ssm: Any, name: str, value: str, kind: str = "String", **extra: Any) -> None:
    ssm.put_parameter(Name=name, Value=value, Type=kind, **extra)


def test_every_parameter_under_the_path_past_one_page(aws: Any) -> None:
    ssm = aws.client("ssm")
    for i in range(27):  # GetParametersByPath returns 10 a page
        put(ssm, f"/app/staging/feature/f{i:02d}", f"on-{i}")
    put(ssm, "/app/staging/db/host", "db.staging.internal", Description="primary")
    put(ssm, "/app/production/db/host", "db.production.internal")
    put(ssm, "/other/thing", "x")

    params = aws.by_key(T, path="/app/staging/")

    assert len(params) == 28
    assert "/app/production/db/host" not in params
    host = params["/app/staging/db/host"]
    assert host.category == "config"
    assert host.resource_type == "aws.ssm.parameter"
    assert host.secret_paths == ()
    attrs = host.attributes
    assert attrs["value"] == "db.staging.internal"
    assert attrs["type"] == "String"
    assert attrs["data_type"] == "text"
    assert attrs["tier"] == "Standard"
    assert attrs["description"] == "primary"
    assert attrs["version"] == 1
    assert attrs["last_modified"]
    assert params["/app/staging/feature/f26"].attributes["value"] == "on-26"


def test_not_recursive_reads_one_level(aws: Any) -> None:
    ssm = aws.client("ssm")
    put(ssm, "/app/staging/region", "us-east-1")
    put(ssm, "/app/staging/db/host", "db")
    assert set(aws.by_key(T, path="/app/staging", recursive=False)) == {"/app/staging/region"}


def test_securestring_metadata_mode_never_keeps_the_value(aws: Any) -> None:
    ssm = aws.client("ssm")
    put(ssm, "/app/staging/db/password", PLAINTEXT, "SecureString")
    put(ssm, "/app/staging/api/key", PLAINTEXT + "-2", "SecureString", KeyId="alias/orders")

    options = aws.options(T, path="/app/staging/")
    raw = SsmParameters().fetch(options, FetchContext("staging", Path(".")))
    assert PLAINTEXT not in json.dumps(raw, default=str)  # dropped on arrival, not later
    resources = SsmParameters().normalize(raw, options)
    outcome = run(aws, path="/app/staging/")

    # moto returns SecureString values readable even without decryption: dropped all the same.
    for found in (resources, outcome.resources):
        assert PLAINTEXT not in dump(found)
        assert "hunter2" not in dump(found)
    params = {r.key: r for r in resources}
    password = params["/app/staging/db/password"].attributes
    assert "value" not in password
    assert password["type"] == "SecureString"
    assert password["key_id"] == "alias/aws/ssm"
    assert password["version"] == 1
    assert params["/app/staging/api/key"].attributes["key_id"] == "alias/orders"


def test_securestring_hash_mode_keeps_a_keyed_hash(aws: Any) -> None:
    ssm = aws.client("ssm")
    put(ssm, "/app/staging/db/password", PLAINTEXT, "SecureString")
    put(ssm, "/app/staging/replica/password", PLAINTEXT, "SecureString")
    put(ssm, "/app/staging/api/key", "another-value", "SecureString")

    outcome = run(aws, path="/app/staging/", secrets="hash")

    assert PLAINTEXT not in dump(outcome.resources)
    params = {r.key: r.attributes for r in outcome.resources}
    primary = params["/app/staging/db/password"]["value"]
    assert primary.startswith("secret:hmac-sha256:")
    assert primary == hasher(PLAINTEXT)
    # Equal plaintexts give equal hashes (secret reuse can be found), others differ.
    assert params["/app/staging/replica/password"]["value"] == primary
    assert params["/app/staging/api/key"]["value"] != primary
    assert params["/app/staging/api/key"]["type"] == "SecureString"


def test_hash_mode_hashes_inside_fetch_with_the_scan_key(aws: Any) -> None:
    put(aws.client("ssm"), "/app/staging/db/password", PLAINTEXT, "SecureString")
    source = aws.options(T, path="/app/staging/", secrets="hash")
    ctx = FetchContext(environment="staging", base_dir=Path("."), hash_secret=hasher)
    raw = SsmParameters().fetch(source, ctx)
    assert PLAINTEXT not in json.dumps(raw, default=str)
    [resource] = SsmParameters().normalize(raw, source)
    assert resource.attributes["value"] == hasher(PLAINTEXT)
    assert resource.secret_paths == (("value",),)


@pytest.mark.slow
def test_string_with_a_secret_looking_name_is_hashed(aws: Any) -> None:
    ssm = aws.client("ssm")
    put(ssm, "/app/staging/db/password", PLAINTEXT)  # a plain String, wrongly
    put(ssm, "/app/staging/db/user", "orders")
    params = {r.key: r.attributes for r in run(aws, path="/app/staging/").resources}
    assert params["/app/staging/db/password"]["value"] == hasher(PLAINTEXT)
    assert params["/app/staging/db/user"]["value"] == "orders"


def test_secrets_inside_string_values_are_hashed_in_place(aws: Any) -> None:
    ssm = aws.client("ssm")
    put(ssm, "/app/staging/db/url", "postgres://app:Ssm-Url-Pw-41@db-staging.internal/app")
    put(ssm, "/app/staging/db/jdbc", "jdbc:postgresql://db/app?user=app&password=Ssm-Jdbc-42")
    put(ssm, "/app/staging/uploader", "AKIAQQQQQQQQQQQQ4343")
    put(ssm, "/app/staging/conn", "Server=db;User Id=app;Password=Ssm-Ado-44;")
    outcome = run(aws, path="/app/staging/")
    text = dump(outcome.resources)
    for secret in ("Ssm-Url-Pw-41", "Ssm-Jdbc-42", "AKIAQQQQQQQQQQQQ4343", "Ssm-Ado-44"):
        assert secret not in text
    params = {r.key: r.attributes["value"] for r in outcome.resources}
    assert params["/app/staging/db/url"].startswith("postgres://app:secret:hmac-sha256:")
    assert params["/app/staging/db/url"].endswith("@db-staging.internal/app")
    assert params["/app/staging/uploader"] == hasher("AKIAQQQQQQQQQQQQ4343")
    assert outcome.census is not None
    assert outcome.census["counts"] == {
        "assignment": 1,
        "aws_access_key_id": 1,
        "query_param": 1,
        "url_password": 1,
    }


def test_stringlist_is_a_sorted_list(aws: Any) -> None:
    put(aws.client("ssm"), "/app/staging/cors", "https://b.example,https://a.example", "StringList")
    [param] = aws.collect(T, path="/app/staging/")
    assert param.attributes["type"] == "StringList"
    assert param.attributes["value"] == ["https://a.example", "https://b.example"]


def test_tag_filters_select_parameters(aws: Any) -> None:
    ssm = aws.client("ssm")
    put(ssm, "/app/staging/a", "1", Tags=[{"Key": "team", "Value": "orders"}])
    put(ssm, "/app/staging/b", "2", Tags=[{"Key": "team", "Value": "billing"}])
    put(ssm, "/app/staging/c", "3")

    params = aws.by_key(T, path="/app/staging/", filters={"tag:team": "ord*"})

    assert set(params) == {"/app/staging/a"}
    assert params["/app/staging/a"].attributes["tags"] == {"team": "orders"}
    # Without filters no tags are fetched (one call per parameter), so none are reported.
    assert "tags" not in aws.by_key(T, path="/app/staging/")["/app/staging/a"].attributes


def test_several_regions_prefix_the_key(aws: Any) -> None:
    for region in ("us-east-1", "eu-west-1"):
        put(aws.client("ssm", region), "/app/staging/x", region)
    params = aws.by_key(T, path="/app/staging/", region=None, regions=["us-east-1", "eu-west-1"])
    assert params["eu-west-1/app/staging/x"].attributes["value"] == "eu-west-1"
    assert set(params) == {"us-east-1/app/staging/x", "eu-west-1/app/staging/x"}


def test_missing_path_is_an_options_error(aws: Any) -> None:
    with pytest.raises(ValueError, match="path"):
        aws.options(T)
    with pytest.raises(ValueError, match="secrets"):
        aws.options(T, path="/a/", secrets="plain")


@pytest.mark.parametrize(
    ("parameter", "mode", "expected", "secret"),
    [
        # A SecureString value returned despite WithDecryption=False is never kept.
        (
            {"Name": "/a/pw", "Type": "SecureString", "Value": "kms:alias/aws/ssm:p"},
            "metadata",
            {"type": "SecureString", "key_id": "alias/x"},
            False,
        ),
        (
            {"Name": "/a/pw", "Type": "SecureString", "Value": "p"},
            "hash",
            {"type": "SecureString", "key_id": "alias/x", "value": "p"},
            True,
        ),
        (
            {"Name": "/a/l", "Type": "StringList", "Value": "b,a,c"},
            "hash",
            {"value": ["a", "b", "c"]},
            False,
        ),
        (
            {"Name": "/a/api_token", "Type": "String", "Value": "t"},
            "metadata",
            {"value": "t"},
            True,
        ),
        (
            {"Name": "/a/author", "Type": "String", "Value": "me"},
            "metadata",
            {"value": "me"},
            False,
        ),
    ],
)
def test_parameter_attributes(
    parameter: dict[str, Any], mode: Any, expected: dict[str, Any], secret: bool
) -> None:
    attributes, is_secret = parameter_attributes(parameter, {"KeyId": "alias/x"}, mode)
    assert {k: attributes.get(k) for k in expected} == expected
    if mode == "metadata" and parameter["Type"] == "SecureString":
        assert "value" not in attributes
    assert is_secret is secret
