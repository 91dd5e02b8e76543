"""aws.ec2.security_groups against a moto server over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.aws.ec2_security_groups import canonical_rules
from collectors.base import CollectorError

T = "aws.ec2.security_groups"


def make_group(ec2: Any, name: str, env: str, vpc: str) -> str:
    group_id: str = ec2.create_security_group(
        GroupName=name,
        Description=f"{name} servers",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "env", "Value": env}]}
        ],
    )["GroupId"]
    return group_id


@pytest.mark.slow
def test_rules_are_canonical_keyed_by_group_name(aws: Any) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    lb = make_group(ec2, "lb-staging", "staging", vpc)
    web = make_group(ec2, "web-staging", "staging", vpc)
    make_group(ec2, "web-production", "production", vpc)
    ec2.authorize_security_group_ingress(
        GroupId=web,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "10.1.0.0/16"}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 8080,
                "ToPort": 8080,
                "UserIdGroupPairs": [{"GroupId": lb}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh"}],
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            },
        ],
    )
    groups = aws.by_key(T, filters={"tag:env": "staging"})
    assert set(groups) == {"lb-staging", "web-staging"}
    web_group = groups["web-staging"]
    assert web_group.category == "network"
    assert web_group.resource_type == "aws.ec2.security_group"
    labels = [r["label"] for r in web_group.attributes["ingress"]]
    assert labels == [
        "tcp/22 from 0.0.0.0/0",
        "tcp/22 from ::/0",
        "tcp/443 from 10.1.0.0/16",
        "tcp/8080 from lb-staging",
    ]
    ssh = web_group.attributes["ingress"][0]
    assert ssh == {
        "label": "tcp/22 from 0.0.0.0/0",
        "protocol": "tcp",
        "ports": "22",
        "cidr": "0.0.0.0/0",
        "description": "ssh",
    }
    assert [r["label"] for r in web_group.attributes["egress"]] == ["all/all to 0.0.0.0/0"]
    assert web_group.attributes["group_id"] == web  # an attribute, never the key


@pytest.mark.slow
def test_pagination_past_one_page(aws: Any) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    for i in range(1100):
        make_group(ec2, f"g{i:04d}", "staging", vpc)
    groups = aws.by_key(T, filters={"tag:env": "staging"})
    assert len(groups) == 1100


@pytest.mark.slow
def test_several_regions_prefix_the_key(aws: Any) -> None:
    for region in ("us-east-1", "eu-west-1"):
        ec2 = aws.client("ec2", region)
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        make_group(ec2, "web", "staging", vpc)
    keys = set(
        aws.by_key(
            T, region=None, regions=["us-east-1", "eu-west-1"], filters={"tag:env": "staging"}
        )
    )
    assert keys == {"us-east-1/web", "eu-west-1/web"}


def test_unreachable_endpoint_fails_the_source(aws: Any) -> None:
    with pytest.raises(CollectorError, match="cannot reach the AWS endpoint"):
        aws.collect(T, endpoint_url="http://127.0.0.1:9", max_attempts=1, timeout=2)


@pytest.mark.parametrize(
    ("permission", "labels"),
    [
        ({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, ["all/all from 0.0.0.0/0"]),
        (
            {
                "IpProtocol": "udp",
                "FromPort": 1000,
                "ToPort": 2000,
                "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
            },
            ["udp/1000-2000 from 10.0.0.0/8"],
        ),
        (
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": "sg-1"}],
            },
            ["tcp/5432 from app"],
        ),
        (
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "PrefixListIds": [{"PrefixListId": "pl-1"}],
            },
            ["tcp/443 from office"],
        ),
    ],
)
def test_canonical_rules(permission: dict[str, Any], labels: list[str]) -> None:
    rules = canonical_rules([permission], "ingress", {"sg-1": "app"}, {"pl-1": "office"})
    assert [r["label"] for r in rules] == labels
