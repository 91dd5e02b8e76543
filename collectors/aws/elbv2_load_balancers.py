"""`aws.elbv2.load_balancers`: application, network and gateway load balancers with their
listeners, keyed by load balancer name.

Each listener is labelled `PROTOCOL:PORT` (`HTTPS:443`), so the diff reads
`listeners[HTTPS:443].ssl_policy`. A listener's certificates (the default one and the SNI
list) are described in ACM: labelled by domain name, with their type, status and expiry
(`not_after`, UTC). Expiry dates are volatile: ACM renews certificates on its own and two
environments never share one, so a date alone is never drift; an `EXPIRED` status is.
Security groups and target groups are named, never given by id. Tags are filtered
client-side (the API has no tag filter), before any listener is described.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from collectors.aws.base import (
    AwsOptions,
    aws_errors,
    chunks,
    client,
    describe_where,
    paginate,
    per_region,
    session_for,
    tag_filter,
    tags_of,
)
from collectors.base import FetchContext, Resource, SourceOptions, SourceType
from collectors.registry import register

# DescribeTags takes at most 20 ARNs a call; EC2 at most 200 values per filter.
_TAGS_CHUNK = 20
_FILTER_CHUNK = 200
_TLS_PROTOCOLS = ("HTTPS", "TLS")


class LoadBalancerOptions(AwsOptions):
    pass


def _arn_name(arn: str) -> str:
    """The name inside an ELB or IAM ARN: `.../targetgroup/web/0123` -> `web`,
    `...:server-certificate/path/web-cert` -> `web-cert`."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    if parts[0] in ("targetgroup", "loadbalancer") and len(parts) >= 2:
        return parts[-2]
    return parts[-1]


def _utc(value: Any) -> str | None:
    """A timestamp as ISO 8601 UTC (`2027-03-01T12:00:00Z`)."""
    if isinstance(value, dt.datetime):
        moment = value.astimezone(dt.UTC) if value.tzinfo is not None else value
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None if value is None else str(value)


