"""`aws.ec2.instances`: EC2 instances grouped by a logical identity (a tag, or their Auto Scaling
group), one resource per group with its size and the attributes its members share.

Instances are never keyed by id: a group is what both environments have (`web`, `worker`).
- `identity` picks the grouping: `tag:Role` (default), any `tag:KEY`, or `asg` (the
  `aws:autoscaling:groupName` tag). Instances without that tag (or with it empty) form the
  group `(untagged)`, so a stray hand-made instance shows up as drift instead of vanishing.
- Stopped instances count: a staging scaled down at night keeps its groups, with `states`
  saying how many members run. Terminated and shutting-down instances are left out.
- An attribute the members share is a plain value (`"instance_type": "m5.large"`); when they
  differ it is the sorted list of the values seen (`["m5.large", "m5.xlarge"]`), so a mixed
  group is drift of its own. `instance_types` keeps the count per type for the record.
- The AMI is reported by name (ids differ per region and account); an AMI that can no longer
  be described (deregistered, or no longer shared) reads `(unknown ami-...)`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from collectors.aws.base import (
    AwsOptions,
    client,
    describe_where,
    ec2_filters,
    paginate,
    per_region,
    session_for,
    tag_filter,
    tags_of,
)
from collectors.base import FetchContext, Resource, SourceOptions, SourceType
from collectors.registry import register

UNTAGGED = "(untagged)"
ASG_TAG = "aws:autoscaling:groupName"
# Every state but terminated and shutting-down (on its way to terminated).
LIVE_STATES = ("pending", "running", "stopping", "stopped")
# EC2 accepts at most 200 values per filter.
_FILTER_CHUNK = 200


class InstanceOptions(AwsOptions):
    identity: str = Field(
        default="tag:Role",
        pattern=r"^(tag:.+|asg)$",
        description=(
            "How instances are grouped across environments: `tag:KEY` (default `tag:Role`) "
            "or `asg` (their Auto Scaling group). Instances without it form `(untagged)`."
        ),
    )


def group_of(instance: Mapping[str, Any], identity: str) -> str:
    """The logical group an instance belongs to under `identity`. Pure."""
    tag = ASG_TAG if identity == "asg" else identity[4:]
    return tags_of(instance.get("Tags")).get(tag) or UNTAGGED


def _order(value: Any) -> tuple[int, float, str]:
    """Sorts None last, numbers by value, everything else by text."""
    if value is None:
        return (2, 0.0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def one_or_all(values: Iterable[Any]) -> Any:
    """The value when all are equal, else the sorted list of the distinct values. Pure."""
    distinct = sorted(set(values), key=_order)
    return distinct[0] if len(distinct) == 1 else distinct


def _platform(instance: Mapping[str, Any]) -> str:
    details = instance.get("PlatformDetails")
    if details:
        return str(details)
    return "Windows" if instance.get("Platform") == "windows" else "Linux/UNIX"


def _profile_name(instance: Mapping[str, Any]) -> str | None:
    arn = (instance.get("IamInstanceProfile") or {}).get("Arn")
    if not arn:
        return None
    # arn:aws:iam::123456789012:instance-profile[/path]/name
    return str(arn).rsplit("/", 1)[-1]


def _security_groups(instance: Mapping[str, Any]) -> set[str]:
    groups = list(instance.get("SecurityGroups", []))
    for interface in instance.get("NetworkInterfaces", []):
        groups += interface.get("Groups", [])
    return {str(g.get("GroupName") or g.get("GroupId")) for g in groups}


def _root_volume(
    instance: Mapping[str, Any], volumes: Mapping[str, Mapping[str, Any]]
) -> tuple[str | None, int | None]:
    if instance.get("RootDeviceType") == "instance-store":
        return "instance-store", None
    root = instance.get("RootDeviceName")
    for mapping in instance.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == root:
            volume = volumes.get(mapping.get("Ebs", {}).get("VolumeId", ""))
            if volume is not None:
                return volume.get("VolumeType"), volume.get("Size")
    return None, None


def summarize_group(
    members: Sequence[Mapping[str, Any]],
    image_names: Mapping[str, str],
    volumes: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The attributes of one group of instances (raw DescribeInstances items). Pure."""
    roots = [_root_volume(i, volumes) for i in members]
    images = [str(i.get("ImageId", "")) for i in members]
    return {
        "count": len(members),
        "states": dict(sorted(Counter(i["State"]["Name"] for i in members).items())),
        "instance_type": one_or_all(i.get("InstanceType") for i in members),
        "instance_types": dict(sorted(Counter(i.get("InstanceType") for i in members).items())),
        "architecture": one_or_all(i.get("Architecture") for i in members),
        "platform": one_or_all(_platform(i) for i in members),
        "ami": one_or_all(image_names.get(a) or f"(unknown {a})" for a in images),
        "tenancy": one_or_all(i.get("Placement", {}).get("Tenancy", "default") for i in members),
        "ebs_optimized": one_or_all(bool(i.get("EbsOptimized")) for i in members),
        "root_volume_type": one_or_all(kind for kind, _ in roots),
        "root_volume_size": one_or_all(size for _, size in roots),
        "monitoring": one_or_all(i.get("Monitoring", {}).get("State") for i in members),
        "imdsv2_required": one_or_all(
            i.get("MetadataOptions", {}).get("HttpTokens") == "required" for i in members
        ),
        "iam_instance_profile": one_or_all(_profile_name(i) for i in members),
        "security_groups": sorted(set().union(*(_security_groups(i) for i in members))),
        # How many zones, not which: zone names map to different places in every account.
        "availability_zone_count": len(
            {str(i.get("Placement", {}).get("AvailabilityZone")) for i in members}
        ),
        "instance_ids": sorted(str(i["InstanceId"]) for i in members),
    }


