"""The diff engine, table-driven and pure: no database, no files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.diff.engine import compare
from app.diff.model import DriftItem, Rules, Side, SideResource, SourceState, Tolerance, Waiver
from tests.support import HASHER

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
hash_secret = HASHER
STAGING_VARS = {"env": "staging", "vpc_cidr": "10.1.0.0/16"}
PRODUCTION_VARS = {"env": "production", "vpc_cidr": "10.2.0.0/16"}
ENVIRONMENTS = {"staging": STAGING_VARS, "production": PRODUCTION_VARS}


def res(
    key: str,
    attributes: dict[str, Any],
    category: str = "config",
    resource_type: str = "file",
    source: str = "main",
) -> SideResource:
    return SideResource(source, category, resource_type, key, attributes)


def side(
    env: str,
    resources: list[SideResource],
    failed: tuple[str, ...] = (),
    vars: dict[str, str] | None = None,
) -> Side:
    sources = {"main": SourceState("main", "file", "ok")}
    for name in failed:
        sources[name] = SourceState(name, "command", "failed", "command exited with status 1")
    return Side(
        environment=env,
        snapshot_id=None,
        taken_at=NOW,
        status="partial" if failed else "complete",
        vars=vars if vars is not None else ENVIRONMENTS.get(env, {"env": env}),
        sources=sources,
        resources=resources,
    )


def diff(
    left: list[SideResource], right: list[SideResource], rules: Rules | None = None, **kw: Any
) -> list[DriftItem]:
    result = compare(
        side("staging", left, **kw.get("left_kw", {})),
        side("production", right, **kw.get("right_kw", {})),
        rules or Rules(environments=ENVIRONMENTS),
        NOW,
    )
    return result.items


def brief(items: list[DriftItem]) -> list[tuple[str, str, str]]:
    return [(i.key, i.path, i.change) for i in items]


RULE_22 = {
    "protocol": "tcp",
    "from_port": 22,
    "to_port": 22,
    "cidr": "0.0.0.0/0",
    "label": "tcp/22 from 0.0.0.0/0",
}
RULE_443 = {
    "protocol": "tcp",
    "from_port": 443,
    "to_port": 443,
    "cidr": "10.1.0.0/16",
    "label": "tcp/443 from {vpc_cidr}",
}


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        pytest.param(
            [
                res(
                    "web",
                    {
                        "instance_id": "i-0a1b2c3d4e5f60718",
                        "sg": "sg-0123456789abcdef0",
                        "type": "m5.large",
                    },
                    "instances",
                    "aws.ec2.instance",
                )
            ],
            [
                res(
                    "web",
                    {
                        "instance_id": "i-0fedcba9876543210",
                        "sg": "sg-0fedcba9876543210",
                        "type": "m5.large",
                    },
                    "instances",
                    "aws.ec2.instance",
                )
            ],
            [],
            id="only-ids-differ",
        ),
        pytest.param(
            [
                res(
                    "arn",
                    {
                        "role": "arn:aws:iam::111111111111:role/app",
                        "uuid": "0b7e3c1a-52b3-4f7e-9a51-2f1c0d9e8a77",
                    },
                )
            ],
            [
                res(
                    "arn",
                    {
                        "role": "arn:aws:iam::222222222222:role/app",
                        "uuid": "9d1c2b3a-0000-4f7e-9a51-2f1c0d9e8a77",
                    },
                )
            ],
            [],
            id="account-ids-in-arns-and-uuids",
        ),
        pytest.param(
            [
                res(
                    "deploy/staging/app.yaml",
                    {
                        "service": "orders-staging",
                        "db": {"host": "orders-db-staging.internal"},
                        "cidr": "10.1.0.0/16",
                    },
                )
            ],
            [
                res(
                    "deploy/production/app.yaml",
                    {
                        "service": "orders-production",
                        "db": {"host": "orders-db-production.internal"},
                        "cidr": "10.2.0.0/16",
                    },
                )
            ],
            [],
            id="environment-names-in-keys-and-values",
        ),
        pytest.param(
            [
                res(
                    "sg",
                    {
                        "ingress": [
                            RULE_443,
                            {**RULE_22, "cidr": "10.1.0.0/16", "label": "tcp/22 from {vpc_cidr}"},
                        ]
                    },
                    "network",
                    "aws.ec2.security_group",
                )
            ],
            [
                res(
                    "sg",
                    {
                        "ingress": [
                            {**RULE_22, "cidr": "10.2.0.0/16", "label": "tcp/22 from {vpc_cidr}"},
                            {**RULE_443, "cidr": "10.2.0.0/16"},
                        ]
                    },
                    "network",
                    "aws.ec2.security_group",
                )
            ],
            [],
            id="reordered-rules",
        ),
        pytest.param(
            [res("cfg", {"allowed": ["b", "a", "c"], "product": "prod-catalog"})],
            [res("cfg", {"allowed": ["c", "b", "a"], "product": "prod-catalog"})],
            [],
            id="reordered-list-and-prod-is-not-production",
        ),
        pytest.param(
            [res("sg", {"ingress": [RULE_443]}, "network", "aws.ec2.security_group")],
            [
                res(
                    "sg",
                    {"ingress": [{**RULE_443, "cidr": "10.2.0.0/16"}, RULE_22]},
                    "network",
                    "aws.ec2.security_group",
                )
            ],
            [("sg", "ingress[tcp/22 from 0.0.0.0/0]", "added")],
            id="one-rule-added",
        ),
        pytest.param(
            [res("app.yaml", {"database": {"pool_size": 10, "port": 5432}})],
            [res("app.yaml", {"database": {"pool_size": 20, "port": 5432}})],
            [("app.yaml", "database.pool_size", "changed")],
            id="one-value-changed",
        ),
        pytest.param(
            [res("a", {}), res("b", {"x": 1})],
            [res("b", {"x": 1}), res("c", {})],
            [("a", "", "removed"), ("c", "", "added")],
            id="whole-resources",
        ),
        pytest.param(
            [res("app.env", {"DB_PASSWORD": hash_secret("staging-pw")})],
            [res("app.env", {"DB_PASSWORD": hash_secret("production-pw")})],
            [],
            id="secrets-differ-across-environments",
        ),
        pytest.param(
            [res("app.env", {"API_TOKEN": hash_secret("shared")})],
            [res("app.env", {"API_TOKEN": hash_secret("shared")})],
            [("app.env", "API_TOKEN", "secret_reused")],
            id="same-secret-in-both",
        ),
        pytest.param(
            [res("app.env", {"API_TOKEN": hash_secret("only-staging")})],
            [res("app.env", {})],
            [("app.env", "API_TOKEN", "removed")],
            id="secret-presence",
        ),
        pytest.param(
            [res("app.yaml", {"cache": {"host": "cache-production.internal"}})],
            [res("app.yaml", {"cache": {"host": "cache-production.internal"}})],
            [("app.yaml", "cache.host", "leak")],
            id="staging-names-production",
        ),
        pytest.param(
            [res("app.yaml", {"replica": "10.2.7.14"})],
            [res("app.yaml", {"replica": "10.2.7.14"})],
            [("app.yaml", "replica", "leak")],
            id="staging-uses-an-address-in-production-cidr",
        ),
        pytest.param(
            [res("app.yaml", {"log": "/var/log/production-notes", "path": "/production/"})],
            [res("app.yaml", {"log": "/var/log/{env}-notes", "path": "/{env}/"})],
            [("app.yaml", "log", "leak"), ("app.yaml", "path", "leak")],
            id="long-names-count-anywhere",
        ),
    ],
)
def test_cross_environment_table(
    left: list[SideResource], right: list[SideResource], expected: list[tuple[str, str, str]]
) -> None:
    assert sorted(brief(diff(left, right))) == sorted(expected)


def test_short_environment_names_need_separators_to_count_as_leaks() -> None:
    envs = {"qa": {"env": "qa"}, "dev": {"env": "dev"}}
    left = Side(
        "qa",
        None,
        NOW,
        "complete",
        {"env": "qa"},
        {"main": SourceState("main", "file", "ok")},
        [res("f", {"null": "/dev/null", "profile": "dev", "host": "api-dev.internal"})],
    )
    right = Side(
        "dev",
        None,
        NOW,
        "complete",
        {"env": "dev"},
        {"main": SourceState("main", "file", "ok")},
        [res("f", {"null": "/dev/null", "profile": "dev", "host": "api-dev.internal"})],
    )
    items = compare(left, right, Rules(environments=envs), NOW).items
    assert ("f", "host", "leak") in brief(items)
    assert not [i for i in items if i.path in ("null",) and i.change == "leak"]
    assert not [i for i in items if i.path == "profile" and i.change == "leak"]


def test_one_rule_added_reads_at_a_glance() -> None:
    [item] = diff(
        [res("web-{env}", {"ingress": [RULE_443]}, "network", "aws.ec2.security_group")],
        [
            res(
                "web-{env}",
                {"ingress": [{**RULE_443, "cidr": "10.2.0.0/16"}, RULE_22]},
                "network",
                "aws.ec2.security_group",
            )
        ],
    )
    assert item.path == "ingress[tcp/22 from 0.0.0.0/0]"
    assert item.left is None
    assert item.right == {**RULE_22}
    assert item.severity == "critical"  # opened to the world
    assert item.category == "network"


def test_failed_source_is_unknown_never_added_or_removed() -> None:
    left = side(
        "staging",
        [res("requests", {"version": "2.32.3"}, "packages", "package.pip", source="pkgs")],
    )
    right = side("production", [], failed=("pkgs",))
    result = compare(left, right, Rules(environments=ENVIRONMENTS), NOW)
    assert result.items == []
    [unknown] = result.unknown
    assert (unknown.side, unknown.source, unknown.resources) == ("right", "pkgs", 1)
    assert unknown.error == "command exited with status 1"
    assert result.compared == 0


def test_leak_is_reported_once_not_also_as_a_change() -> None:
    items = diff(
        [res("app.yaml", {"cache": {"host": "cache-production.internal"}})],
        [res("app.yaml", {"cache": {"host": "cache-production.internal"}})],
    )
    [item] = items
    assert item.change == "leak"
    assert item.left == "cache-production.internal"
    assert item.severity == "critical"
    assert item.detail == "names production (its env)"


def test_secret_changed_over_time_shows_no_value() -> None:
    old = side("staging", [res("app.env", {"API_TOKEN": hash_secret("v1")})])
    new = side("staging", [res("app.env", {"API_TOKEN": hash_secret("v2")})])
    [item] = compare(old, new, Rules(environments=ENVIRONMENTS), NOW).items
    assert (item.path, item.change) == ("API_TOKEN", "changed")
    assert item.left == "(secret)"
    assert item.right == "(secret) (changed)"


def test_waiver_applies_until_it_expires() -> None:
    left = [res("web", {"count": 2}, "instances", "aws.ec2.instance")]
    right = [res("web", {"count": 6}, "instances", "aws.ec2.instance")]
    waiver = Waiver(
        reason="staging runs fewer replicas",
        comparison="staging->production",
        category="instances",
        key="web*",
        path="count",
    )
    [item] = diff(left, right, Rules(waivers=(waiver,), environments=ENVIRONMENTS))
    assert item.waived
    assert item.waiver is not None
    assert item.waiver["reason"] == "staging runs fewer replicas"
    assert not item.counts
    expired = Waiver(reason="r", key="web*", path="count", expires=NOW - timedelta(seconds=1))
    [item] = diff(left, right, Rules(waivers=(expired,), environments=ENVIRONMENTS))
    assert not item.waived
    assert item.counts


@pytest.mark.parametrize(
    ("allow", "left", "right", "tolerated"),
    [
        ("same_family", "m5.large", "m5.xlarge", True),
        ("same_family", "m5.large", "c5.large", False),
        ("same_family", "db.r6g.large", "db.r6g.2xlarge", True),
        ("patch", "2.2.1", "2.2.3", True),
        ("patch", "2.31.0", "2.32.3", False),
        ("minor", "2.31.0", "2.32.3", True),
        ("minor", "1.9.0", "2.0.0", False),
        ("any", "a", "b", True),
    ],
)
def test_tolerances(allow: str, left: str, right: str, tolerated: bool) -> None:
    rules = Rules(tolerances=(Tolerance(path="value", allow=allow),), environments=ENVIRONMENTS)
    [item] = diff([res("r", {"value": left})], [res("r", {"value": right})], rules)
    assert item.tolerated is tolerated
    assert item.counts is not tolerated


def test_bare_path_in_a_tolerance_matches_the_attribute_anywhere() -> None:
    rules = Rules(
        tolerances=(Tolerance(path="instance_type", allow="same_family", category="instances"),),
        environments=ENVIRONMENTS,
    )
    [item] = diff(
        [res("web", {"group": {"instance_type": "m5.large"}}, "instances", "aws.ec2.instance")],
        [res("web", {"group": {"instance_type": "m5.2xlarge"}}, "instances", "aws.ec2.instance")],
        rules,
    )
    assert item.path == "group.instance_type"
    assert item.tolerated


@pytest.mark.parametrize(
    ("left", "right", "severity"),
    [
        ("2.31.0", "2.32.3", "warning"),
        ("2.2.1", "2.2.3", "info"),
        ("1.0.0", "2.0.0", "warning"),
    ],
)
def test_package_version_severity(left: str, right: str, severity: str) -> None:
    [item] = diff(
        [res("requests", {"version": left}, "packages", "package.pip")],
        [res("requests", {"version": right}, "packages", "package.pip")],
    )
    assert item.severity == severity


def test_counts_are_info_and_configured_rules_win() -> None:
    from app.diff.model import SeverityRule

    left = [res("web", {"count": 2, "instance_type": "m5.large"}, "instances", "aws.ec2.instance")]
    right = [
        res("web", {"count": 6, "instance_type": "m5.xlarge"}, "instances", "aws.ec2.instance")
    ]
    items = {i.path: i.severity for i in diff(left, right)}
    assert items == {"count": "info", "instance_type": "warning"}
    rules = Rules(
        severity=(SeverityRule(severity="critical", path="instance_type"),),
        environments=ENVIRONMENTS,
    )
    items = {i.path: i.severity for i in diff(left, right, rules)}
    assert items["instance_type"] == "critical"


def test_fingerprint_is_stable_and_specific() -> None:
    a = diff([res("app", {"pool": 10})], [res("app", {"pool": 20})])
    b = diff([res("app", {"pool": 10})], [res("app", {"pool": 20})])
    c = diff([res("app", {"pool": 10})], [res("app", {"pool": 30})])
    assert a[0].fingerprint == b[0].fingerprint
    assert a[0].fingerprint != c[0].fingerprint


def test_parity_counts_resources_with_counting_drift() -> None:
    result = compare(
        side(
            "staging",
            [res("a", {"x": 1}), res("b", {"x": 1}), res("c", {"x": 1}), res("d", {"x": 1})],
        ),
        side(
            "production",
            [res("a", {"x": 1}), res("b", {"x": 2}), res("c", {"x": 1}), res("d", {"x": 1})],
        ),
        Rules(environments=ENVIRONMENTS),
        NOW,
    )
    assert result.compared == 4
    assert result.parity == 0.75


def test_an_environment_name_inside_another_is_neither_leak_nor_drift() -> None:
    envs = {
        "staging": {"env": "staging"},
        "staging-eu": {"env": "staging-eu"},
        "production": {"env": "production"},
    }

    def side_of(env: str, value: str) -> Side:
        sources = {"main": SourceState("main", "file", "ok")}
        return Side(env, None, NOW, "complete", envs[env], sources, [res("f", {"db": value})])

    rules = Rules(environments=envs)
    eu = compare(
        side_of("staging-eu", "db-staging-eu.internal"),
        side_of("production", "db-production.internal"),
        rules,
        NOW,
    )
    assert eu.items == []
    leaky = compare(
        side_of("staging", "db-staging-eu.internal"),
        side_of("production", "db-production.internal"),
        rules,
        NOW,
    )
    assert [(i.path, i.change, i.detail) for i in leaky.items] == [
        ("db", "leak", "names staging-eu (its env)")
    ]


def url(password: str, env: str) -> str:
    return f"postgres://app:{hash_secret(password)}@db-{env}.internal:5432/app"


def test_urls_that_differ_only_in_password_and_environment_are_equal() -> None:
    items = diff(
        [res("app.env", {"DB": url("pw-s", "staging"), "MQ": url("shared", "staging")})],
        [res("app.env", {"DB": url("pw-p", "production"), "MQ": url("shared", "production")})],
    )
    [item] = items
    assert (item.path, item.change, item.severity) == ("MQ", "secret_reused", "critical")
    assert (item.left, item.right) == ("(secret)", "(secret)")


def test_an_embedded_secret_rotated_over_time_is_one_info_item() -> None:
    old = side("staging", [res("app.env", {"DB": url("v1", "staging")})])
    new = side("staging", [res("app.env", {"DB": url("v2", "staging")})])
    [item] = compare(old, new, Rules(environments=ENVIRONMENTS), NOW).items
    assert (item.path, item.change, item.severity) == ("DB", "changed", "info")
    assert item.detail == "secret rotated"
    assert item.left == item.right == "postgres://app:(secret)@db-{env}.internal:5432/app"
    assert "hmac" not in str(item.left)


def test_a_secret_inside_a_resource_key_compares_by_presence() -> None:
    items = diff(
        [res(f"API_TOKEN={hash_secret('a')}", {}, resource_type="line")],
        [res(f"API_TOKEN={hash_secret('b')}", {}, resource_type="line")],
    )
    assert items == []


def test_a_var_inside_another_environments_var_is_neither_leak_nor_drift() -> None:
    vars = {
        "staging": {"env": "staging", "domain": "staging.example.com"},
        "production": {"env": "production", "domain": "example.com"},
    }
    result = compare(
        side(
            "staging",
            [res("app", {"support": "support+staging@example.com"})],
            vars=vars["staging"],
        ),
        side(
            "production",
            [res("app", {"support": "support+production@example.com"})],
            vars=vars["production"],
        ),
        Rules(environments=vars),
        NOW,
    )
    assert result.items == []


def test_a_leak_row_shows_what_the_other_side_holds() -> None:
    items = diff(
        [res("app.yaml", {"cache": {"host": "cache-production.internal"}})],
        [res("app.yaml", {"cache": {"host": "cache-production.internal"}, "x": 1})],
    )
    leak = next(i for i in items if i.change == "leak")
    assert leak.left == "cache-production.internal"
    assert leak.right == "cache-{env}.internal"