def _action(actions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a listener does by default: the action types in order (`authenticate-oidc >
    forward`), the target groups it forwards to, where it redirects, what it answers."""
    ordered = sorted(actions, key=lambda a: a.get("Order", 0))
    out: dict[str, Any] = {"default_action": " > ".join(str(a.get("Type")) for a in ordered)}
    targets: set[str] = set()
    for action in ordered:
        if action.get("TargetGroupArn"):
            targets.add(_arn_name(action["TargetGroupArn"]))
        for target in (action.get("ForwardConfig") or {}).get("TargetGroups", []):
            targets.add(_arn_name(target["TargetGroupArn"]))
        redirect = action.get("RedirectConfig")
        if redirect:
            out["redirect"] = {
                "protocol": redirect.get("Protocol", "#{protocol}"),
                "host": redirect.get("Host", "#{host}"),
                "port": redirect.get("Port", "#{port}"),
                "path": redirect.get("Path", "/#{path}"),
                "status_code": redirect.get("StatusCode"),
            }
        fixed = action.get("FixedResponseConfig")
        if fixed:
            out["fixed_response"] = {
                "status_code": fixed.get("StatusCode"),
                "content_type": fixed.get("ContentType"),
            }
    out["target_groups"] = sorted(targets)
    return out


def certificate(
    arn: str, is_default: bool, described: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """One listener certificate: from ACM when it is an ACM certificate. Pure."""
    acm = described.get(arn)
    if acm is None:  # an IAM server certificate: its name is all the listener knows
        return {"name": _arn_name(arn), "default": is_default, "type": "IAM", "arn": arn}
    return {
        "name": acm.get("DomainName") or _arn_name(arn),
        "default": is_default,
        "type": acm.get("Type"),
        "status": acm.get("Status"),
        "not_after": _utc(acm.get("NotAfter")),
        "subject_alternative_names": sorted(acm.get("SubjectAlternativeNames", [])),
        "key_algorithm": acm.get("KeyAlgorithm"),
        "arn": arn,
    }


def listener_attributes(
    listener: Mapping[str, Any],
    listener_certificates: Sequence[Mapping[str, Any]],
    described: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """One listener, labelled `PROTOCOL:PORT`. Pure."""
    protocol = listener.get("Protocol")
    port = listener.get("Port")
    tls = protocol in _TLS_PROTOCOLS
    defaults: dict[str, bool] = {}
    # DescribeListenerCertificates lists the default certificate twice (once as default).
    for cert in [*listener.get("Certificates", []), *listener_certificates]:
        arn = cert["CertificateArn"]
        defaults[arn] = defaults.get(arn, False) or bool(cert.get("IsDefault"))
    if listener.get("Certificates") and not any(defaults.values()):
        defaults[listener["Certificates"][0]["CertificateArn"]] = True
    return {
        "label": f"{protocol}:{port}" if port is not None else str(protocol),
        "protocol": protocol,
        "port": port,
        "ssl_policy": listener.get("SslPolicy") if tls else None,
        "alpn_policy": sorted(listener.get("AlpnPolicy", [])),
        **_action(listener.get("DefaultActions", [])),
        "certificates": sorted(
            (certificate(arn, is_default, described) for arn, is_default in defaults.items()),
            key=lambda c: (not c["default"], str(c["name"]), c["arn"]),
        ),
    }


def load_balancer_attributes(
    lb: Mapping[str, Any],
    tags: Mapping[str, str],
    listeners: Sequence[Mapping[str, Any]],
    listener_certificates: Mapping[str, Sequence[Mapping[str, Any]]],
    described: Mapping[str, Mapping[str, Any]],
    group_names: Mapping[str, str],
) -> dict[str, Any]:
    """The attributes of one load balancer (a raw DescribeLoadBalancers item). Pure."""
    return {
        "type": lb.get("Type"),
        "scheme": lb.get("Scheme"),
        "ip_address_type": lb.get("IpAddressType"),
        # How many zones, not which: zone names map to different places in every account.
        "availability_zone_count": len({z["ZoneName"] for z in lb.get("AvailabilityZones", [])}),
        "security_groups": sorted(group_names.get(g, g) for g in lb.get("SecurityGroups", [])),
        "vpc_id": lb.get("VpcId"),
        "dns_name": lb.get("DNSName"),
        "arn": lb.get("LoadBalancerArn"),
        "tags": dict(sorted(tags.items())),
        "listeners": sorted(
            (
                listener_attributes(
                    listener, listener_certificates.get(listener["ListenerArn"], []), described
                )
                for listener in listeners
            ),
            key=lambda item: (item["port"] or 0, str(item["protocol"])),
        ),
    }


def _is_acm(arn: str) -> bool:
    return arn.startswith("arn:") and arn.split(":")[2] == "acm"


@register
class LoadBalancers(SourceType[LoadBalancerOptions]):
    type_name: ClassVar[str] = "aws.elbv2.load_balancers"
    Options: ClassVar[type[SourceOptions]] = LoadBalancerOptions
    summary: ClassVar[str] = (
        "Application, network and gateway load balancers: scheme, listeners (HTTPS:443) with "
        "SSL policies, default actions and ACM certificates, keyed by name."
    )
    iam_actions: ClassVar[tuple[str, ...]] = (
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeListenerCertificates",
        "acm:DescribeCertificate",
        "ec2:DescribeSecurityGroups",
    )
    volatile_paths: ClassVar[tuple[str, ...]] = (
        "dns_name",
        "arn",
        "listeners.certificates.not_after",
    )

    def fetch(self, options: LoadBalancerOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)
        wanted = tag_filter(options)

        def one(region: str) -> dict[str, Any]:
            elb = client(session, "elbv2", region, options)
            every = list(paginate(elb, "describe_load_balancers", "LoadBalancers"))
            tags: dict[str, dict[str, str]] = {}
            for chunk in chunks((lb["LoadBalancerArn"] for lb in every), _TAGS_CHUNK):
                for item in paginate(elb, "describe_tags", "TagDescriptions", ResourceArns=chunk):
                    tags[item["ResourceArn"]] = tags_of(item.get("Tags"))
            lbs = [lb for lb in every if wanted(tags.get(lb["LoadBalancerArn"], {}))]
            listeners = {
                lb["LoadBalancerArn"]: list(
                    paginate(
                        elb,
                        "describe_listeners",
                        "Listeners",
                        LoadBalancerArn=lb["LoadBalancerArn"],
                    )
                )
                for lb in lbs
            }
            listener_certificates = {
                listener["ListenerArn"]: list(
                    paginate(
                        elb,
                        "describe_listener_certificates",
                        "Certificates",
                        ListenerArn=listener["ListenerArn"],
                    )
                )
                for found in listeners.values()
                for listener in found
                if listener.get("Protocol") in _TLS_PROTOCOLS
            }
            arns = sorted(
                {
                    cert["CertificateArn"]
                    for certs in (
                        *listener_certificates.values(),
                        *(lst.get("Certificates", []) for f in listeners.values() for lst in f),
                    )
                    for cert in certs
                    if _is_acm(cert["CertificateArn"])
                }
            )
            described: dict[str, Any] = {}
            acm_clients: dict[str, Any] = {}
            for arn in arns:
                cert_region = arn.split(":")[3] or region
                if cert_region not in acm_clients:
                    acm_clients[cert_region] = client(session, "acm", cert_region, options)
                acm = acm_clients[cert_region]
                # AccessDenied fails the source naming acm:DescribeCertificate.
                with aws_errors(acm):
                    described[arn] = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            group_ids = sorted({g for lb in lbs for g in lb.get("SecurityGroups", [])})
            groups = []
            if group_ids:
                ec2 = client(session, "ec2", region, options)
                groups = describe_where(
                    ec2,
                    "describe_security_groups",
                    "SecurityGroups",
                    "group-id",
                    group_ids,
                    _FILTER_CHUNK,
                )
            return {
                "load_balancers": lbs,
                "tags": tags,
                "listeners": listeners,
                "listener_certificates": listener_certificates,
                "certificates": described,
                "security_groups": groups,
            }

        return [{"region": region, **data} for region, data in per_region(options, one)]

    def normalize(self, raw: list[dict[str, Any]], options: LoadBalancerOptions) -> list[Resource]:
        wanted = tag_filter(options)
        resources = []
        for region_data in raw:
            region = region_data["region"]
            group_names = {g["GroupId"]: g["GroupName"] for g in region_data["security_groups"]}
            for lb in region_data["load_balancers"]:
                arn = lb["LoadBalancerArn"]
                tags = region_data["tags"].get(arn, {})
                if not wanted(tags):
                    continue
                resources.append(
                    Resource(
                        category="network",
                        resource_type="aws.elbv2.load_balancer",
                        key=options.key(region, lb["LoadBalancerName"]),
                        attributes=load_balancer_attributes(
                            lb,
                            tags,
                            region_data["listeners"].get(arn, []),
                            region_data["listener_certificates"],
                            region_data["certificates"],
                            group_names,
                        ),
                    )
                )
        return resources
