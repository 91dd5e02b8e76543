"""`aws.ecs.services`: ECS services keyed by `cluster/service`, with their task definitions.

Three kinds of resources, each in its own category:
- `instances` / `aws.ecs.service` (`cluster/service`): desired count, launch type or capacity
  providers, platform version, task and container cpu and memory, deployment settings. The task
  definition is named by its family; its revision number drifts by nature and is volatile;
- `packages` / `aws.ecs.image` (`cluster/service/container`): the image's registry, repository,
  tag (as `version`, so that package tolerances apply) and digest when the reference pins one.
  The registry stands apart because it carries the account and region
  (`123456789012.dkr.ecr.us-east-1.amazonaws.com`), which differ between environments by design;
- `config` / `aws.ecs.container_env` (`cluster/service/container`): the container's environment
  variables as `{NAME: value}` (the runner hashes the values of secret-looking names), and the
  `secrets` entries as `references: [{name, value_from}]`. A `value_from` is the ARN of a
  parameter or secret, not the secret itself, and it is kept as it is: it is what shows a
  staging service reading production's secret. (Under a `{NAME: ARN}` mapping the runner would
  hash the ARNs of secret-looking names, and with them that finding.)

IAM actions: `ecs:ListClusters` (only when `clusters` is not given), `ecs:ListServices`,
`ecs:DescribeServices`, `ecs:DescribeTaskDefinition`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from pydantic import Field

from collectors.aws.base import (
    AwsOptions,
    aws_errors,
    client,
    paginate,
    per_region,
    session_for,
    tag_filter,
    tags_of,
)
from collectors.base import CollectorError, FetchContext, Resource, SourceOptions, SourceType
from collectors.registry import register

_DESCRIBE_BATCH = 10  # DescribeServices takes at most 10 services a call


class EcsServiceOptions(AwsOptions):
    clusters: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Cluster names (or ARNs) to read; all clusters of the region by default.",
    )


def _name(arn_or_name: str) -> str:
    """`arn:aws:ecs:R:A:cluster/NAME` (or `service/CLUSTER/NAME`) -> NAME; a name as it is."""
    return arn_or_name.rsplit("/", 1)[-1]


def _units(value: Any) -> Any:
    """Task-level cpu and memory come back as strings ("512"): numbers when they are."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def parse_image(image: str) -> dict[str, str | None]:
    """`registry/repo:tag@sha256:...` -> registry, repository, version (the tag), digest. Pure.

    The first path segment is a registry when it has a dot or a port or is `localhost`, as
    Docker reads it; a reference with neither tag nor digest means `latest`.
    """
    rest, _, digest = image.partition("@")
    registry: str | None = None
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    repository, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        repository, tag = rest, ""
    return {
        "registry": registry,
        "repository": repository,
        "version": tag or (None if digest else "latest"),
        "digest": digest or None,
    }


def _deployment(service: dict[str, Any]) -> dict[str, Any]:
    config = service.get("deploymentConfiguration") or {}
    breaker = config.get("deploymentCircuitBreaker") or {}
    return {
        "controller": (service.get("deploymentController") or {}).get("type", "ECS"),
        "maximum_percent": config.get("maximumPercent"),
        "minimum_healthy_percent": config.get("minimumHealthyPercent"),
        "circuit_breaker": bool(breaker.get("enable", False)),
        "rollback": bool(breaker.get("rollback", False)),
    }


def service_resources(
    service: dict[str, Any], task_definition: dict[str, Any] | None, key: str
) -> list[Resource]:
    """One DescribeServices entry and its task definition as resources. Pure."""
    td = task_definition or {}
    containers = sorted(td.get("containerDefinitions") or [], key=lambda c: str(c.get("name")))
    strategy = service.get("capacityProviderStrategy") or []
    platform = td.get("runtimePlatform") or {}
    family, _, revision = str(service.get("taskDefinition", "")).rpartition(":")
    instances: dict[str, Any] = {
        "desired_count": service.get("desiredCount"),
        "launch_type": service.get("launchType"),
        "capacity_providers": {
            s["capacityProvider"]: {"weight": s.get("weight", 0), "base": s.get("base", 0)}
            for s in strategy
        }
        or None,
        "platform_version": service.get("platformVersion"),
        "scheduling_strategy": service.get("schedulingStrategy"),
        "task_definition": {
            "family": td.get("family") or _name(family),
            "revision": td.get("revision") or (int(revision) if revision.isdigit() else None),
        },
        "cpu": _units(td.get("cpu")),
        "memory": _units(td.get("memory")),
        "network_mode": td.get("networkMode"),
        "requires_compatibilities": sorted(td.get("requiresCompatibilities") or []),
        "cpu_architecture": platform.get("cpuArchitecture"),
        "os_family": platform.get("operatingSystemFamily"),
        "containers": {
            str(c["name"]): {
                "cpu": c.get("cpu"),
                "memory": c.get("memory"),
                "memory_reservation": c.get("memoryReservation"),
                "essential": c.get("essential", True),
            }
            for c in containers
        },
        "deployment": _deployment(service),
        "tags": tags_of(service.get("tags")),
    }
    resources = [Resource("instances", "aws.ecs.service", key, instances)]
    for container in containers:
        name = str(container["name"])
        resources.append(
            Resource(
                "packages",
                "aws.ecs.image",
                f"{key}/{name}",
                parse_image(str(container.get("image", ""))),
            )
        )
        environment = {str(e["name"]): e.get("value") for e in container.get("environment") or []}
        references = sorted(
            (
                {"name": str(s["name"]), "value_from": s.get("valueFrom")}
                for s in container.get("secrets") or []
            ),
            key=lambda r: r["name"],
        )
        files = sorted(
            str(f.get("value")) for f in container.get("environmentFiles") or [] if f.get("value")
        )
        resources.append(
            Resource(
                "config",
                "aws.ecs.container_env",
                f"{key}/{name}",
                {"environment": environment, "references": references, "environment_files": files},
            )
        )
    return resources


