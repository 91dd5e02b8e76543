"""`aws.ec2.security_groups`: each security group's rules, canonical and keyed by group name.

Every permission is split into atomic rules, one per protocol, port range and peer (an IPv4
or IPv6 range, another group by its *name*, or a prefix list by its name), each labelled
`tcp/22 from 0.0.0.0/0` (ingress) or `all/all to 0.0.0.0/0` (egress), so that the diff
reads `ingress[tcp/22 from 0.0.0.0/0]` and the order of rules never counts.

Group names are unique within a VPC only: where several selected groups share a name (the
`default` group of every VPC), their keys become `<VPC Name tag, else its CIDR>/<name>`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from collectors.aws.base import (
    AwsOptions,
    client,
    paginate,
    per_region,
    session_for,
    tag_filter,
    tags_of,
)
from collectors.base import FetchContext, Resource, SourceOptions, SourceType
from collectors.registry import register

_PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


class SecurityGroupOptions(AwsOptions):
    pass


def _ports(permission: dict[str, Any], protocol: str) -> str:
    start, end = permission.get("FromPort"), permission.get("ToPort")
    if protocol == "all" or start is None or (start in (-1, 0) and end in (-1, 65535)):
        return "all"
    return str(start) if start == end else f"{start}-{end}"


def canonical_rules(
    permissions: list[dict[str, Any]],
    direction: str,
    group_names: dict[str, str],
    prefix_names: dict[str, str],
) -> list[dict[str, Any]]:
    """Atomic, labelled rules from EC2 IpPermissions. Pure."""
    word = "from" if direction == "ingress" else "to"
    rules = []
    for permission in permissions:
        raw_protocol = str(permission.get("IpProtocol", "-1"))
        protocol = _PROTOCOLS.get(raw_protocol, raw_protocol)
        ports = _ports(permission, protocol)
        peers: list[tuple[str, str, str | None]] = []
        peers += [
            ("cidr", r["CidrIp"], r.get("Description")) for r in permission.get("IpRanges", [])
        ]
        peers += [
            ("cidr6", r["CidrIpv6"], r.get("Description")) for r in permission.get("Ipv6Ranges", [])
        ]
        for pair in permission.get("UserIdGroupPairs", []):
            name = pair.get("GroupName") or group_names.get(
                pair.get("GroupId", ""), pair.get("GroupId", "")
            )
            peers.append(("group", name, pair.get("Description")))
        for prefix in permission.get("PrefixListIds", []):
            name = prefix_names.get(prefix["PrefixListId"], prefix["PrefixListId"])
            peers.append(("prefix_list", name, prefix.get("Description")))
        for kind, peer, description in peers:
            rule: dict[str, Any] = {
                "label": f"{protocol}/{ports} {word} {peer}",
                "protocol": protocol,
                "ports": ports,
                kind: peer,
            }
            if description:
                rule["description"] = description
            rules.append(rule)
    return sorted(rules, key=lambda r: str(r["label"]))


@register
class SecurityGroups(SourceType[SecurityGroupOptions]):
    type_name: ClassVar[str] = "aws.ec2.security_groups"
    Options: ClassVar[type[SourceOptions]] = SecurityGroupOptions
    summary: ClassVar[str] = "EC2 security groups: ingress and egress rules, keyed by group name."
    iam_actions: ClassVar[tuple[str, ...]] = (
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeManagedPrefixLists",
        "ec2:DescribeVpcs",
    )

    def fetch(self, options: SecurityGroupOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)

        def one(region: str) -> dict[str, Any]:
            ec2 = client(session, "ec2", region, options)
            # All groups, unfiltered: references to other groups are resolved to their names.
            groups = list(paginate(ec2, "describe_security_groups", "SecurityGroups"))
            prefix_ids = {
                p["PrefixListId"]
                for g in groups
                for perm in g.get("IpPermissions", []) + g.get("IpPermissionsEgress", [])
                for p in perm.get("PrefixListIds", [])
            }
            prefixes = []
            if prefix_ids:
                prefixes = list(
                    paginate(
                        ec2,
                        "describe_managed_prefix_lists",
                        "PrefixLists",
                        PrefixListIds=sorted(prefix_ids),
                    )
                )
            vpcs = list(paginate(ec2, "describe_vpcs", "Vpcs"))
            return {"groups": groups, "prefix_lists": prefixes, "vpcs": vpcs}

        return [{"region": region, **data} for region, data in per_region(options, one)]

    def normalize(self, raw: list[dict[str, Any]], options: SecurityGroupOptions) -> list[Resource]:
        wanted = tag_filter(options)
        resources = []
        for region_data in raw:
            region = region_data["region"]
            groups = region_data["groups"]
            vpc_labels = {
                v["VpcId"]: tags_of(v.get("Tags")).get("Name") or v.get("CidrBlock", v["VpcId"])
                for v in region_data.get("vpcs", [])
            }
            selected = [g for g in groups if wanted(tags_of(g.get("Tags")))]
            seen = [g["GroupName"] for g in selected]
            shared = {name for name in seen if seen.count(name) > 1}
            names = {g["GroupId"]: g["GroupName"] for g in groups}
            prefixes = {
                p["PrefixListId"]: p.get("PrefixListName", p["PrefixListId"])
                for p in region_data["prefix_lists"]
            }
            for group in selected:
                tags = tags_of(group.get("Tags"))
                name = group["GroupName"]
                if name in shared:
                    name = f"{vpc_labels.get(group.get('VpcId', ''), group.get('VpcId'))}/{name}"
                attributes = {
                    "group_id": group["GroupId"],
                    "vpc_id": group.get("VpcId"),
                    "description": group.get("Description", ""),
                    "tags": tags,
                    "ingress": canonical_rules(
                        group.get("IpPermissions", []), "ingress", names, prefixes
                    ),
                    "egress": canonical_rules(
                        group.get("IpPermissionsEgress", []), "egress", names, prefixes
                    ),
                }
                resources.append(
                    Resource(
                        category="network",
                        resource_type="aws.ec2.security_group",
                        key=options.key(region, name),
                        attributes=attributes,
                    )
                )
        return resources
