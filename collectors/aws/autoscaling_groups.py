"""`aws.autoscaling.groups`: each Auto Scaling group's sizes, instance types and policies, keyed
by group name (the environment's own name inside it is replaced by the diff, not here).

Instance types come from where the group launches from: the launch template version it
names (`$Latest`, `$Default` or a number, resolved to that version's data), a launch
configuration, or a mixed-instances policy's overrides (each override may name a template of
its own). A template or configuration that no longer exists reads `(unknown)`.
`desired_capacity` is reported but volatile: scaling policies move it on their own; `min_size`
and `max_size` are the configuration that counts. Termination policies keep their order (it is
the order AWS applies them in). Tags are filtered client-side, so `tag:KEY` globs work as on
every other type.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from collectors._util import json_safe
from collectors.aws.base import (
    AwsOptions,
    aws_errors,
    chunks,
    client,
    paginate,
    per_region,
    session_for,
    tag_filter,
    tags_of,
)
from collectors.base import FetchContext, Resource, SourceOptions, SourceType
from collectors.registry import register

UNKNOWN = "(unknown)"
# DescribeLaunchConfigurations takes at most 50 names a call.
_LC_CHUNK = 50


class AutoScalingGroupOptions(AwsOptions):
    pass


def template_ref(spec: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(template id or name, version) of a LaunchTemplateSpecification; `$Default` when the
    version is left out, as Auto Scaling does."""
    if not spec:
        return None
    template = spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName")
    if not template:
        return None
    return str(template), str(spec.get("Version") or "$Default")


