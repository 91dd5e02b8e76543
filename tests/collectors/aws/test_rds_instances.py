"""aws.rds.instances against a moto server over HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from collectors import registry
from collectors.aws.rds_instances import instance_attributes

T = "aws.rds.instances"


def make_db(rds: Any, name: str, env: str, **extra: Any) -> None:
    params: dict[str, Any] = {
        "DBInstanceIdentifier": name,
        "DBInstanceClass": "db.t3.micro",
        "Engine": "postgres",
        "AllocatedStorage": 20,
        "MasterUsername": "admin",
        "MasterUserPassword": "not-a-secret-1",
        "Tags": [{"Key": "env", "Value": env}, {"Key": "Role", "Value": "orders"}],
        **extra,
    }
    rds.create_db_instance(**params)


def test_instances_keyed_by_identifier_with_their_sizing(aws: Any) -> None:
    rds = aws.client("rds")
    rds.create_db_parameter_group(
        DBParameterGroupName="orders-pg15",
        DBParameterGroupFamily="postgres15",
        Description="orders",
    )
    make_db(
        rds,
        "orders-staging",
        "staging",
        DBInstanceClass="db.m5.large",
        EngineVersion="15.4",
        AllocatedStorage=100,
        StorageType="io1",
        Iops=3000,
        MultiAZ=True,
        BackupRetentionPeriod=7,
        DeletionProtection=True,
        DBParameterGroupName="orders-pg15",
        PubliclyAccessible=False,
        StorageEncrypted=True,
        AutoMinorVersionUpgrade=False,
    )
    make_db(rds, "orders-production", "production")

    dbs = aws.by_key(T, filters={"tag:env": "staging"})

    assert set(dbs) == {"orders-staging"}
    db = dbs["orders-staging"]
    assert db.category == "instances"
    assert db.resource_type == "aws.rds.instance"
    a = db.attributes
    assert a["instance_class"] == "db.m5.large"
    assert (a["engine"], a["engine_version"]) == ("postgres", "15.4")
    assert a["multi_az"] is True
    assert (a["storage_type"], a["allocated_storage"], a["iops"]) == ("io1", 100, 3000)
    assert a["backup_retention_period"] == 7
    assert a["deletion_protection"] is True
    assert a["parameter_groups"] == [{"name": "orders-pg15", "status": "in-sync"}]
    assert a["publicly_accessible"] is False
    assert a["storage_encrypted"] is True
    assert a["auto_minor_version_upgrade"] is False
    assert a["performance_insights"]["enabled"] is False
    assert a["tags"] == {"env": "staging", "Role": "orders"}
    assert a["port"] == 5432
    # Volatile, and never an endpoint host or a resource id (they differ by nature).
    assert isinstance(a["latest_restorable_time"], str)
    assert {"status", "latest_restorable_time"} <= set(registry.get(T).volatile_paths)  # type: ignore[union-attr]
    assert not any("endpoint" in k or "resource_id" in k for k in a)


def test_a_resized_instance_shows_in_its_attributes(aws: Any) -> None:
    rds = aws.client("rds")
    make_db(rds, "orders-staging", "staging")
    before = aws.by_key(T)["orders-staging"].attributes
    rds.modify_db_instance(
        DBInstanceIdentifier="orders-staging",
        DBInstanceClass="db.r6g.xlarge",
        BackupRetentionPeriod=14,
        ApplyImmediately=True,
    )
    after = aws.by_key(T)["orders-staging"].attributes
    assert (before["instance_class"], after["instance_class"]) == ("db.t3.micro", "db.r6g.xlarge")
    assert after["backup_retention_period"] == 14


def test_tags_can_be_left_out(aws: Any) -> None:
    make_db(aws.client("rds"), "orders-staging", "staging")
    db = aws.by_key(T, include_tags=False, filters={"tag:Role": "ord*"})["orders-staging"]
    assert "tags" not in db.attributes


@pytest.mark.slow
def test_pagination_past_one_page(aws: Any) -> None:
    rds = aws.client("rds")
    for i in range(120):
        make_db(rds, f"db{i:03d}", "staging")
    assert len(aws.by_key(T)) == 120  # moto pages DescribeDBInstances at 100
    assert len(aws.by_key(T, page_size=20)) == 120


def test_page_size_is_bounded_like_max_records() -> None:
    with pytest.raises(ValidationError, match="page_size"):
        registry.get(T).Options.model_validate(  # type: ignore[union-attr]
            {"type": T, "region": "us-east-1", "page_size": 10}
        )


def test_aurora_clusters_and_their_members(aws: Any) -> None:
    rds = aws.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="orders-aurora-staging",
        Engine="aurora-postgresql",
        EngineVersion="15.4",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        DeletionProtection=True,
        BackupRetentionPeriod=5,
        Tags=[{"Key": "env", "Value": "staging"}],
    )
    rds.create_db_instance(
        DBInstanceIdentifier="orders-aurora-staging-1",
        DBClusterIdentifier="orders-aurora-staging",
        DBInstanceClass="db.r6g.large",
        Engine="aurora-postgresql",
        Tags=[{"Key": "env", "Value": "staging"}],
    )
    found = {(r.resource_type, r.key): r for r in aws.collect(T, filters={"tag:env": "staging"})}
    assert set(found) == {
        ("aws.rds.cluster", "orders-aurora-staging"),
        ("aws.rds.instance", "orders-aurora-staging-1"),
    }
    cluster = found[("aws.rds.cluster", "orders-aurora-staging")].attributes
    assert cluster["engine"] == "aurora-postgresql"
    assert cluster["members"] == [{"name": "orders-aurora-staging-1", "writer": True}]
    assert cluster["deletion_protection"] is True
    assert cluster["backup_retention_period"] == 5
    member = found[("aws.rds.instance", "orders-aurora-staging-1")].attributes
    assert member["cluster"] == "orders-aurora-staging"
    assert member["instance_class"] == "db.r6g.large"

    without = aws.collect(T, clusters=False)
    assert {r.resource_type for r in without} == {"aws.rds.instance"}


def test_several_regions_prefix_the_key(aws: Any) -> None:
    for region in ("us-east-1", "eu-west-1"):
        make_db(aws.client("rds", region), "orders", "staging")
    keys = set(aws.by_key(T, region=None, regions=["us-east-1", "eu-west-1"]))
    assert keys == {"us-east-1/orders", "eu-west-1/orders"}


def test_normalize_reads_what_moto_does_not_return() -> None:
    """Performance Insights, storage autoscaling and subnet groups, from a real-shaped record."""
    record = {
        "DBInstanceIdentifier": "orders",
        "DBInstanceClass": "db.m6g.large",
        "PerformanceInsightsEnabled": True,
        "PerformanceInsightsRetentionPeriod": 7,
        "MaxAllocatedStorage": 1000,
        "DBSubnetGroup": {"DBSubnetGroupName": "data-staging"},
        "DBParameterGroups": [
            {"DBParameterGroupName": "b", "ParameterApplyStatus": "pending-reboot"},
            {"DBParameterGroupName": "a", "ParameterApplyStatus": "in-sync"},
        ],
        "EnabledCloudwatchLogsExports": ["upgrade", "postgresql"],
        "LatestRestorableTime": dt.datetime(2026, 11, 22, 4, 0, tzinfo=dt.UTC),
    }
    a = instance_attributes(record, include_tags=False)
    assert a["performance_insights"] == {"enabled": True, "retention_period": 7}
    assert a["max_allocated_storage"] == 1000
    assert a["subnet_group"] == "data-staging"
    assert [g["name"] for g in a["parameter_groups"]] == ["a", "b"]
    assert a["parameter_groups"][1]["status"] == "pending-reboot"
    assert a["cloudwatch_logs_exports"] == ["postgresql", "upgrade"]
    assert a["latest_restorable_time"] == "2026-11-22T04:00:00+00:00"


def test_aws_default_groups_read_default() -> None:
    from collectors.aws.rds_instances import instance_attributes

    attributes = instance_attributes(
        {
            "DBInstanceIdentifier": "orders",
            "DBParameterGroups": [
                {"DBParameterGroupName": "default.postgres15", "ParameterApplyStatus": "in-sync"}
            ],
            "OptionGroupMemberships": [
                {"OptionGroupName": "default:postgres-15-4", "Status": "in-sync"}
            ],
        },
        include_tags=False,
    )
    assert attributes["parameter_groups"] == [{"name": "default", "status": "in-sync"}]
    assert attributes["option_groups"] == [{"name": "default", "status": "in-sync"}]
