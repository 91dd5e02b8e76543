"""aws.ecs.services against a moto server over HTTP: sizes, images and container environments."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collectors.aws.ecs_services import EcsServices, parse_image, service_resources
from collectors.base import CollectorError
from collectors.runner import SourceOutcome
from tests.support import HASHER

T = "aws.ecs.services"
PLAINTEXT = "hunter2-correct-horse"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
DIGEST = "sha256:" + "a" * 64
PARAMETER_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/app/staging/api_key"
hasher = HASHER


def run(aws: Any, **options: Any) -> SourceOutcome:
    outcome: SourceOutcome = aws.run(T, **options)
    assert outcome.status == "ok", outcome.error
    return outcome


def task_definition(ecs: Any, family: str = "orders-staging") -> str:
    arn: str = ecs.register_task_definition(
        family=family,
        cpu="512",
        memory="1024",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        containerDefinitions=[
            {
                "name": "app",
                "image": f"{REGISTRY}/orders:1.4.2",
                "cpu": 384,
                "memory": 768,
                "environment": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "DB_PASSWORD", "value": PLAINTEXT},
                    {"name": "DB_HOST", "value": "db.staging.internal"},
                ],
                "secrets": [{"name": "API_KEY", "valueFrom": PARAMETER_ARN}],
            },
            {"name": "envoy", "image": f"envoyproxy/envoy:v1.30.1@{DIGEST}", "cpu": 128},
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return arn


def service(ecs: Any, cluster: str, name: str, td: str, env: str = "staging") -> None:
    ecs.create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition=td,
        desiredCount=2,
        launchType="FARGATE",
        platformVersion="1.4.0",
        tags=[{"key": "env", "value": env}],
    )


def test_sizes_images_and_environments(aws: Any) -> None:
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="main-staging")
    td = task_definition(ecs)
    task_definition(ecs)  # a second revision, unused
    service(ecs, "main-staging", "orders", td)

    outcome = run(aws)

    found = {(r.resource_type, r.key): r for r in outcome.resources}
    assert set(found) == {
        ("aws.ecs.service", "main-staging/orders"),
        ("aws.ecs.image", "main-staging/orders/app"),
        ("aws.ecs.image", "main-staging/orders/envoy"),
        ("aws.ecs.container_env", "main-staging/orders/app"),
        ("aws.ecs.container_env", "main-staging/orders/envoy"),
    }
    svc = found[("aws.ecs.service", "main-staging/orders")]
    assert svc.category == "instances"
    attrs = svc.attributes
    assert attrs["desired_count"] == 2
    assert attrs["launch_type"] == "FARGATE"
    assert attrs["platform_version"] == "1.4.0"
    assert attrs["cpu"] == 512
    assert attrs["memory"] == 1024
    assert attrs["task_definition"] == {"family": "orders-staging", "revision": 1}
    assert attrs["containers"]["app"] == {
        "cpu": 384,
        "memory": 768,
        "memory_reservation": None,
        "essential": True,
    }
    assert attrs["tags"] == {"env": "staging"}

    app_image = found[("aws.ecs.image", "main-staging/orders/app")]
    assert app_image.category == "packages"
    assert app_image.attributes == {
        "registry": REGISTRY,
        "repository": "orders",
        "version": "1.4.2",
        "digest": None,
    }
    envoy = found[("aws.ecs.image", "main-staging/orders/envoy")].attributes
    assert (envoy["repository"], envoy["version"], envoy["digest"]) == (
        "envoyproxy/envoy",
        "v1.30.1",
        DIGEST,
    )

    env = found[("aws.ecs.container_env", "main-staging/orders/app")]
    assert env.category == "config"
    assert env.attributes["environment"] == {
        "LOG_LEVEL": "info",
        "DB_PASSWORD": hasher(PLAINTEXT),
        "DB_HOST": "db.staging.internal",
    }
    # The ARN a secret comes from is not the secret: kept, so a leak to production shows.
    assert env.attributes["references"] == [{"name": "API_KEY", "value_from": PARAMETER_ARN}]
    assert (
        found[("aws.ecs.container_env", "main-staging/orders/envoy")].attributes["environment"]
        == {}
    )
    assert PLAINTEXT not in json.dumps([r.attributes for r in outcome.resources])


def test_revision_is_volatile() -> None:
    assert "task_definition.revision" in EcsServices.volatile_paths


def test_clusters_option_tag_filters_and_batches(aws: Any) -> None:
    ecs = aws.client("ecs")
    for cluster in ("main-staging", "batch-staging", "other"):
        ecs.create_cluster(clusterName=cluster)
    td = task_definition(ecs)
    for i in range(12):  # DescribeServices takes 10 a call
        service(ecs, "main-staging", f"svc{i:02d}", td)
    service(ecs, "main-staging", "prod-thing", td, env="production")
    service(ecs, "batch-staging", "jobs", td)
    service(ecs, "other", "elsewhere", td)

    def services(**options: Any) -> set[str]:
        return {r.key for r in aws.collect(T, **options) if r.resource_type == "aws.ecs.service"}

    every = services()
    assert len(every) == 15
    assert "other/elsewhere" in every
    chosen = services(clusters=["main-staging", "batch-staging"], filters={"tag:env": "staging"})
    assert chosen == {f"main-staging/svc{i:02d}" for i in range(12)} | {"batch-staging/jobs"}


def test_an_unknown_cluster_fails_the_source(aws: Any) -> None:
    with pytest.raises(CollectorError, match=r"ClusterNotFoundException.*clusters"):
        aws.collect(T, clusters=["nope"])


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", (None, "nginx", "latest", None)),
        ("nginx:1.25", (None, "nginx", "1.25", None)),
        ("library/nginx@sha256:abc", (None, "library/nginx", None, "sha256:abc")),
        ("localhost:5000/app:2", ("localhost:5000", "app", "2", None)),
        (
            "registry.example.com:5000/team/app",
            ("registry.example.com:5000", "team/app", "latest", None),
        ),
        (f"{REGISTRY}/orders:1.4.2@sha256:abc", (REGISTRY, "orders", "1.4.2", "sha256:abc")),
    ],
)
def test_parse_image(image: str, expected: tuple[Any, ...]) -> None:
    parsed = parse_image(image)
    assert (parsed["registry"], parsed["repository"], parsed["version"], parsed["digest"]) == (
        expected
    )


def test_service_resources_from_a_recorded_response() -> None:
    # moto does not echo deploymentConfiguration nor capacity providers: a recorded response.
    recorded = {
        "serviceName": "web",
        "desiredCount": 3,
        "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}],
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web-staging:42",
        "deploymentConfiguration": {
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": True, "rollback": False},
        },
        "deploymentController": {"type": "ECS"},
    }
    [svc] = service_resources(recorded, None, "main/web")
    attrs = svc.attributes
    assert attrs["capacity_providers"] == {"FARGATE_SPOT": {"weight": 1, "base": 0}}
    assert attrs["launch_type"] is None
    assert attrs["task_definition"] == {"family": "web-staging", "revision": 42}
    assert attrs["deployment"] == {
        "controller": "ECS",
        "maximum_percent": 200,
        "minimum_healthy_percent": 100,
        "circuit_breaker": True,
        "rollback": False,
    }