@register
class Ec2Instances(SourceType[InstanceOptions]):
    type_name: ClassVar[str] = "aws.ec2.instances"
    Options: ClassVar[type[SourceOptions]] = InstanceOptions
    summary: ClassVar[str] = (
        "EC2 instances grouped by a tag (Role by default) or Auto Scaling group: count, states, "
        "types, AMI name, root volume, IMDSv2."
    )
    iam_actions: ClassVar[tuple[str, ...]] = (
        "ec2:DescribeInstances",
        "ec2:DescribeImages",
        "ec2:DescribeVolumes",
    )
    # Ids differ by nature; the count per type follows the group's size, which `count` already
    # reports, and a change of type shows once, on `instance_type` (where `same_family` applies).
    volatile_paths: ClassVar[tuple[str, ...]] = ("instance_ids", "instance_types")

    def fetch(self, options: InstanceOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)
        filters = [
            *ec2_filters(options),
            {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
        ]

        def one(region: str) -> dict[str, Any]:
            ec2 = client(session, "ec2", region, options)
            instances = [
                instance
                for reservation in paginate(
                    ec2, "describe_instances", "Reservations", Filters=filters
                )
                for instance in reservation.get("Instances", [])
            ]
            # By filter, not by id: an id that no longer exists must not fail the whole call.
            images = describe_where(
                ec2,
                "describe_images",
                "Images",
                "image-id",
                (i["ImageId"] for i in instances if i.get("ImageId")),
                _FILTER_CHUNK,
                IncludeDeprecated=True,
                IncludeDisabled=True,
            )
            root_ids = [
                m["Ebs"]["VolumeId"]
                for i in instances
                for m in i.get("BlockDeviceMappings", [])
                if m.get("DeviceName") == i.get("RootDeviceName") and "VolumeId" in m.get("Ebs", {})
            ]
            volumes = describe_where(
                ec2, "describe_volumes", "Volumes", "volume-id", root_ids, _FILTER_CHUNK
            )
            return {"instances": instances, "images": images, "volumes": volumes}

        return [{"region": region, **data} for region, data in per_region(options, one)]

    def normalize(self, raw: list[dict[str, Any]], options: InstanceOptions) -> list[Resource]:
        # EC2 filtered by tag already; filtering again keeps normalize whole on its own.
        wanted = tag_filter(options)
        resources = []
        for region_data in raw:
            region = region_data["region"]
            image_names = {
                img["ImageId"]: str(img.get("Name") or img["ImageId"])
                for img in region_data["images"]
            }
            volumes = {v["VolumeId"]: v for v in region_data["volumes"]}
            groups: dict[str, list[dict[str, Any]]] = {}
            for instance in region_data["instances"]:
                if instance.get("State", {}).get("Name") not in LIVE_STATES:
                    continue
                if not wanted(tags_of(instance.get("Tags"))):
                    continue
                groups.setdefault(group_of(instance, options.identity), []).append(instance)
            for name, members in sorted(groups.items()):
                resources.append(
                    Resource(
                        category="instances",
                        resource_type="aws.ec2.instance_group",
                        key=options.key(region, name),
                        attributes=summarize_group(members, image_names, volumes),
                    )
                )
        return resources
