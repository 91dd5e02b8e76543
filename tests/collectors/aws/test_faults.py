"""Faults through a real proxy in front of moto: retries carry a scan through throttling, and
AccessDenied fails only its source, naming the IAM action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collectors.base import FetchContext
from collectors.runner import run_source
from collectors.secrets import Redactor, SecretHasher
from tests.collectors.aws.fault_proxy import FaultProxy

REDACTOR = Redactor(SecretHasher(b"k" * 32))


def seed(aws: Any) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    for i in range(30):
        ec2.create_security_group(GroupName=f"g{i}", Description="x", VpcId=vpc)


def run(aws: Any, type_name: str, endpoint: str, **options: Any) -> Any:
    ctx = FetchContext("staging", Path("."))
    return run_source(aws.options(type_name, endpoint_url=endpoint, **options), ctx, REDACTOR)


@pytest.mark.parametrize("status", [503, 400])
def test_throttling_is_retried_until_the_scan_completes(aws: Any, status: int) -> None:
    seed(aws)
    with FaultProxy(aws.endpoint) as proxy:
        proxy.throttle_every = 2  # every other request fails
        proxy.throttle_status = status
        outcome = run(aws, "aws.ec2.security_groups", proxy.url, max_attempts=10)
    assert outcome.status == "ok", outcome.error
    assert len(outcome.resources) >= 30
    assert proxy.faults >= 1


def test_access_denied_fails_only_that_source_naming_the_action(aws: Any) -> None:
    seed(aws)
    with FaultProxy(aws.endpoint) as proxy:
        proxy.deny = {"DescribeSecurityGroups"}
        denied = run(aws, "aws.ec2.security_groups", proxy.url)
    assert denied.status == "failed"
    assert "ec2:DescribeSecurityGroups" in (denied.error or "")
    assert "AccessDenied" in (denied.error or "")
