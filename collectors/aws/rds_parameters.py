"""`aws.rds.parameters`: the parameters changed in RDS parameter groups, keyed by group name.

Each DB parameter group is an `aws.rds.parameter_group` and each DB cluster parameter group
(Aurora, Multi-AZ DB clusters) an `aws.rds.cluster_parameter_group`, keyed by the group's name.
Only parameters whose source is `user` are reported (what was changed from the engine's
defaults), as a list keyed by parameter name, so the diff reads
`parameters[max_connections].value`.

Which groups:
- by default, the groups *in use* by the DB instances (and, with `clusters`, the DB clusters)
  that match `filters`. A `tag:KEY` filter therefore selects through the instances' tags:
  teams tag their databases far more often than their parameter groups, and a group used by
  a staging database is a staging group. AWS's default groups (`default.postgres15`) are
  left out: they hold no parameter of their own, and aws.rds.instances already says which
  database uses a default group.
- with `groups` and/or `cluster_groups`, exactly the named groups (a missing one fails the
  source). `filters` then match the groups' *own* tags (one ListTagsForResource per group).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple

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
from collectors.base import (
    Attributes,
    CollectorError,
    FetchContext,
    Resource,
    SourceOptions,
    SourceType,
)
from collectors.registry import register


class RdsParameterOptions(AwsOptions):
    groups: list[str] | None = Field(
        default=None, min_length=1, description="DB parameter groups to report, by name."
    )
    cluster_groups: list[str] | None = Field(
        default=None, min_length=1, description="DB cluster parameter groups to report, by name."
    )
    clusters: bool = Field(
        default=True,
        description="Without explicit groups: also the cluster parameter groups of DB clusters.",
    )
    include_tags: bool = Field(
        default=False, description="Report each group's tags (one extra call per group)."
    )

    @property
    def explicit(self) -> bool:
        return bool(self.groups or self.cluster_groups)


class _Kind(NamedTuple):
    """One kind of parameter group, as the RDS API spells it."""

    list_operation: str
    list_key: str
    parameters_operation: str
    name_field: str
    arn_field: str
    resource_type: str
    what: str


_KINDS = {
    "db": _Kind(
        "describe_db_parameter_groups",
        "DBParameterGroups",
        "describe_db_parameters",
        "DBParameterGroupName",
        "DBParameterGroupArn",
        "aws.rds.parameter_group",
        "DB parameter group",
    ),
    "cluster": _Kind(
        "describe_db_cluster_parameter_groups",
        "DBClusterParameterGroups",
        "describe_db_cluster_parameters",
        "DBClusterParameterGroupName",
        "DBClusterParameterGroupArn",
        "aws.rds.cluster_parameter_group",
        "DB cluster parameter group",
    ),
}


def groups_in_use(
    instances: list[dict[str, Any]],
    clusters: list[dict[str, Any]],
    wanted: Callable[[Mapping[str, str]], bool],
) -> tuple[set[str], set[str]]:
    """The DB and cluster parameter group names used by the instances and clusters `wanted`
    selects by their tags. Pure."""
    db_groups = {
        group["DBParameterGroupName"]
        for db in instances
        if wanted(tags_of(db.get("TagList")))
        for group in db.get("DBParameterGroups", [])
        if group.get("DBParameterGroupName")
    }
    cluster_groups = {
        str(cluster["DBClusterParameterGroup"])
        for cluster in clusters
        if cluster.get("DBClusterParameterGroup") and wanted(tags_of(cluster.get("TagList")))
    }
    return db_groups, cluster_groups


def canonical_parameters(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """User-set parameters as `{"name", "value", "apply_method"}`, sorted by name. Pure."""
    out = [
        {
            "name": p["ParameterName"],
            "value": p.get("ParameterValue"),
            "apply_method": p.get("ApplyMethod"),
        }
        for p in parameters
        # The API filters by Source=user already; a record that says otherwise is not ours.
        if p.get("ParameterName") and p.get("Source", "user") == "user"
    ]
    return sorted(out, key=lambda p: str(p["name"]))


@register
class RdsParameters(SourceType[RdsParameterOptions]):
    type_name: ClassVar[str] = "aws.rds.parameters"
    Options: ClassVar[type[SourceOptions]] = RdsParameterOptions
    summary: ClassVar[str] = (
        "RDS parameter groups in use: family and the parameters changed from the defaults."
    )
    iam_actions: ClassVar[tuple[str, ...]] = (
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "rds:DescribeDBParameterGroups",
        "rds:DescribeDBParameters",
        "rds:DescribeDBClusterParameterGroups",
        "rds:DescribeDBClusterParameters",
        "rds:ListTagsForResource",
    )

    def iam_actions_for(self, options: RdsParameterOptions) -> tuple[str, ...]:
        if options.include_tags or (options.explicit and options.filters):
            return self.iam_actions
        return tuple(a for a in self.iam_actions if a != "rds:ListTagsForResource")

    def fetch(self, options: RdsParameterOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)
        need_tags = options.include_tags or (options.explicit and bool(options.filters))

        def one(region: str) -> dict[str, Any]:
            rds = client(session, "rds", region, options)
            names: dict[str, set[str]]
            if options.explicit:
                names = {
                    "db": {n.lower() for n in options.groups or []},
                    "cluster": {n.lower() for n in options.cluster_groups or []},
                }
            else:
                instances = list(paginate(rds, "describe_db_instances", "DBInstances"))
                clusters = []
                if options.clusters:
                    clusters = list(paginate(rds, "describe_db_clusters", "DBClusters"))
                db_names, cluster_names = groups_in_use(instances, clusters, tag_filter(options))
                names = {"db": db_names, "cluster": cluster_names}
            out: dict[str, Any] = {}
            for kind, wanted_names in names.items():
                out[kind] = self._groups(rds, region, kind, wanted_names, options, need_tags)
            return out

        return [{"region": region, **data} for region, data in per_region(options, one)]

    def _groups(
        self,
        rds: Any,
        region: str,
        kind: str,
        names: set[str],
        options: RdsParameterOptions,
        need_tags: bool,
    ) -> list[dict[str, Any]]:
        """The named groups of one kind, each with its user-set parameters (and tags)."""
        if not names:
            return []
        spec = _KINDS[kind]
        listed = {
            str(g[spec.name_field]).lower(): g
            for g in paginate(rds, spec.list_operation, spec.list_key)
        }
        missing = sorted(names - set(listed))
        if missing and options.explicit:
            raise CollectorError(
                f"{spec.what} {', '.join(repr(n) for n in missing)} not found in {region}"
            )
        groups = []
        # A group in use but not listed was deleted meanwhile: nothing to report.
        for name in sorted(names & set(listed)):
            group = dict(listed[name])
            group["Parameters"] = list(
                paginate(
                    rds,
                    spec.parameters_operation,
                    "Parameters",
                    **{spec.name_field: group[spec.name_field], "Source": "user"},
                )
            )
            if need_tags and group.get(spec.arn_field):
                with aws_errors(rds):
                    response = rds.list_tags_for_resource(ResourceName=group[spec.arn_field])
                group["Tags"] = response.get("TagList", [])
            groups.append(group)
        return groups

    def normalize(self, raw: list[dict[str, Any]], options: RdsParameterOptions) -> list[Resource]:
        """AWS's own default groups are left out: they cannot be modified, so they hold no
        parameter of their own, and their names carry the engine version (an upgrade would
        read as a group removed and another added). Which group a database uses is reported
        by aws.rds.instances."""
        # Explicit groups are selected by their own tags; groups in use were selected in fetch
        # by the tags of the databases that use them.
        wanted = tag_filter(options) if options.explicit else (lambda tags: True)
        resources = []
        for region_data in raw:
            region = region_data["region"]
            for kind, spec in _KINDS.items():
                for group in region_data.get(kind, []):
                    tags = tags_of(group.get("Tags"))
                    if not wanted(tags) or _aws_default(group[spec.name_field]):
                        continue
                    attributes: Attributes = {
                        "family": group.get("DBParameterGroupFamily"),
                        "description": group.get("Description", ""),
                        "parameters": canonical_parameters(group.get("Parameters", [])),
                    }
                    if options.include_tags:
                        attributes["tags"] = tags
                    resources.append(
                        Resource(
                            category="config",
                            resource_type=spec.resource_type,
                            key=options.key(region, group[spec.name_field]),
                            attributes=attributes,
                        )
                    )
        return resources


def _aws_default(name: str) -> bool:
    return name.startswith(("default.", "default:"))
