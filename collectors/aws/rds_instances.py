"""`aws.rds.instances`: RDS DB instances (and Aurora / Multi-AZ DB clusters), keyed by identifier.

Each DB instance is an `aws.rds.instance` keyed by its DB instance identifier (`orders-staging`
becomes `orders-{env}` through the vars); each DB cluster, unless `clusters: false`, an
`aws.rds.cluster` keyed by its cluster identifier. The attributes are what sizes and protects a
database: class, engine and version, storage, Multi-AZ, backups, deletion protection,
parameter groups (with their apply status: `pending-reboot` means the running configuration is
not yet the group's), encryption, public access, Performance Insights. Endpoints (their host
names carry a random suffix), resource ids and maintenance windows (AWS picks them at random)
are left out: they differ between environments by nature. `status` and
`latest_restorable_time` change on their own and are volatile.

RDS has no server-side tag filter: `filters` select on the `TagList` each description carries,
so tags cost no extra call.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from pydantic import Field

from collectors.aws.base import (
    AwsOptions,
    client,
    paginate,
    per_region,
    session_for,
    tag_filter,
    tags_of,
)
from collectors.base import Attributes, FetchContext, Resource, SourceOptions, SourceType
from collectors.registry import register


class RdsInstanceOptions(AwsOptions):
    include_tags: bool = Field(default=True, description="Report each resource's tags.")
    clusters: bool = Field(
        default=True, description="Also report DB clusters (Aurora, Multi-AZ DB clusters)."
    )
    page_size: int = Field(
        default=100, ge=20, le=100, description="Records per DescribeDBInstances page (20-100)."
    )


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return None if value is None else str(value)


def _names(items: list[dict[str, Any]], name: str, status: str) -> list[dict[str, Any]]:
    """Group memberships as `{"name", "status"}`, sorted: the diff reads `...[name].status`.

    AWS's own default groups are named after the engine version (`default.postgres15`,
    `default:postgres-15-4`): they read `default`, so that an engine upgrade is reported
    once, as `engine_version`, while a switch to a custom group still shows."""
    return sorted(
        (
            {"name": _default_or(item[name]), "status": item.get(status)}
            for item in items
            if item.get(name)
        ),
        key=lambda m: str(m["name"]),
    )


def _default_or(group: str) -> str:
    return "default" if group.startswith(("default.", "default:")) else group


def instance_attributes(db: dict[str, Any], include_tags: bool) -> Attributes:
    """The comparable attributes of one DescribeDBInstances record. Pure."""
    subnet_group = db.get("DBSubnetGroup") or {}
    attributes: Attributes = {
        "instance_class": db.get("DBInstanceClass"),
        "engine": db.get("Engine"),
        "engine_version": db.get("EngineVersion"),
        "cluster": db.get("DBClusterIdentifier"),
        "replica_of": db.get("ReadReplicaSourceDBInstanceIdentifier"),
        "multi_az": db.get("MultiAZ"),
        "storage_type": db.get("StorageType"),
        "allocated_storage": db.get("AllocatedStorage"),
        "max_allocated_storage": db.get("MaxAllocatedStorage"),
        "iops": db.get("Iops"),
        "storage_throughput": db.get("StorageThroughput"),
        "storage_encrypted": db.get("StorageEncrypted"),
        "backup_retention_period": db.get("BackupRetentionPeriod"),
        "deletion_protection": db.get("DeletionProtection"),
        "publicly_accessible": db.get("PubliclyAccessible"),
        "auto_minor_version_upgrade": db.get("AutoMinorVersionUpgrade"),
        "iam_database_authentication": db.get("IAMDatabaseAuthenticationEnabled"),
        "performance_insights": {
            "enabled": bool(db.get("PerformanceInsightsEnabled", False)),
            "retention_period": db.get("PerformanceInsightsRetentionPeriod"),
        },
        "monitoring_interval": db.get("MonitoringInterval"),
        "ca_certificate": db.get("CACertificateIdentifier"),
        "port": db.get("DbInstancePort") or (db.get("Endpoint") or {}).get("Port"),
        "subnet_group": subnet_group.get("DBSubnetGroupName"),
        "parameter_groups": _names(
            db.get("DBParameterGroups", []), "DBParameterGroupName", "ParameterApplyStatus"
        ),
        "option_groups": _names(db.get("OptionGroupMemberships", []), "OptionGroupName", "Status"),
        "cloudwatch_logs_exports": sorted(db.get("EnabledCloudwatchLogsExports", [])),
        "status": db.get("DBInstanceStatus"),
        "latest_restorable_time": _iso(db.get("LatestRestorableTime")),
    }
    if include_tags:
        attributes["tags"] = tags_of(db.get("TagList"))
    return attributes


def cluster_attributes(cluster: dict[str, Any], include_tags: bool) -> Attributes:
    """The comparable attributes of one DescribeDBClusters record. Pure."""
    scaling = cluster.get("ServerlessV2ScalingConfiguration")
    attributes: Attributes = {
        "engine": cluster.get("Engine"),
        "engine_version": cluster.get("EngineVersion"),
        "engine_mode": cluster.get("EngineMode"),
        "instance_class": cluster.get("DBClusterInstanceClass"),
        "multi_az": cluster.get("MultiAZ"),
        "members": sorted(
            (
                {"name": m["DBInstanceIdentifier"], "writer": bool(m.get("IsClusterWriter"))}
                for m in cluster.get("DBClusterMembers", [])
            ),
            key=lambda m: str(m["name"]),
        ),
        "serverless_v2_scaling": (
            {"min_capacity": scaling.get("MinCapacity"), "max_capacity": scaling.get("MaxCapacity")}
            if scaling
            else None
        ),
        "storage_type": cluster.get("StorageType"),
        "allocated_storage": cluster.get("AllocatedStorage"),
        "iops": cluster.get("Iops"),
        "storage_encrypted": cluster.get("StorageEncrypted"),
        "backup_retention_period": cluster.get("BackupRetentionPeriod"),
        "deletion_protection": cluster.get("DeletionProtection"),
        "publicly_accessible": cluster.get("PubliclyAccessible"),
        "auto_minor_version_upgrade": cluster.get("AutoMinorVersionUpgrade"),
        "iam_database_authentication": cluster.get("IAMDatabaseAuthenticationEnabled"),
        "performance_insights": {
            "enabled": bool(cluster.get("PerformanceInsightsEnabled", False)),
            "retention_period": cluster.get("PerformanceInsightsRetentionPeriod"),
        },
        "parameter_group": cluster.get("DBClusterParameterGroup"),
        "port": cluster.get("Port"),
        "subnet_group": cluster.get("DBSubnetGroup"),
        "cloudwatch_logs_exports": sorted(cluster.get("EnabledCloudwatchLogsExports", [])),
        "status": cluster.get("Status"),
        "latest_restorable_time": _iso(cluster.get("LatestRestorableTime")),
    }
    if include_tags:
        attributes["tags"] = tags_of(cluster.get("TagList"))
    return attributes


@register
class RdsInstances(SourceType[RdsInstanceOptions]):
    type_name: ClassVar[str] = "aws.rds.instances"
    Options: ClassVar[type[SourceOptions]] = RdsInstanceOptions
    summary: ClassVar[str] = (
        "RDS DB instances and clusters: class, engine, storage, backups, protection; "
        "keyed by identifier."
    )
    volatile_paths: ClassVar[tuple[str, ...]] = ("status", "latest_restorable_time")
    iam_actions: ClassVar[tuple[str, ...]] = ("rds:DescribeDBInstances", "rds:DescribeDBClusters")

    def fetch(self, options: RdsInstanceOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)
        pages = {"PaginationConfig": {"PageSize": options.page_size}}

        def one(region: str) -> dict[str, Any]:
            rds = client(session, "rds", region, options)
            instances = list(paginate(rds, "describe_db_instances", "DBInstances", **pages))
            clusters = []
            if options.clusters:
                clusters = list(paginate(rds, "describe_db_clusters", "DBClusters", **pages))
            return {"instances": instances, "clusters": clusters}

        return [{"region": region, **data} for region, data in per_region(options, one)]

    def normalize(self, raw: list[dict[str, Any]], options: RdsInstanceOptions) -> list[Resource]:
        wanted = tag_filter(options)
        resources = []
        for region_data in raw:
            region = region_data["region"]
            for db in region_data["instances"]:
                if not wanted(tags_of(db.get("TagList"))):
                    continue
                resources.append(
                    Resource(
                        category="instances",
                        resource_type="aws.rds.instance",
                        key=options.key(region, db["DBInstanceIdentifier"]),
                        attributes=instance_attributes(db, options.include_tags),
                    )
                )
            for cluster in region_data.get("clusters", []):
                if not wanted(tags_of(cluster.get("TagList"))):
                    continue
                resources.append(
                    Resource(
                        category="instances",
                        resource_type="aws.rds.cluster",
                        key=options.key(region, cluster["DBClusterIdentifier"]),
                        attributes=cluster_attributes(cluster, options.include_tags),
                    )
                )
        return resources
