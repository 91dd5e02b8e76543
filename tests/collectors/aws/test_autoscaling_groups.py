"""aws.autoscaling.groups against a moto server over HTTP, and its normalize by table."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.aws.autoscaling_groups import group_attributes, instance_types

T = "aws.autoscaling.groups"


def env_tags(env: str) -> list[dict[str, Any]]:
    return [{"Key": "env", "Value": env, "PropagateAtLaunch": True}]


def seed(aws: Any) -> None:
    ec2 = aws.client("ec2")
    autoscaling = aws.client("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone="us-east-1a")
    subnet_id = subnet["Subnet"]["SubnetId"]
    data = {"ImageId": "ami-12345678", "InstanceType": "m5.large"}
    ec2.create_launch_template(LaunchTemplateName="web-staging", LaunchTemplateData=data)
    ec2.create_launch_template_version(
        LaunchTemplateName="web-staging",
        LaunchTemplateData={**data, "InstanceType": "m5.xlarge"},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-staging",
        LaunchTemplate={"LaunchTemplateName": "web-staging", "Version": "$Latest"},
        MinSize=1,
        MaxSize=4,
        DesiredCapacity=2,
        VPCZoneIdentifier=subnet_id,
        HealthCheckType="ELB",
        HealthCheckGracePeriod=120,
        TerminationPolicies=["OldestLaunchTemplate", "Default"],
        Tags=[*env_tags("staging"), {"Key": "Role", "Value": "web", "PropagateAtLaunch": True}],
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="worker-staging",
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateName": "web-staging",
                    "Version": "1",
                },
                "Overrides": [
                    {"InstanceType": "c5.large"},
                    {"InstanceType": "c5a.large", "WeightedCapacity": "2"},
                ],
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": 1,
                "OnDemandPercentageAboveBaseCapacity": 50,
                "SpotAllocationStrategy": "price-capacity-optimized",
            },
        },
        MinSize=0,
        MaxSize=3,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnet_id,
        Tags=env_tags("staging"),
    )
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="legacy-lc", ImageId="ami-12345678", InstanceType="t3.small"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="legacy-staging",
        LaunchConfigurationName="legacy-lc",
        MinSize=0,
        MaxSize=1,
        AvailabilityZones=["us-east-1a"],
        Tags=env_tags("staging"),
    )
    autoscaling.suspend_processes(
        AutoScalingGroupName="legacy-staging", ScalingProcesses=["Launch"]
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-production",
        LaunchTemplate={"LaunchTemplateName": "web-staging"},
        MinSize=3,
        MaxSize=9,
        VPCZoneIdentifier=subnet_id,
        Tags=env_tags("production"),
    )


@pytest.mark.slow
def test_groups_keyed_by_name_with_types_from_where_they_launch(aws: Any) -> None:
    seed(aws)
    groups = aws.by_key(T, filters={"tag:env": "staging"})
    assert set(groups) == {"web-staging", "worker-staging", "legacy-staging"}
    web = groups["web-staging"]
    assert web.category == "instances"
    assert web.resource_type == "aws.autoscaling.group"
    attrs = web.attributes
    assert (attrs["min_size"], attrs["max_size"], attrs["desired_capacity"]) == (1, 4, 2)
    assert attrs["instance_types"] == ["m5.xlarge"]  # $Latest is version 2
    assert attrs["launch_template"] == {"name": "web-staging", "version": "$Latest"}
    assert attrs["health_check_type"] == "ELB"
    assert attrs["health_check_grace_period"] == 120
    assert attrs["termination_policies"] == ["OldestLaunchTemplate", "Default"]  # AWS's order
    assert attrs["tags"] == {"Role": "web", "env": "staging"}
    assert attrs["availability_zone_count"] == 1
    assert "instances_distribution" not in attrs

    worker = groups["worker-staging"].attributes
    assert worker["instance_types"] == ["c5.large", "c5a.large"]  # the overrides win
    assert worker["launch_template"] == {"name": "web-staging", "version": "1"}
    assert worker["instances_distribution"]["on_demand_percentage_above_base"] == 50
    assert worker["instances_distribution"]["spot_allocation_strategy"] == (
        "price-capacity-optimized"
    )

    legacy = groups["legacy-staging"].attributes
    assert legacy["instance_types"] == ["t3.small"]
    assert legacy["launch_configuration"] == "legacy-lc"
    assert legacy["launch_template"] is None
    assert legacy["suspended_processes"] == ["Launch"]


@pytest.mark.slow
def test_default_version_and_tag_globs(aws: Any) -> None:
    seed(aws)
    groups = aws.by_key(T, filters={"tag:env": "prod*"})
    assert set(groups) == {"web-production"}
    # No version given: Auto Scaling launches the template's default version (1).
    assert groups["web-production"].attributes["instance_types"] == ["m5.large"]
    assert groups["web-production"].attributes["launch_template"]["version"] == "$Default"


def test_a_deleted_launch_template_reads_unknown(aws: Any) -> None:
    seed(aws)
    aws.client("ec2").delete_launch_template(LaunchTemplateName="web-staging")
    groups = aws.by_key(T, filters={"tag:env": "staging"})
    assert groups["web-staging"].attributes["instance_types"] == ["(unknown)"]
    assert groups["legacy-staging"].attributes["instance_types"] == ["t3.small"]


def test_desired_capacity_is_volatile() -> None:
    from collectors import registry

    cls = registry.get(T)
    assert cls is not None
    assert "desired_capacity" in cls.volatile_paths


TEMPLATES: dict[str, Any] = {
    "lt-1@$Latest": {
        "LaunchTemplateName": "web",
        "LaunchTemplateData": {"InstanceType": "m6i.large"},
    },
    "lt-2@3": {"LaunchTemplateName": "gpu", "LaunchTemplateData": {"InstanceType": "g5.xlarge"}},
    "lt-3@$Default": None,
}


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ({"LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "$Latest"}}, ["m6i.large"]),
        ({"LaunchTemplate": {"LaunchTemplateId": "lt-3"}}, ["(unknown)"]),
        ({"LaunchConfigurationName": "gone"}, ["(unknown)"]),
        ({"LaunchConfigurationName": "lc"}, ["t3.micro"]),
        (
            {
                "MixedInstancesPolicy": {
                    "LaunchTemplate": {
                        "LaunchTemplateSpecification": {
                            "LaunchTemplateId": "lt-1",
                            "Version": "$Latest",
                        },
                        "Overrides": [
                            {"InstanceType": "r6i.large"},
                            {
                                "LaunchTemplateSpecification": {
                                    "LaunchTemplateId": "lt-2",
                                    "Version": "3",
                                }
                            },
                        ],
                    }
                }
            },
            ["g5.xlarge", "r6i.large"],
        ),
        (
            {
                "MixedInstancesPolicy": {
                    "LaunchTemplate": {
                        "LaunchTemplateSpecification": {
                            "LaunchTemplateId": "lt-1",
                            "Version": "$Latest",
                        }
                    }
                }
            },
            ["m6i.large"],
        ),
        (
            {
                "MixedInstancesPolicy": {
                    "LaunchTemplate": {
                        "LaunchTemplateSpecification": {
                            "LaunchTemplateId": "lt-1",
                            "Version": "$Latest",
                        },
                        "Overrides": [{"InstanceRequirements": {"VCpuCount": {"Min": 2}}}],
                    }
                }
            },
            [],
        ),
    ],
)
def test_instance_types(group: dict[str, Any], expected: list[str]) -> None:
    assert instance_types(group, TEMPLATES, {"lc": {"InstanceType": "t3.micro"}}) == expected


def test_group_attributes_from_a_raw_group() -> None:
    group = {
        "AutoScalingGroupName": "api-stg",
        "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "$Latest"},
        "MinSize": 2,
        "MaxSize": 6,
        "DesiredCapacity": 3,
        "HealthCheckType": "EC2",
        "HealthCheckGracePeriod": 300,
        "TerminationPolicies": ["Default"],
        "AvailabilityZones": ["us-east-1b", "us-east-1a"],
        "TargetGroupARNs": [
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api-stg/0123abcd",
        ],
        "SuspendedProcesses": [{"ProcessName": "AZRebalance", "SuspensionReason": "x"}],
        "MaxInstanceLifetime": 604800,
        "CapacityRebalance": True,
        "Tags": [{"Key": "env", "Value": "stg", "PropagateAtLaunch": True}],
    }
    attrs = group_attributes(group, TEMPLATES, {})
    assert attrs["launch_template"] == {"name": "web", "version": "$Latest"}  # name from AWS
    assert attrs["availability_zone_count"] == 2
    assert attrs["target_groups"] == ["api-stg"]
    assert attrs["suspended_processes"] == ["AZRebalance"]
    assert attrs["max_instance_lifetime"] == 604800
    assert attrs["capacity_rebalance"] is True
    assert attrs["instance_types"] == ["m6i.large"]
