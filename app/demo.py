"""`envparity demo`: a simulated AWS (moto's server on loopback) seeded with three
environments that drift in every category, a config that scans them, and the parity report."""

from __future__ import annotations

import json
import logging
import os
import socket
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import EnvparityError

if TYPE_CHECKING:
    from datetime import datetime

    from moto.server import ThreadedMotoServer
    from sqlalchemy.orm import Session

    from app.config import Config
    from app.gate.service import GateResult
    from app.reports.model import Report

REGION = "us-east-1"
ENVIRONMENTS = {
    # name: (vpc cidr, web instance type, web count, postgres version, image tag)
    "staging": ("10.1.0.0/16", "m5.large", 2, "15.4", "1.8.0"),
    "production": ("10.2.0.0/16", "c5.xlarge", 6, "14.9", "1.7.3"),
    "staging-eu": ("10.3.0.0/16", "m5.large", 2, "15.4", "1.8.0"),
}
SHARED_SECRET = "pk_live_demo_shared_51Hx"  # planted: the same key in staging and production


@dataclass
class Simulator:
    """A moto server on a free loopback port; stop() ends it."""

    endpoint: str
    server: ThreadedMotoServer

    def stop(self) -> None:
        self.server.stop()


def start_simulator() -> Simulator:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise EnvparityError(
            "the demo needs moto's server: pip install 'envparity[demo]'"
        ) from None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # Fake credentials for the simulator only; real AWS is never contacted.
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "demo"),
        ("AWS_SECRET_ACCESS_KEY", "demo"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        os.environ[name] = value
    os.environ.pop("AWS_PROFILE", None)
    return Simulator(f"http://127.0.0.1:{port}", server)


def _client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)  # type: ignore[call-overload]


def _tags(env: str, **more: str) -> list[dict[str, str]]:
    return [{"Key": "env", "Value": env}, *({"Key": k, "Value": v} for k, v in more.items())]


def seed(endpoint: str) -> None:
    """Three environments that should match, and the drift planted in them."""
    ec2 = _client(endpoint, "ec2")
    rds = _client(endpoint, "rds")
    ssm = _client(endpoint, "ssm")
    secrets = _client(endpoint, "secretsmanager")
    ecs = _client(endpoint, "ecs")
    ami = ec2.register_image(Name="orders-app-2026-11-01", RootDeviceName="/dev/xvda")["ImageId"]
    for env, (cidr, web_type, web_count, pg_version, image_tag) in ENVIRONMENTS.items():
        vpc = ec2.create_vpc(
            CidrBlock=cidr,
            TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags(env, Name=f"orders-{env}")}],
        )["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace("0.0/16", "1.0/24"))["Subnet"]
        web_sg = ec2.create_security_group(
            GroupName=f"web-{env}",
            Description="web servers",
            VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(env)}],
        )["GroupId"]
        rules: list[dict[str, Any]] = [
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            },
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": cidr}]},
        ]
        if env == "production":  # planted: SSH opened to the world by hand
            rules.append(
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            )
        ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=rules)
        for role, instance_type, count in (("web", web_type, web_count), ("worker", "m5.large", 2)):
            ec2.run_instances(
                ImageId=ami,
                MinCount=count,
                MaxCount=count,
                InstanceType=instance_type,
                SubnetId=subnet["SubnetId"],
                TagSpecifications=[
                    {
                        "ResourceType": "instance",
                        "Tags": _tags(env, Role=role, Name=f"{role}-{env}"),
                    }
                ],
            )
        rds.create_db_instance(
            DBInstanceIdentifier=f"orders-{env}",
            DBInstanceClass="db.r6g.large",
            Engine="postgres",
            EngineVersion=pg_version,  # planted: production runs an older major version
            AllocatedStorage=100,
            MasterUsername="orders",
            MasterUserPassword=f"demo-{env}-password",
            MultiAZ=env == "production",
            Tags=_tags(env),
        )
        db_host = (
            "orders-db-production.internal" if env == "staging" else f"orders-db-{env}.internal"
        )
        parameters = {
            "db/host": db_host,  # planted: staging points at production's database
            "db/pool_size": "20",
            "feature/new_checkout": "on" if env == "production" else "off",  # changed by hand
            "log/level": "info",
        }
        for name, value in parameters.items():
            ssm.put_parameter(Name=f"/app/{env}/{name}", Value=value, Type="String")
        ssm.put_parameter(
            Name=f"/app/{env}/db/password", Value=f"demo-{env}-password", Type="SecureString"
        )
        secrets.create_secret(
            Name=f"app/{env}/payments-api-key",
            SecretString=SHARED_SECRET if env != "staging-eu" else "pk_live_demo_eu_77Qa",
            Tags=_tags(env),
        )
        cluster = f"orders-{env}"
        ecs.create_cluster(clusterName=cluster, tags=[{"key": "env", "value": env}])
        family = f"orders-{env}"
        ecs.register_task_definition(
            family=family,
            cpu="512",
            memory="1024",
            containerDefinitions=[
                {
                    "name": "app",
                    "image": f"registry.internal/orders:{image_tag}",  # planted: image drift
                    "essential": True,
                    "environment": [
                        {"name": "APP_ENV", "value": env},
                        {"name": "DB_HOST", "value": db_host},
                        {"name": "DB_PASSWORD", "value": f"demo-{env}-password"},
                    ],
                }
            ],
        )
        ecs.create_service(
            cluster=cluster,
            serviceName="orders-api",
            taskDefinition=family,
            desiredCount=web_count,
            launchType="FARGATE",
            tags=[{"key": "env", "value": env}],
        )


