"""aws.rds.parameters against a moto server over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.aws.rds_parameters import canonical_parameters
from collectors.base import CollectorError

T = "aws.rds.parameters"


def make_group(rds: Any, name: str, env: str, **parameters: str) -> None:
    rds.create_db_parameter_group(
        DBParameterGroupName=name,
        DBParameterGroupFamily="postgres15",
        Description=f"{name} tuning",
        Tags=[{"Key": "env", "Value": env}],
    )
    if parameters:
        rds.modify_db_parameter_group(
            DBParameterGroupName=name,
            Parameters=[
                {"ParameterName": k, "ParameterValue": v, "ApplyMethod": "pending-reboot"}
                for k, v in parameters.items()
            ],
        )


def make_db(rds: Any, name: str, env: str, group: str) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        DBParameterGroupName=group,
        Tags=[{"Key": "env", "Value": env}],
    )


def seed(rds: Any) -> None:
    make_group(rds, "orders-staging", "staging", max_connections="200", work_mem="8192")
    make_group(rds, "orders-production", "production", max_connections="500")
    make_group(rds, "unused", "staging", max_connections="1")
    make_db(rds, "orders-staging", "staging", "orders-staging")
    make_db(rds, "orders-production", "production", "orders-production")


def test_groups_in_use_by_the_filtered_instances(aws: Any) -> None:
    rds = aws.client("rds")
    seed(rds)

    groups = aws.by_key(T, filters={"tag:env": "staging"})

    # Selected through the instances' tags: the unused group is not reported, though tagged.
    assert set(groups) == {"orders-staging"}
    group = groups["orders-staging"]
    assert group.category == "config"
    assert group.resource_type == "aws.rds.parameter_group"
    assert group.attributes == {
        "family": "postgres15",
        "description": "orders-staging tuning",
        "parameters": [
            {"name": "max_connections", "value": "200", "apply_method": "pending-reboot"},
            {"name": "work_mem", "value": "8192", "apply_method": "pending-reboot"},
        ],
    }


@pytest.mark.slow
def test_a_changed_parameter_shows_in_the_attributes(aws: Any) -> None:
    rds = aws.client("rds")
    seed(rds)
    rds.modify_db_parameter_group(
        DBParameterGroupName="orders-staging",
        Parameters=[
            {
                "ParameterName": "max_connections",
                "ParameterValue": "300",
                "ApplyMethod": "immediate",
            }
        ],
    )
    params = aws.by_key(T, filters={"tag:env": "staging"})["orders-staging"].attributes[
        "parameters"
    ]
    assert params[0] == {"name": "max_connections", "value": "300", "apply_method": "immediate"}


def test_explicit_groups_are_selected_by_their_own_tags(aws: Any) -> None:
    rds = aws.client("rds")
    seed(rds)

    named = aws.by_key(T, groups=["unused", "Orders-Production"])
    assert set(named) == {"unused", "orders-production"}  # RDS names are case-insensitive

    tagged = aws.by_key(
        T, groups=["unused", "orders-production"], filters={"tag:env": "staging"}, include_tags=True
    )
    assert set(tagged) == {"unused"}
    assert tagged["unused"].attributes["tags"] == {"env": "staging"}


def test_a_missing_explicit_group_fails_the_source_naming_it(aws: Any) -> None:
    seed(aws.client("rds"))
    with pytest.raises(CollectorError, match="DB parameter group 'nope' not found in us-east-1"):
        aws.collect(T, groups=["orders-staging", "nope"])


def test_cluster_parameter_groups_of_the_filtered_clusters(aws: Any) -> None:
    rds = aws.client("rds")
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName="aurora-staging",
        DBParameterGroupFamily="aurora-postgresql15",
        Description="aurora tuning",
    )
    rds.modify_db_cluster_parameter_group(
        DBClusterParameterGroupName="aurora-staging",
        Parameters=[
            {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}
        ],
    )
    rds.create_db_cluster(
        DBClusterIdentifier="orders-aurora-staging",
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        DBClusterParameterGroupName="aurora-staging",
        Tags=[{"Key": "env", "Value": "staging"}],
    )
    found = {(r.resource_type, r.key): r for r in aws.collect(T, filters={"tag:env": "staging"})}
    assert set(found) == {("aws.rds.cluster_parameter_group", "aurora-staging")}
    group = found[("aws.rds.cluster_parameter_group", "aurora-staging")].attributes
    assert group["family"] == "aurora-postgresql15"
    assert group["parameters"] == [
        {"name": "rds.force_ssl", "value": "1", "apply_method": "immediate"}
    ]

    assert aws.collect(T, filters={"tag:env": "staging"}, clusters=False) == []
    assert set(aws.by_key(T, cluster_groups=["aurora-staging"])) == {"aurora-staging"}


def test_only_user_set_parameters_count() -> None:
    records = [
        {"ParameterName": "work_mem", "ParameterValue": "4096", "Source": "user"},
        {
            "ParameterName": "shared_buffers",
            "ParameterValue": "{DBInstanceClassMemory/32768}",
            "Source": "system",
        },
        {"ParameterName": "autovacuum", "ParameterValue": "1", "Source": "engine-default"},
        {"ParameterName": "max_connections", "ParameterValue": "100", "ApplyMethod": "immediate"},
    ]
    assert canonical_parameters(records) == [
        {"name": "max_connections", "value": "100", "apply_method": "immediate"},
        {"name": "work_mem", "value": "4096", "apply_method": None},
    ]


def test_aws_default_groups_are_left_out(aws: Any) -> None:
    from collectors.aws.rds_parameters import RdsParameters

    options = aws.options("aws.rds.parameters")
    raw = [
        {
            "region": "us-east-1",
            "db": [
                {
                    "DBParameterGroupName": "default.postgres15",
                    "DBParameterGroupFamily": "postgres15",
                },
                {
                    "DBParameterGroupName": "orders-pg15",
                    "DBParameterGroupFamily": "postgres15",
                    "Parameters": [
                        {
                            "ParameterName": "work_mem",
                            "ParameterValue": "64MB",
                            "ApplyMethod": "immediate",
                        }
                    ],
                },
            ],
        }
    ]
    assert [r.key for r in RdsParameters().normalize(raw, options)] == ["orders-pg15"]
