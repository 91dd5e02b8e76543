"""`aws.ec2.network_acls`: each network ACL's numbered entries, keyed by the ACL's Name tag.

Keys are logical, never the `acl-` id:
- the ACL's `Name` tag (`public-staging` becomes `public-{env}`); when several ACLs of a region
  share a name, each is prefixed with its VPC's label (`main-staging/public`);
- an unnamed ACL is named after its VPC: `<vpc>/default` for the VPC's default ACL,
  `<vpc>/acl` for another (`<vpc>/acl (2)`, ... if a VPC has several, ordered by the
  subnets they guard). A VPC's label is its `Name` tag, else its CIDR block (which the
  environment's vars turn into `{vpc_cidr}`).

An ACL is evaluated in rule-number order, and AWS identifies an entry by its direction and
rule number, so entries are keyed the same way: `ingress` and `egress` are lists of entries
labelled by rule number, and a changed entry reads `ingress[100].ports` in the diff, with the
old and new values side by side. The final deny-all (`*`, rule 32767, and 32768 for IPv6) is
reported like any other entry: it is part of what the ACL does. Subnets appear by their
`Name` tag (else their CIDR block).

`filters` are applied by EC2 itself (`tag:KEY`); note that default ACLs are rarely tagged, so a
tag filter usually leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from collectors.aws.base import (
    AwsOptions,
    client,
    describe_where,
    ec2_filters,
    paginate,
    per_region,
    session_for,
    tags_of,
)
from collectors.base import FetchContext, Resource, SourceOptions, SourceType
from collectors.registry import register

_PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
_CHUNK = 100  # ids per EC2 filter value list


class NetworkAclOptions(AwsOptions):
    pass


def _ports(port_range: dict[str, Any] | None) -> str:
    if not port_range:
        return "all"
    start, end = port_range.get("From"), port_range.get("To")
    if start is None or (start in (-1, 0) and end in (-1, 65535)):
        return "all"
    return str(start) if start == end else f"{start}-{end}"


def canonical_entries(entries: list[dict[str, Any]], egress: bool) -> list[dict[str, Any]]:
    """One direction's entries, each labelled by its rule number, in evaluation order. Pure."""
    out = []
    for entry in entries:
        if bool(entry.get("Egress")) != egress:
            continue
        raw_protocol = str(entry.get("Protocol", "-1"))
        protocol = _PROTOCOLS.get(raw_protocol, raw_protocol)
        item: dict[str, Any] = {
            "label": str(entry["RuleNumber"]),
            "action": entry.get("RuleAction"),
            "protocol": protocol,
        }
        if protocol in ("icmp", "icmpv6"):
            icmp = entry.get("IcmpTypeCode") or {}
            item["icmp_type"] = icmp.get("Type", -1)
            item["icmp_code"] = icmp.get("Code", -1)
        elif protocol in ("all", "tcp", "udp"):
            item["ports"] = "all" if protocol == "all" else _ports(entry.get("PortRange"))
        if entry.get("CidrBlock"):
            item["cidr"] = entry["CidrBlock"]
        if entry.get("Ipv6CidrBlock"):
            item["cidr6"] = entry["Ipv6CidrBlock"]
        out.append(item)
    return sorted(out, key=lambda e: int(e["label"]))


def acl_keys(
    acls: list[dict[str, Any]], vpc_labels: dict[str, str], subnet_labels: dict[str, str]
) -> dict[str, str]:
    """A logical key for every ACL of one region, by ACL id. Pure."""

    def vpc_of(acl: dict[str, Any]) -> str:
        vpc_id = str(acl.get("VpcId", ""))
        return vpc_labels.get(vpc_id, vpc_id)

    names = {a["NetworkAclId"]: tags_of(a.get("Tags")).get("Name") for a in acls}
    shared = {n for n, count in _counts(n for n in names.values() if n).items() if count > 1}
    base: dict[str, str] = {}
    for acl in acls:
        name = names[acl["NetworkAclId"]]
        if name and name not in shared:
            base[acl["NetworkAclId"]] = name
        elif name:
            base[acl["NetworkAclId"]] = f"{vpc_of(acl)}/{name}"
        else:
            kind = "default" if acl.get("IsDefault") else "acl"
            base[acl["NetworkAclId"]] = f"{vpc_of(acl)}/{kind}"
    # Whatever still collides is told apart by the subnets it guards, then (last resort) its id.
    keys: dict[str, str] = {}
    seen: dict[str, int] = {}
    for acl in sorted(
        acls,
        key=lambda a: (base[a["NetworkAclId"]], _subnets(a, subnet_labels), a["NetworkAclId"]),
    ):
        key = base[acl["NetworkAclId"]]
        seen[key] = seen.get(key, 0) + 1
        keys[acl["NetworkAclId"]] = key if seen[key] == 1 else f"{key} ({seen[key]})"
    return keys