@dataclass
class Judged:
    """One declared comparison of the demo: its report and its gate."""

    source: str
    target: str
    report: Report
    gate: GateResult


def judge(session: Session, config: Config, now: datetime) -> list[Judged]:
    """Every comparison the demo's config declares, compared and gated: the demo prints the
    items of each, not only of the first."""
    from app.gate import service as gate_service
    from app.reports import service as reports

    judged = []
    for comparison in config.model.comparisons:
        source, target = comparison.source, comparison.target
        report = reports.compare_refs(session, config, source, target, now)
        gate = gate_service.evaluate(session, config, source, target, now)
        judged.append(Judged(source, target, report, gate))
    return judged


def write_config(folder: Path, endpoint: str) -> Path:
    """A config that scans the simulated account; each environment selects by its env tag."""
    environments = {}
    for env, (cidr, *_rest) in ENVIRONMENTS.items():
        common: dict[str, Any] = {
            "region": REGION,
            "endpoint_url": endpoint,
            "filters": {"tag:env": env},
            "max_attempts": 3,
        }
        sources = [
            {"type": "aws.ec2.instances", "name": "instances", "identity": "tag:Role", **common},
            {"type": "aws.ec2.security_groups", "name": "security-groups", **common},
            {"type": "aws.rds.instances", "name": "databases", **common},
            {
                "type": "aws.ssm.parameters",
                "name": "parameters",
                "path": f"/app/{env}/",
                **{k: v for k, v in common.items() if k != "filters"},
            },
            {"type": "aws.secretsmanager.secrets", "name": "secrets", "secrets": "hash", **common},
            {
                "type": "aws.ecs.services",
                "name": "services",
                "clusters": [f"orders-{env}"],
                **{k: v for k, v in common.items() if k != "filters"},
            },
        ]
        environments[env] = {"vars": {"env": env, "vpc_cidr": cidr}, "sources": sources}
    config = {
        "database_url": "sqlite:///envparity.db",
        "secrets": {"key_file": "secret.key"},
        # `envparity demo --serve`: the dashboard on loopback, without a token to create.
        "server": {"host": "127.0.0.1", "auth": False},
        "environments": environments,
        "comparisons": [
            {
                "source": "staging",
                "target": "production",
                "gate": {"fail_on": "warning", "max_age": "1h"},
            },
            {"source": "staging-eu", "target": "production", "gate": {"fail_on": "critical"}},
        ],
        "tolerate": [{"category": "packages", "path": "version", "allow": "patch"}],
        "ignore": [
            *(
                {
                    "comparison": "staging*->production",
                    "category": "instances",
                    "key": key,
                    "path": path,
                    "reason": "staging runs fewer web servers by design",
                }
                for key, path in (
                    ("web", "count"),
                    ("web", "states.*"),
                    ("orders-{env}/orders-api", "desired_count"),
                )
            ),
            {
                "comparison": "staging*->production",
                "category": "instances",
                "path": "multi_az",
                "reason": "only production pays for a standby database",
            },
        ],
    }
    path = folder / "envparity.yaml"
    header = textwrap.dedent(
        """\
        # Written by `envparity demo`: three environments in a simulated AWS account
        # (moto's server on loopback). Real AWS is never contacted.
        """
    )
    # JSON is YAML: the file stays readable and needs no YAML writer.
    path.write_text(header + json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path
