"""Faults through a real proxy in front of moto: retries carry a scan through throttling, and
AccessDenied fails only its source, naming the IAM action."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.collectors.aws.fault_proxy import FaultProxy


def seed(aws: Any) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    for i in range(30):
        ec2.create_security_group(GroupName=f"g{i}", Description="x", VpcId=vpc)


def run(aws: Any, type_name: str, endpoint: str, **options: Any) -> Any:
    return aws.run(type_name, endpoint_url=endpoint, **options)


@pytest.mark.parametrize("status", [503, 400])
@pytest.mark.slow
def test_throttling_is_retried_until_the_scan_completes(aws: Any, status: int) -> None:
    seed(aws)
    with FaultProxy(aws.endpoint) as proxy:
        proxy.throttle_every = 2  # every other request fails
        proxy.throttle_status = status
        outcome = run(aws, "aws.ec2.security_groups", proxy.url, max_attempts=10)
    assert outcome.status == "ok", outcome.error
    assert len(outcome.resources) >= 30
    assert proxy.faults >= 1


@pytest.mark.slow
def test_access_denied_fails_only_that_source_naming_the_action(aws: Any) -> None:
    seed(aws)
    with FaultProxy(aws.endpoint) as proxy:
        proxy.deny = {"DescribeSecurityGroups"}
        denied = run(aws, "aws.ec2.security_groups", proxy.url)
    assert denied.status == "failed"
    assert "ec2:DescribeSecurityGroups" in (denied.error or "")
    assert "AccessDenied" in (denied.error or "")


@pytest.mark.slow
def test_a_denied_source_fails_and_the_rest_of_the_scan_completes(aws: Any, project: Any) -> None:
    from app import runtime
    from app.snapshots.service import Scanner

    seed(aws)
    aws.client("ssm").put_parameter(Name="/app/staging/log_level", Value="info", Type="String")
    with FaultProxy(aws.endpoint) as proxy:
        proxy.deny = {"DescribeSecurityGroups"}
        common = f"region: us-east-1, endpoint_url: '{proxy.url}'"
        project.write_config(
            f"""
            environments:
              staging:
                sources:
                  - {{type: aws.ec2.security_groups, name: groups, {common}}}
                  - {{type: aws.ssm.parameters, name: parameters, path: /app/staging/, {common}}}
            """
        )
        rt = runtime.load(project.config)
        result = Scanner(rt.config, rt.sessions, rt.redactor).scan("staging")
        rt.close()
    assert result.status == "partial"
    outcomes = {o.name: o for o in result.sources}
    assert outcomes["groups"].status == "failed"
    assert "ec2:DescribeSecurityGroups" in (outcomes["groups"].error or "")
    assert outcomes["parameters"].status == "ok"
    assert [r.key for r in outcomes["parameters"].resources] == ["/app/staging/log_level"]


def test_role_arn_is_assumed_through_sts(aws: Any) -> None:
    seed(aws)
    resources = aws.collect(
        "aws.ec2.security_groups",
        role_arn="arn:aws:iam::123456789012:role/envparity-read",
        external_id="envparity-demo",
    )
    assert len(resources) >= 30


@pytest.mark.slow
def test_a_source_that_timed_out_makes_no_further_aws_call(aws: Any) -> None:
    """A slow account with many pages: once the source's timeout fires, its thread stops
    at the next request instead of paging on, unseen, to the end."""
    ssm = aws.client("ssm")
    for i in range(120):
        ssm.put_parameter(Name=f"/app/staging/p{i:03}", Value="v", Type="String")
    with FaultProxy(aws.endpoint) as proxy:
        proxy.delay = 0.2  # 120 parameters take a dozen pages: far past the timeout
        outcome = run(aws, "aws.ssm.parameters", proxy.url, path="/app", timeout=0.5)
        assert outcome.status == "failed"
        assert "timed out" in (outcome.error or "")
        time.sleep(0.3)  # a request already on its way may still arrive
        after_timeout = proxy.requests
        time.sleep(0.5)
        assert proxy.requests == after_timeout, "the source went on calling AWS"