def _template_specs(group: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if group.get("LaunchTemplate"):
        yield group["LaunchTemplate"]
    policy = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    if policy.get("LaunchTemplateSpecification"):
        yield policy["LaunchTemplateSpecification"]
    for override in policy.get("Overrides", []):
        if override.get("LaunchTemplateSpecification"):
            yield override["LaunchTemplateSpecification"]


def _arn_name(arn: str) -> str:
    """`arn:...:targetgroup/web-staging/0123abcd` -> `web-staging`."""
    parts = arn.split(":")[-1].split("/")
    return parts[1] if len(parts) >= 2 else arn


def _template_type(
    spec: Mapping[str, Any] | None, templates: Mapping[str, Mapping[str, Any] | None]
) -> str:
    ref = template_ref(spec)
    version = templates.get(_ref_key(ref)) if ref else None
    if version is None:
        return UNKNOWN
    return str(version.get("LaunchTemplateData", {}).get("InstanceType") or UNKNOWN)


def _ref_key(ref: tuple[str, str]) -> str:
    return f"{ref[0]}@{ref[1]}"


def instance_types(
    group: Mapping[str, Any],
    templates: Mapping[str, Mapping[str, Any] | None],
    configurations: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """The instance types a group may launch, sorted. Pure.

    `templates` maps `template@version` to that version (DescribeLaunchTemplateVersions item;
    None when it is gone);
    `configurations` maps launch configuration names to their descriptions."""
    policy = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate")
    if policy:
        base = policy.get("LaunchTemplateSpecification")
        types: set[str] = set()
        for override in policy.get("Overrides", []):
            if override.get("InstanceType"):
                types.add(str(override["InstanceType"]))
            elif override.get("LaunchTemplateSpecification"):
                types.add(_template_type(override["LaunchTemplateSpecification"], templates))
        attribute_based = any(o.get("InstanceRequirements") for o in policy.get("Overrides", []))
        if not types and not attribute_based:
            types.add(_template_type(base, templates))
        return sorted(types)
    if group.get("LaunchTemplate"):
        return [_template_type(group["LaunchTemplate"], templates)]
    name = group.get("LaunchConfigurationName")
    if name:
        configuration = configurations.get(name)
        return [str(configuration["InstanceType"]) if configuration else UNKNOWN]
    return []


def _template_name(
    spec: Mapping[str, Any] | None, templates: Mapping[str, Mapping[str, Any] | None]
) -> dict[str, str] | None:
    ref = template_ref(spec)
    if spec is None or ref is None:
        return None
    # A spec may carry only the id; the version described carries the name.
    version = templates.get(_ref_key(ref)) or {}
    name = spec.get("LaunchTemplateName") or version.get("LaunchTemplateName") or ref[0]
    return {"name": str(name), "version": ref[1]}


def group_attributes(
    group: Mapping[str, Any],
    templates: Mapping[str, Mapping[str, Any] | None],
    configurations: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The attributes of one group (a raw DescribeAutoScalingGroups item). Pure."""
    mixed = group.get("MixedInstancesPolicy") or {}
    mixed_template = mixed.get("LaunchTemplate") or {}
    spec = group.get("LaunchTemplate") or mixed_template.get("LaunchTemplateSpecification")
    attributes: dict[str, Any] = {
        "min_size": group.get("MinSize"),
        "max_size": group.get("MaxSize"),
        "desired_capacity": group.get("DesiredCapacity"),
        "instance_types": instance_types(group, templates, configurations),
        "launch_template": _template_name(spec, templates),
        "launch_configuration": group.get("LaunchConfigurationName"),
        "health_check_type": group.get("HealthCheckType"),
        "health_check_grace_period": group.get("HealthCheckGracePeriod"),
        "termination_policies": list(group.get("TerminationPolicies", [])),
        # How many zones, not which: zone names map to different places in every account.
        "availability_zone_count": len(set(group.get("AvailabilityZones", []))),
        "target_groups": sorted(_arn_name(a) for a in group.get("TargetGroupARNs", [])),
        "load_balancers": sorted(group.get("LoadBalancerNames", [])),
        "suspended_processes": sorted(
            p["ProcessName"] for p in group.get("SuspendedProcesses", [])
        ),
        "default_cooldown": group.get("DefaultCooldown"),
        "max_instance_lifetime": group.get("MaxInstanceLifetime"),
        "capacity_rebalance": bool(group.get("CapacityRebalance")),
        "new_instances_protected_from_scale_in": bool(
            group.get("NewInstancesProtectedFromScaleIn")
        ),
        "tags": dict(sorted(tags_of(group.get("Tags")).items())),
    }
    if mixed:
        distribution = mixed.get("InstancesDistribution") or {}
        attributes["instances_distribution"] = {
            "on_demand_base_capacity": distribution.get("OnDemandBaseCapacity"),
            "on_demand_percentage_above_base": distribution.get(
                "OnDemandPercentageAboveBaseCapacity"
            ),
            "on_demand_allocation_strategy": distribution.get("OnDemandAllocationStrategy"),
            "spot_allocation_strategy": distribution.get("SpotAllocationStrategy"),
            "spot_max_price": distribution.get("SpotMaxPrice"),
        }
        requirements = [
            json_safe(o["InstanceRequirements"])
            for o in mixed_template.get("Overrides", [])
            if o.get("InstanceRequirements")
        ]
        if requirements:
            attributes["instance_requirements"] = requirements
    return attributes


def _template_version(ec2: Any, ref: tuple[str, str]) -> dict[str, Any] | None:
    """One template version (name, number, LaunchTemplateData); None when it is gone."""
    from botocore.exceptions import ClientError

    template, version = ref
    named = {"LaunchTemplateId": template} if template.startswith("lt-") else {}
    params = named or {"LaunchTemplateName": template}
    try:
        answer = ec2.describe_launch_template_versions(**params, Versions=[version])
    except ClientError as exc:
        if "NotFound" in str(exc.response.get("Error", {}).get("Code", "")):
            return None
        with aws_errors(ec2):
            raise
    versions = answer.get("LaunchTemplateVersions", [])
    return dict(versions[0]) if versions else None


@register
class AutoScalingGroups(SourceType[AutoScalingGroupOptions]):
    type_name: ClassVar[str] = "aws.autoscaling.groups"
    Options: ClassVar[type[SourceOptions]] = AutoScalingGroupOptions
    summary: ClassVar[str] = (
        "Auto Scaling groups: sizes, instance types (launch template, configuration or "
        "mixed policy), health checks, termination policies, keyed by group name."
    )
    iam_actions: ClassVar[tuple[str, ...]] = (
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeLaunchConfigurations",
        "ec2:DescribeLaunchTemplateVersions",
    )
    # Scaling policies and scheduled actions move the desired capacity on their own.
    volatile_paths: ClassVar[tuple[str, ...]] = ("desired_capacity",)

    def fetch(self, options: AutoScalingGroupOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)
        wanted = tag_filter(options)

        def one(region: str) -> dict[str, Any]:
            autoscaling = client(session, "autoscaling", region, options)
            ec2 = client(session, "ec2", region, options)
            groups = [
                g
                for g in paginate(autoscaling, "describe_auto_scaling_groups", "AutoScalingGroups")
                if wanted(tags_of(g.get("Tags")))
            ]
            refs = {ref for g in groups for s in _template_specs(g) if (ref := template_ref(s))}
            templates = {_ref_key(ref): _template_version(ec2, ref) for ref in sorted(refs)}
            names = sorted(
                {g["LaunchConfigurationName"] for g in groups if g.get("LaunchConfigurationName")}
            )
            configurations = [
                c
                for chunk in chunks(names, _LC_CHUNK)
                for c in paginate(
                    autoscaling,
                    "describe_launch_configurations",
                    "LaunchConfigurations",
                    LaunchConfigurationNames=chunk,
                )
            ]
            return {"groups": groups, "templates": templates, "configurations": configurations}

        return [{"region": region, **data} for region, data in per_region(options, one)]

    def normalize(
        self, raw: list[dict[str, Any]], options: AutoScalingGroupOptions
    ) -> list[Resource]:
        wanted = tag_filter(options)
        resources = []
        for region_data in raw:
            region = region_data["region"]
            templates = region_data["templates"]
            configurations = {
                c["LaunchConfigurationName"]: c for c in region_data["configurations"]
            }
            for group in region_data["groups"]:
                if not wanted(tags_of(group.get("Tags"))):
                    continue
                resources.append(
                    Resource(
                        category="instances",
                        resource_type="aws.autoscaling.group",
                        key=options.key(region, group["AutoScalingGroupName"]),
                        attributes=group_attributes(group, templates, configurations),
                    )
                )
        return resources
