"""aws.elbv2.load_balancers against a moto server over HTTP (ACM certificates included), and
its listener normalization by table."""

from __future__ import annotations

import re
from typing import Any

import pytest

from collectors.aws.elbv2_load_balancers import listener_attributes
from collectors.base import CollectorError
from tests.collectors.aws.fault_proxy import FaultProxy

T = "aws.elbv2.load_balancers"


def seed(aws: Any) -> dict[str, str]:
    ec2, elb, acm = aws.client("ec2"), aws.client("elbv2"), aws.client("acm")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{n}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName="lb-staging", Description="lb", VpcId=vpc)
    web = elb.create_load_balancer(
        Name="web-staging",
        Subnets=subnets,
        SecurityGroups=[group["GroupId"]],
        Scheme="internet-facing",
        Tags=[{"Key": "env", "Value": "staging"}],
    )["LoadBalancers"][0]["LoadBalancerArn"]
    target = elb.create_target_group(Name="web-staging", Protocol="HTTP", Port=80, VpcId=vpc)
    target_arn = target["TargetGroups"][0]["TargetGroupArn"]
    main = acm.request_certificate(
        DomainName="staging.example.com", SubjectAlternativeNames=["www.staging.example.com"]
    )["CertificateArn"]
    sni = acm.request_certificate(DomainName="api.staging.example.com")["CertificateArn"]
    elb.create_listener(
        LoadBalancerArn=web,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "redirect",
                "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
            }
        ],
    )
    https = elb.create_listener(
        LoadBalancerArn=web,
        Protocol="HTTPS",
        Port=443,
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        Certificates=[{"CertificateArn": main}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": target_arn}],
    )["Listeners"][0]["ListenerArn"]
    elb.add_listener_certificates(ListenerArn=https, Certificates=[{"CertificateArn": sni}])
    internal = elb.create_load_balancer(
        Name="admin-staging",
        Subnets=subnets,
        Scheme="internal",
        Tags=[{"Key": "env", "Value": "staging"}, {"Key": "team", "Value": "ops"}],
    )["LoadBalancers"][0]["LoadBalancerArn"]
    elb.create_listener(
        LoadBalancerArn=internal,
        Protocol="HTTP",
        Port=8080,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
            }
        ],
    )
    prod = elb.create_load_balancer(
        Name="web-production", Subnets=subnets, Tags=[{"Key": "env", "Value": "production"}]
    )["LoadBalancers"][0]["LoadBalancerArn"]
    elb.create_listener(
        LoadBalancerArn=prod,
        Protocol="HTTPS",
        Port=443,
        Certificates=[{"CertificateArn": main}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": target_arn}],
    )
    return {"main": main, "sni": sni}


def test_listeners_labelled_with_acm_certificates(aws: Any) -> None:
    certs = seed(aws)
    lbs = aws.by_key(T, filters={"tag:env": "staging"})
    assert set(lbs) == {"web-staging", "admin-staging"}
    web = lbs["web-staging"]
    assert web.category == "network"
    assert web.resource_type == "aws.elbv2.load_balancer"
    attrs = web.attributes
    assert attrs["type"] == "application"
    assert attrs["scheme"] == "internet-facing"
    assert attrs["ip_address_type"] == "ipv4"
    assert attrs["security_groups"] == ["lb-staging"]  # by name, not id
    assert attrs["availability_zone_count"] == 2
    assert attrs["tags"] == {"env": "staging"}
    assert [item["label"] for item in attrs["listeners"]] == ["HTTP:80", "HTTPS:443"]

    http, https = attrs["listeners"]
    assert http["default_action"] == "redirect"
    assert http["redirect"]["protocol"] == "HTTPS"
    assert http["redirect"]["status_code"] == "HTTP_301"
    assert http["ssl_policy"] is None  # no TLS, no policy
    assert http["certificates"] == []

    assert https["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["default_action"] == "forward"
    assert https["target_groups"] == ["web-staging"]
    default, extra = https["certificates"]
    assert (default["name"], default["default"]) == ("staging.example.com", True)
    assert (extra["name"], extra["default"]) == ("api.staging.example.com", False)
    assert default["arn"] == certs["main"]
    assert default["type"] == "AMAZON_ISSUED"
    assert default["subject_alternative_names"] == [
        "staging.example.com",
        "www.staging.example.com",
    ]
    expected = aws.client("acm").describe_certificate(CertificateArn=certs["main"])
    not_after = expected["Certificate"]["NotAfter"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", default["not_after"])
    assert default["not_after"].startswith(f"{not_after.year:04d}-{not_after.month:02d}-")

    admin = lbs["admin-staging"].attributes
    assert admin["scheme"] == "internal"
    (listener,) = admin["listeners"]
    assert listener["label"] == "HTTP:8080"
    assert listener["fixed_response"] == {"status_code": "404", "content_type": "text/plain"}


@pytest.mark.slow
def test_tag_filters_select_load_balancers(aws: Any) -> None:
    seed(aws)
    assert set(aws.by_key(T, filters={"tag:team": "ops"})) == {"admin-staging"}
    assert set(aws.by_key(T, filters={"tag:env": "prod*"})) == {"web-production"}
    assert set(aws.by_key(T)) == {"web-staging", "admin-staging", "web-production"}


def test_certificate_expiry_is_volatile() -> None:
    from collectors import registry

    cls = registry.get(T)
    assert cls is not None
    assert "listeners.certificates.not_after" in cls.volatile_paths


@pytest.mark.slow
def test_acm_access_denied_fails_the_source_naming_the_action(aws: Any) -> None:
    seed(aws)
    with FaultProxy(aws.endpoint) as proxy:
        proxy.deny = {"DescribeCertificate"}
        with pytest.raises(CollectorError, match=r"AccessDenied.*acm:DescribeCertificate"):
            aws.collect(T, endpoint_url=proxy.url, filters={"tag:env": "staging"})
        # Load balancers filtered out by tag are never described further: no ACM call.
        only_http = aws.by_key(T, endpoint_url=proxy.url, filters={"tag:team": "ops"})
    assert set(only_http) == {"admin-staging"}


IAM_CERT = "arn:aws:iam::123456789012:server-certificate/edge/web-2026"
ACM_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-0123456789ab"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{}/0123456789abcdef"


@pytest.mark.parametrize(
    ("listener", "expected"),
    [
        (
            {
                "Protocol": "TLS",
                "Port": 8443,
                "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                "AlpnPolicy": ["HTTP2Preferred"],
                "Certificates": [{"CertificateArn": IAM_CERT}],
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": TG.format("api")}],
            },
            {
                "label": "TLS:8443",
                "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                "alpn_policy": ["HTTP2Preferred"],
                "default_action": "forward",
                "target_groups": ["api"],
                "certificates": [
                    {"name": "web-2026", "default": True, "type": "IAM", "arn": IAM_CERT}
                ],
            },
        ),
        (
            {
                "Protocol": "HTTPS",
                "Port": 443,
                "SslPolicy": "ELBSecurityPolicy-2016-08",
                "Certificates": [{"CertificateArn": ACM_CERT}],
                "DefaultActions": [
                    {
                        "Type": "forward",
                        "Order": 2,
                        "ForwardConfig": {
                            "TargetGroups": [
                                {"TargetGroupArn": TG.format("blue"), "Weight": 90},
                                {"TargetGroupArn": TG.format("green"), "Weight": 10},
                            ]
                        },
                    },
                    {"Type": "authenticate-oidc", "Order": 1},
                ],
            },
            {
                "label": "HTTPS:443",
                "default_action": "authenticate-oidc > forward",
                "target_groups": ["blue", "green"],
            },
        ),
    ],
)
def test_listener_attributes(listener: dict[str, Any], expected: dict[str, Any]) -> None:
    acm = {ACM_CERT: {"DomainName": "example.com", "Type": "IMPORTED", "Status": "EXPIRED"}}
    attributes = listener_attributes(listener, [], acm)
    assert {k: attributes[k] for k in expected} == expected


def test_an_expired_acm_certificate_shows_its_status() -> None:
    listener = {"Protocol": "HTTPS", "Port": 443, "Certificates": [{"CertificateArn": ACM_CERT}]}
    acm = {ACM_CERT: {"DomainName": "example.com", "Type": "IMPORTED", "Status": "EXPIRED"}}
    (cert,) = listener_attributes(listener, [], acm)["certificates"]
    assert (cert["name"], cert["status"], cert["default"]) == ("example.com", "EXPIRED", True)
