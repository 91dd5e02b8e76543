"""aws.ec2.instances against a moto server over HTTP: groups by tag, states, AMI names, paging."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from collectors.aws.ec2_instances import group_of, one_or_all, summarize_group

T = "aws.ec2.instances"
STAGING = {"tag:env": "staging"}


def tags(**pairs: str) -> list[dict[str, Any]]:
    return [
        {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in pairs.items()]}
    ]


def run(ec2: Any, count: int = 1, image: str = "ami-12345678", **kwargs: Any) -> list[str]:
    answer = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, **kwargs)
    return [i["InstanceId"] for i in answer["Instances"]]


def web_image(ec2: Any) -> str:
    """An AMI with a name, built from an instance outside the scanned environment."""
    (builder,) = run(ec2, TagSpecifications=tags(env="build"))
    image: str = ec2.create_image(InstanceId=builder, Name="web-2026-11-20")["ImageId"]
    return image


def seed(ec2: Any) -> dict[str, list[str]]:
    image = web_image(ec2)
    root = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}]
    web = run(
        ec2,
        2,
        image,
        InstanceType="m5.large",
        MetadataOptions={"HttpTokens": "required"},
        BlockDeviceMappings=root,
        TagSpecifications=tags(env="staging", Role="web", Name="web-a"),
    )
    web += run(
        ec2,
        1,
        image,
        InstanceType="m5.xlarge",
        MetadataOptions={"HttpTokens": "required"},
        BlockDeviceMappings=root,
        TagSpecifications=tags(env="staging", Role="web", Name="web-b"),
    )
    worker = run(
        ec2,
        1,
        "ami-0deadbeef",  # never registered: its name cannot be known
        InstanceType="c5.large",
        TagSpecifications=tags(env="staging", Role="worker", Name="worker"),
    )
    stray = run(ec2, 1, image, TagSpecifications=tags(env="staging", Name="debug-box"))
    gone = run(ec2, 1, image, TagSpecifications=tags(env="staging", Role="web", Name="web-a"))
    run(ec2, 4, image, TagSpecifications=tags(env="production", Role="web", Name="web-a"))
    ec2.stop_instances(InstanceIds=[web[2]])
    ec2.terminate_instances(InstanceIds=gone)
    return {"web": web, "worker": worker, "stray": stray}


@pytest.mark.slow
def test_groups_by_role_with_states_types_and_ami_name(aws: Any) -> None:
    ec2 = aws.client("ec2")
    ids = seed(ec2)
    groups = aws.by_key(T, filters=STAGING)
    # Production's instances are filtered out server-side; the terminated one is gone.
    assert set(groups) == {"web", "worker", "(untagged)"}
    web = groups["web"]
    assert web.category == "instances"
    assert web.resource_type == "aws.ec2.instance_group"
    attrs = web.attributes
    assert attrs["count"] == 3
    assert attrs["states"] == {"running": 2, "stopped": 1}  # stopped still counts
    assert attrs["instance_type"] == ["m5.large", "m5.xlarge"]  # members differ: the set
    assert attrs["instance_types"] == {"m5.large": 2, "m5.xlarge": 1}
    assert attrs["ami"] == "web-2026-11-20"
    assert attrs["imdsv2_required"] is True
    assert attrs["root_volume_type"] == "gp3"
    assert attrs["root_volume_size"] == 20
    assert attrs["tenancy"] == "default"
    assert attrs["monitoring"] == "disabled"
    assert attrs["ebs_optimized"] is False
    assert attrs["architecture"] == "x86_64"
    assert attrs["instance_ids"] == sorted(ids["web"])  # an attribute, never the key

    worker = groups["worker"].attributes
    assert worker["count"] == 1
    assert worker["states"] == {"running": 1}
    assert worker["instance_type"] == "c5.large"
    assert worker["ami"] == "(unknown ami-0deadbeef)"
    assert worker["imdsv2_required"] is False

    assert groups["(untagged)"].attributes["count"] == 1
    assert groups["(untagged)"].attributes["instance_ids"] == ids["stray"]


def test_group_by_name_tag(aws: Any) -> None:
    seed(aws.client("ec2"))
    groups = aws.by_key(T, filters=STAGING, identity="tag:Name")
    assert {k: g.attributes["count"] for k, g in groups.items()} == {
        "web-a": 2,
        "web-b": 1,
        "worker": 1,
        "debug-box": 1,
    }
    assert groups["web-b"].attributes["states"] == {"stopped": 1}
    assert groups["web-b"].attributes["instance_type"] == "m5.xlarge"


def test_group_by_auto_scaling_group_tag(aws: Any) -> None:
    ec2 = aws.client("ec2")
    run(ec2, 2, TagSpecifications=tags(env="staging", **{"aws:autoscaling:groupName": "web-stg"}))
    run(ec2, 1, TagSpecifications=tags(env="staging", Role="web"))
    counts = {k: g.attributes["count"] for k, g in aws.by_key(T, identity="asg").items()}
    assert counts == {"web-stg": 2, "(untagged)": 1}


@pytest.mark.slow
def test_pagination_past_one_page(aws: Any) -> None:
    ec2 = aws.client("ec2")
    # moto pages DescribeInstances by reservation (100 a page): 260 instances in 115
    # reservations span two pages. (1,200 instances would take moto half a minute.)
    for _ in range(5):
        run(ec2, 30, TagSpecifications=tags(env="staging", Role="web"))
    for _ in range(110):
        run(ec2, 1, TagSpecifications=tags(env="staging", Role="worker"))
    assert ec2.describe_instances().get("NextToken"), "the fixture must span several pages"
    groups = aws.by_key(T, filters=STAGING)
    assert {k: g.attributes["count"] for k, g in groups.items()} == {"web": 150, "worker": 110}
    assert groups["worker"].attributes["root_volume_type"] == "gp2"  # every root volume resolved


@pytest.mark.slow
def test_several_regions_prefix_the_key(aws: Any) -> None:
    for region in ("us-east-1", "eu-west-1"):
        run(aws.client("ec2", region), TagSpecifications=tags(Role="web"))
    keys = set(aws.by_key(T, region=None, regions=["us-east-1", "eu-west-1"]))
    assert keys == {"us-east-1/web", "eu-west-1/web"}


@pytest.mark.parametrize("identity", ["Role", "tag:", "asg:web", ""])
def test_identity_must_be_a_tag_or_asg(aws: Any, identity: str) -> None:
    with pytest.raises(ValidationError, match="identity"):
        aws.options(T, identity=identity)


@pytest.mark.parametrize(
    ("tags_", "identity", "group"),
    [
        ([{"Key": "Role", "Value": "web"}], "tag:Role", "web"),
        ([{"Key": "Role", "Value": ""}], "tag:Role", "(untagged)"),
        ([], "tag:Role", "(untagged)"),
        ([{"Key": "aws:autoscaling:groupName", "Value": "web-asg"}], "asg", "web-asg"),
        ([{"Key": "Tier", "Value": "db"}], "tag:Tier", "db"),
    ],
)
def test_group_of(tags_: list[dict[str, str]], identity: str, group: str) -> None:
    assert group_of({"Tags": tags_}, identity) == group


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a", "a"], "a"),
        (["b", "a", "b"], ["a", "b"]),
        ([100, 20, 20], [20, 100]),
        ([True, False], [False, True]),
        ([None, "gp3"], ["gp3", None]),
        ([None], None),
    ],
)
def test_one_or_all(values: list[Any], expected: Any) -> None:
    assert one_or_all(values) == expected


def test_summarize_instance_store_platform_and_profile() -> None:
    member = {
        "InstanceId": "i-0123456789abcdef0",
        "State": {"Name": "running"},
        "InstanceType": "m5d.large",
        "ImageId": "ami-1",
        "RootDeviceType": "instance-store",
        "PlatformDetails": "Red Hat Enterprise Linux",
        "IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:instance-profile/app/web-stg"},
        "SecurityGroups": [{"GroupName": "web-stg", "GroupId": "sg-1"}],
        "Placement": {"AvailabilityZone": "us-east-1b", "Tenancy": "dedicated"},
    }
    attrs = summarize_group([member], {"ami-1": "rhel-9"}, {})
    assert attrs["root_volume_type"] == "instance-store"
    assert attrs["root_volume_size"] is None
    assert attrs["platform"] == "Red Hat Enterprise Linux"
    assert attrs["iam_instance_profile"] == "web-stg"
    assert attrs["security_groups"] == ["web-stg"]
    assert attrs["availability_zone_count"] == 1
    assert attrs["tenancy"] == "dedicated"
    assert attrs["ami"] == "rhel-9"