@register
class EcsServices(SourceType[EcsServiceOptions]):
    """ECS services, their images and their containers' environments.

    IAM: ecs:ListClusters (without `clusters`), ecs:ListServices, ecs:DescribeServices,
    ecs:DescribeTaskDefinition.
    """

    type_name: ClassVar[str] = "aws.ecs.services"
    Options: ClassVar[type[SourceOptions]] = EcsServiceOptions
    summary: ClassVar[str] = (
        "ECS services by cluster/service: sizes and deployment (instances), container images "
        "(packages), container environments (config)."
    )
    iam_actions: ClassVar[tuple[str, ...]] = (
        "ecs:ListClusters",  # only when `clusters` is not given
        "ecs:ListServices",
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
    )
    volatile_paths: ClassVar[tuple[str, ...]] = ("task_definition.revision",)

    def iam_actions_for(self, options: EcsServiceOptions) -> tuple[str, ...]:
        if options.clusters:
            return tuple(a for a in self.iam_actions if a != "ecs:ListClusters")
        return self.iam_actions

    def fetch(self, options: EcsServiceOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)

        def one(region: str) -> dict[str, Any]:
            ecs = client(session, "ecs", region, options)
            if options.clusters is not None:
                clusters = [_name(c) for c in options.clusters]
            else:
                clusters = sorted(
                    _name(str(arn)) for arn in paginate(ecs, "list_clusters", "clusterArns")
                )
            found: list[dict[str, Any]] = []
            for cluster in clusters:
                arns = list(paginate(ecs, "list_services", "serviceArns", cluster=cluster))
                services: list[dict[str, Any]] = []
                for start in range(0, len(arns), _DESCRIBE_BATCH):
                    with aws_errors(ecs):
                        response = ecs.describe_services(
                            cluster=cluster,
                            services=arns[start : start + _DESCRIBE_BATCH],
                            include=["TAGS"],
                        )
                    services += response.get("services", [])
                found.append({"name": cluster, "services": services})

            def describe(arn: str) -> dict[str, Any]:
                with aws_errors(ecs):
                    definition: dict[str, Any] = ecs.describe_task_definition(taskDefinition=arn)[
                        "taskDefinition"
                    ]
                return definition

            wanted = sorted(
                {
                    str(s["taskDefinition"])
                    for c in found
                    for s in c["services"]
                    if s.get("taskDefinition")
                }
            )
            with ThreadPoolExecutor(max_workers=options.max_concurrency) as pool:
                definitions = dict(zip(wanted, pool.map(describe, wanted), strict=True))
            return {"clusters": found, "task_definitions": definitions}

        try:
            return [{"region": region, **data} for region, data in per_region(options, one)]
        except CollectorError as exc:
            if "ClusterNotFoundException" in str(exc):
                raise CollectorError(
                    f"{exc} (check the names in `clusters`: {options.clusters})"
                ) from None
            raise

    def normalize(self, raw: list[dict[str, Any]], options: EcsServiceOptions) -> list[Resource]:
        wanted = tag_filter(options)
        resources: list[Resource] = []
        for region_data in raw:
            region = region_data["region"]
            definitions: dict[str, Any] = region_data.get("task_definitions") or {}
            for cluster in region_data["clusters"]:
                for service in cluster["services"]:
                    if service.get("status", "ACTIVE") != "ACTIVE":
                        continue  # DRAINING / INACTIVE: being deleted
                    if not wanted(tags_of(service.get("tags"))):
                        continue
                    key = options.key(region, f"{cluster['name']}/{service['serviceName']}")
                    definition = definitions.get(str(service.get("taskDefinition", "")))
                    resources += service_resources(service, definition, key)
        return sorted(resources, key=lambda r: (r.resource_type, r.key))
