"""aws.ec2.network_acls against a moto server over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.aws.ec2_network_acls import acl_keys, canonical_entries

T = "aws.ec2.network_acls"


def tags(resource_type: str, **values: str) -> list[dict[str, Any]]:
    return [
        {"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in values.items()]}
    ]


def make_vpc(ec2: Any, name: str, cidr: str) -> str:
    vpc_id: str = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tags("vpc", Name=name))["Vpc"][
        "VpcId"
    ]
    return vpc_id


def make_acl(ec2: Any, vpc: str, **tag_values: str) -> str:
    acl_id: str = ec2.create_network_acl(
        VpcId=vpc, TagSpecifications=tags("network-acl", **tag_values) if tag_values else []
    )["NetworkAcl"]["NetworkAclId"]
    return acl_id


def associate(ec2: Any, acl: str, subnet: str) -> None:
    current = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
    )["NetworkAcls"][0]["Associations"]
    association = next(a for a in current if a["SubnetId"] == subnet)
    ec2.replace_network_acl_association(
        AssociationId=association["NetworkAclAssociationId"], NetworkAclId=acl
    )


def seed(ec2: Any) -> str:
    """A staging VPC with a named public ACL guarding one subnet, and a production ACL."""
    vpc = make_vpc(ec2, "main-staging", "10.1.0.0/16")
    subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock="10.1.1.0/24", TagSpecifications=tags("subnet", Name="public-a")
    )["Subnet"]["SubnetId"]
    acl = make_acl(ec2, vpc, Name="public-staging", env="staging")
    entry = {"NetworkAclId": acl, "CidrBlock": "0.0.0.0/0"}
    ec2.create_network_acl_entry(
        **entry,
        RuleNumber=100,
        Protocol="6",
        RuleAction="allow",
        Egress=False,
        PortRange={"From": 443, "To": 443},
    )
    ec2.create_network_acl_entry(
        **entry,
        RuleNumber=110,
        Protocol="6",
        RuleAction="allow",
        Egress=False,
        PortRange={"From": 1024, "To": 65535},
    )
    ec2.create_network_acl_entry(
        **entry, RuleNumber=200, Protocol="17", RuleAction="deny", Egress=False
    )
    ec2.create_network_acl_entry(
        **entry, RuleNumber=100, Protocol="-1", RuleAction="allow", Egress=True
    )
    associate(ec2, acl, subnet)
    other = make_vpc(ec2, "main-production", "10.2.0.0/16")
    make_acl(ec2, other, Name="public-production", env="production")
    return acl


def test_entries_keyed_by_rule_number_under_the_acl_name(aws: Any) -> None:
    ec2 = aws.client("ec2")
    acl_id = seed(ec2)

    acls = aws.by_key(T, filters={"tag:env": "staging"})

    assert set(acls) == {"public-staging"}
    acl = acls["public-staging"]
    assert acl.category == "network"
    assert acl.resource_type == "aws.ec2.network_acl"
    a = acl.attributes
    assert a["ingress"] == [
        {"label": "100", "action": "allow", "protocol": "tcp", "ports": "443", "cidr": "0.0.0.0/0"},
        {
            "label": "110",
            "action": "allow",
            "protocol": "tcp",
            "ports": "1024-65535",
            "cidr": "0.0.0.0/0",
        },
        {"label": "200", "action": "deny", "protocol": "udp", "ports": "all", "cidr": "0.0.0.0/0"},
    ]
    assert a["egress"] == [
        {"label": "100", "action": "allow", "protocol": "all", "ports": "all", "cidr": "0.0.0.0/0"}
    ]
    assert a["subnets"] == ["public-a"]
    assert (a["vpc"], a["is_default"]) == ("main-staging", False)
    assert a["tags"] == {"Name": "public-staging", "env": "staging"}
    assert a["network_acl_id"] == acl_id  # an attribute, never the key


@pytest.mark.slow
def test_a_changed_entry_shows_in_the_attributes(aws: Any) -> None:
    ec2 = aws.client("ec2")
    acl_id = seed(ec2)
    ec2.replace_network_acl_entry(
        NetworkAclId=acl_id,
        RuleNumber=100,
        Protocol="6",
        RuleAction="allow",
        Egress=False,
        CidrBlock="10.0.0.0/8",
        PortRange={"From": 8443, "To": 8443},
    )
    ingress = aws.by_key(T, filters={"tag:env": "staging"})["public-staging"].attributes["ingress"]
    assert ingress[0] == {
        "label": "100",
        "action": "allow",
        "protocol": "tcp",
        "ports": "8443",
        "cidr": "10.0.0.0/8",
    }


def test_unnamed_acls_are_named_after_their_vpc(aws: Any) -> None:
    ec2 = aws.client("ec2")
    seed(ec2)
    vpc = make_vpc(ec2, "tools-staging", "10.3.0.0/16")
    make_acl(ec2, vpc)

    acls = aws.by_key(T)

    assert {
        "public-staging",
        "public-production",
        "main-staging/default",
        "main-production/default",
        "tools-staging/default",
        "tools-staging/acl",
        "172.31.0.0/16/default",  # moto's default VPC: no Name tag, so its CIDR block
    } == set(acls)
    default = acls["main-staging/default"].attributes
    assert default["is_default"] is True
    # The final deny-all is an entry like the others.
    assert default["ingress"][-1] == {
        "label": "32767",
        "action": "deny",
        "protocol": "all",
        "ports": "all",
        "cidr": "0.0.0.0/0",
    }
    assert not any(key.startswith("acl-") for key in acls)


def test_acls_sharing_a_name_are_told_apart_by_vpc(aws: Any) -> None:
    ec2 = aws.client("ec2")
    for name, cidr in (("main-staging", "10.1.0.0/16"), ("tools-staging", "10.3.0.0/16")):
        make_acl(ec2, make_vpc(ec2, name, cidr), Name="private", env="staging")
    keys = set(aws.by_key(T, filters={"tag:env": "staging"}))
    assert keys == {"main-staging/private", "tools-staging/private"}


def test_several_regions_prefix_the_key(aws: Any) -> None:
    for region in ("us-east-1", "eu-west-1"):
        ec2 = aws.client("ec2", region)
        make_acl(ec2, make_vpc(ec2, "main", "10.1.0.0/16"), Name="public", env="staging")
    keys = set(
        aws.by_key(
            T, region=None, regions=["us-east-1", "eu-west-1"], filters={"tag:env": "staging"}
        )
    )
    assert keys == {"us-east-1/public", "eu-west-1/public"}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"RuleNumber": 32768, "Protocol": "-1", "RuleAction": "deny", "Ipv6CidrBlock": "::/0"},
            {
                "label": "32768",
                "action": "deny",
                "protocol": "all",
                "ports": "all",
                "cidr6": "::/0",
            },
        ),
        (
            {
                "RuleNumber": 120,
                "Protocol": "1",
                "RuleAction": "allow",
                "CidrBlock": "10.0.0.0/8",
                "IcmpTypeCode": {"Type": 8, "Code": -1},
            },
            {
                "label": "120",
                "action": "allow",
                "protocol": "icmp",
                "icmp_type": 8,
                "icmp_code": -1,
                "cidr": "10.0.0.0/8",
            },
        ),
        (
            {
                "RuleNumber": 130,
                "Protocol": "6",
                "RuleAction": "allow",
                "CidrBlock": "0.0.0.0/0",
                "PortRange": {"From": 0, "To": 65535},
            },
            {
                "label": "130",
                "action": "allow",
                "protocol": "tcp",
                "ports": "all",
                "cidr": "0.0.0.0/0",
            },
        ),
        (
            {"RuleNumber": 140, "Protocol": "50", "RuleAction": "allow", "CidrBlock": "10.0.0.0/8"},
            {"label": "140", "action": "allow", "protocol": "50", "cidr": "10.0.0.0/8"},
        ),
    ],
)
def test_canonical_entries(entry: dict[str, Any], expected: dict[str, Any]) -> None:
    assert canonical_entries([{**entry, "Egress": False}], egress=False) == [expected]
    assert canonical_entries([{**entry, "Egress": False}], egress=True) == []


def test_entries_are_in_rule_number_order_not_text_order() -> None:
    entries = [
        {"RuleNumber": n, "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"}
        for n in (32767, 100, 90)
    ]
    assert [e["label"] for e in canonical_entries(entries, egress=False)] == ["90", "100", "32767"]


def test_unnamed_acls_in_one_vpc_are_ordered_by_their_subnets() -> None:
    acls = [
        {"NetworkAclId": "acl-2", "VpcId": "vpc-1", "Associations": [{"SubnetId": "subnet-a"}]},
        {"NetworkAclId": "acl-1", "VpcId": "vpc-1", "Associations": [{"SubnetId": "subnet-b"}]},
    ]
    keys = acl_keys(acls, {"vpc-1": "main"}, {"subnet-a": "app-a", "subnet-b": "db-a"})
    assert keys == {"acl-2": "main/acl", "acl-1": "main/acl (2)"}