def _counts(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _subnets(acl: dict[str, Any], subnet_labels: dict[str, str]) -> list[str]:
    return sorted(
        {
            subnet_labels.get(a["SubnetId"], a["SubnetId"])
            for a in acl.get("Associations", [])
            if a.get("SubnetId")
        }
    )


def _label(resource: dict[str, Any], fallback: str) -> str:
    return tags_of(resource.get("Tags")).get("Name") or str(resource.get("CidrBlock") or fallback)


@register
class NetworkAcls(SourceType[NetworkAclOptions]):
    type_name: ClassVar[str] = "aws.ec2.network_acls"
    Options: ClassVar[type[SourceOptions]] = NetworkAclOptions
    summary: ClassVar[str] = (
        "EC2 network ACLs: numbered ingress and egress entries and the subnets they guard; "
        "keyed by Name tag."
    )
    iam_actions: ClassVar[tuple[str, ...]] = (
        "ec2:DescribeNetworkAcls",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
    )

    def fetch(self, options: NetworkAclOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)
        filters = ec2_filters(options)

        def one(region: str) -> dict[str, Any]:
            ec2 = client(session, "ec2", region, options)
            params = {"Filters": filters} if filters else {}
            acls = list(paginate(ec2, "describe_network_acls", "NetworkAcls", **params))
            # Only the VPCs and subnets the ACLs name: their labels, not the whole account.
            vpc_ids = (a["VpcId"] for a in acls if a.get("VpcId"))
            vpcs = describe_where(ec2, "describe_vpcs", "Vpcs", "vpc-id", vpc_ids, _CHUNK)
            subnet_ids = (
                s["SubnetId"] for a in acls for s in a.get("Associations", []) if s.get("SubnetId")
            )
            subnets = describe_where(
                ec2, "describe_subnets", "Subnets", "subnet-id", subnet_ids, _CHUNK
            )
            return {"acls": acls, "vpcs": vpcs, "subnets": subnets}

        return [{"region": region, **data} for region, data in per_region(options, one)]

    def normalize(self, raw: list[dict[str, Any]], options: NetworkAclOptions) -> list[Resource]:
        resources = []
        for region_data in raw:
            region = region_data["region"]
            acls = region_data["acls"]
            vpc_labels = {v["VpcId"]: _label(v, v["VpcId"]) for v in region_data["vpcs"]}
            subnet_labels = {
                s["SubnetId"]: _label(s, s["SubnetId"]) for s in region_data["subnets"]
            }
            keys = acl_keys(acls, vpc_labels, subnet_labels)
            for acl in acls:
                vpc_id = acl.get("VpcId", "")
                entries = acl.get("Entries", [])
                attributes = {
                    "network_acl_id": acl["NetworkAclId"],
                    "vpc": vpc_labels.get(vpc_id, vpc_id),
                    "vpc_id": vpc_id,
                    "is_default": bool(acl.get("IsDefault")),
                    "subnets": _subnets(acl, subnet_labels),
                    "tags": tags_of(acl.get("Tags")),
                    "ingress": canonical_entries(entries, egress=False),
                    "egress": canonical_entries(entries, egress=True),
                }
                resources.append(
                    Resource(
                        category="network",
                        resource_type="aws.ec2.network_acl",
                        key=options.key(region, keys[acl["NetworkAclId"]]),
                        attributes=attributes,
                    )
                )
        return resources
