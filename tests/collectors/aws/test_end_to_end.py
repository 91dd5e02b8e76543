"""End to end on a simulated account: the demo's environments, scanned with `scan --all`,
differ exactly where drift was planted, and no secret appears in plain text anywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.demo import SHARED_SECRET, seed, write_config
from tests.support import Project, database_bytes

# (resource_type, key, path, change, severity) of every planted difference that counts
PLANTED = {
    ("aws.ssm.parameter", "/app/{env}/db/host", "value", "leak", "critical"),
    (
        "aws.ecs.container_env",
        "orders-{env}/orders-api/app",
        "environment.DB_HOST",
        "leak",
        "critical",
    ),
    (
        "aws.secretsmanager.secret",
        "app/{env}/payments-api-key",
        "value",
        "secret_reused",
        "critical",
    ),
    ("aws.ec2.security_group", "web-{env}", "ingress[tcp/22 from 0.0.0.0/0]", "added", "critical"),
    ("aws.ssm.parameter", "/app/{env}/feature/new_checkout", "value", "changed", "warning"),
    ("aws.rds.instance", "orders-{env}", "engine_version", "changed", "warning"),
    ("aws.ec2.instance_group", "web", "instance_type", "changed", "warning"),
    ("aws.ecs.image", "orders-{env}/orders-api/app", "version", "changed", "warning"),
}
# the by-design differences, waived in the config: listed, not counted
WAIVED = {
    ("aws.rds.instance", "orders-{env}", "multi_az"),
    ("aws.ec2.instance_group", "web", "count"),
    ("aws.ec2.instance_group", "web", "states.running"),
    ("aws.ecs.service", "orders-{env}/orders-api", "desired_count"),
}
PLAINTEXT = [SHARED_SECRET, "demo-staging-password", "demo-production-password"]


@pytest.mark.slow
def test_scan_all_then_diff_reports_exactly_the_planted_drift(aws: Any, project: Project) -> None:
    seed(aws.endpoint)
    write_config(project.root, aws.endpoint)
    scan = project.run("scan", "--all")
    assert scan.returncode == 0, scan.stdout + scan.stderr
    result = project.run("diff", "staging", "production", "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    counting = {
        (i["resource_type"], i["key"], i["path"], i["change"], i["severity"])
        for i in report["items"]
        if not (i["waived"] or i["tolerated"])
    }
    assert counting == PLANTED
    waived = {(i["resource_type"], i["key"], i["path"]) for i in report["items"] if i["waived"]}
    assert waived == WAIVED
    # nothing from ids, environment names or CIDRs: the second staging differs only by design
    # in process (the same CLI, faster) where only stdout is looked at
    eu = json.loads(project.invoke("diff", "staging-eu", "production", "--format", "json").stdout)
    assert {(i["resource_type"], i["path"]) for i in eu["items"] if not i["waived"]} == {
        (t, p) for t, _k, p, c, _s in PLANTED if c not in ("leak", "secret_reused")
    }
    outputs = [scan.stdout, scan.stderr, result.stdout, result.stderr]
    outputs += [project.invoke("export", env).stdout for env in ("staging", "production")]
    raw = database_bytes(project.database_url)
    for secret in PLAINTEXT:
        assert secret.encode() not in raw
        for text in outputs:
            assert secret not in text
