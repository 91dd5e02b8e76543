"""Two environments' snapshots in envparity's push format, shaped like real ones (seeded).

Real resources name their environment everywhere: instance names (`web-staging-042`), hosts
(`db-042.staging.internal`), tags (`env: staging`), ARNs, SSM paths (`/app/staging/...`),
config file paths, CIDRs (`10.1.0.0/16` in staging, `10.2.0.0/16` in production). Each
environment declares the vars (`env`, `domain`, `vpc_cidr`, `subnet_a..c`, `account`) that
normalization turns into placeholders, so that only planted drift remains: a fraction
(`drift`, default 1%) of the resources present on both sides changed in production (a
bigger instance type, an extra ingress rule open to the world, a package or engine version
bump, a config value), plus a few resources added and removed.

The same seed gives the same documents, byte for byte. The resource mix, per 20 resources:
4 `aws.ec2.instance`, 3 `aws.ec2.security_group`, 6 `aws.ssm.parameter`, 1
`aws.rds.instance`, 2 `file` (an app.yaml per service) and 4 `packages.deb` (a host's
package list).

Run: .venv/bin/python benchmarks/envdata.py OUT_DIR [--resources 20000] [--drift 0.01] [--seed 7]
writes OUT_DIR/staging.json, OUT_DIR/production.json (push documents), OUT_DIR/envparity.yaml
(both environments push-only, with their vars, and the comparison staging -> production) and
OUT_DIR/planted.json (the drift planted, by resource type and normalized key), so that
`envparity push staging OUT_DIR/staging.json` and `envparity diff` run on them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Identity = tuple[str, str]  # resource_type, key with the environment's name as `{env}`
Attributes = dict[str, Any]


@dataclass(frozen=True)
class Environment:
    name: str
    octet: int  # the VPC is 10.<octet>.0.0/16
    account: str
    region: str = "us-east-1"

    @property
    def domain(self) -> str:
        return f"{self.name}.internal"

    @property
    def vpc_cidr(self) -> str:
        return f"10.{self.octet}.0.0/16"

    def subnet(self, zone: int) -> str:
        return f"10.{self.octet}.{zone * 16}.0/20"

    @property
    def vars(self) -> dict[str, str]:
        """What envparity.yaml declares: every value that names this environment."""
        return {
            "env": self.name,
            "domain": self.domain,
            "vpc_cidr": self.vpc_cidr,
            "subnet_a": self.subnet(0),
            "subnet_b": self.subnet(1),
            "subnet_c": self.subnet(2),
            "account": self.account,
        }


STAGING = Environment("staging", 1, "111111111111")
PRODUCTION = Environment("production", 2, "222222222222")

ROLES = ("web", "api", "worker", "cron", "gateway", "search", "orders", "billing", "media")
TEAMS = ("payments", "platform", "growth", "core", "data")
DATABASES = ("orders", "billing", "users", "catalog", "events")
ZONES = "abc"
INSTANCE_TYPES = ("t3.medium", "m5.large", "m5.xlarge", "c5.large", "r5.large", "m6i.large")
UPSIZE = {
    "t3.medium": "t3.large",
    "m5.large": "m5.2xlarge",
    "m5.xlarge": "m5.2xlarge",
    "c5.large": "c5.xlarge",
    "r5.large": "r5.xlarge",
    "m6i.large": "m6i.xlarge",
}
ENGINE_VERSIONS = ("14.10", "15.4", "15.5", "16.1")
PACKAGES = (
    ("amazon-ssm-agent", "3.2.1798.0-1"),
    ("awscli", "2.15.0"),
    ("bash", "5.1-6ubuntu1.1"),
    ("ca-certificates", "20230311ubuntu0.22.04.1"),
    ("chrony", "4.2-2ubuntu2"),
    ("containerd.io", "1.6.26-1"),
    ("coreutils", "8.32-4.1ubuntu1.2"),
    ("cron", "3.0pl1-137ubuntu3"),
    ("curl", "7.81.0-1ubuntu1.15"),
    ("docker-ce", "5:24.0.7-1~ubuntu.22.04~jammy"),
    ("git", "1:2.34.1-1ubuntu1.10"),
    ("jq", "1.6-2.1ubuntu3"),
    ("libc6", "2.35-0ubuntu3.6"),
    ("libssl3", "3.0.2-0ubuntu1.15"),
    ("libxml2", "2.9.13+dfsg-1ubuntu0.3"),
    ("logrotate", "3.19.0-1ubuntu1.1"),
    ("nginx", "1.18.0-6ubuntu14.4"),
    ("node-exporter", "1.7.0"),
    ("openssh-server", "1:8.9p1-3ubuntu0.6"),
    ("openssl", "3.0.2-0ubuntu1.15"),
    ("postgresql-client-15", "15.5-1.pgdg22.04+1"),
    ("python3", "3.10.6-1~22.04"),
    ("redis-tools", "5:6.0.16-1ubuntu1"),
    ("rsyslog", "8.2112.0-2ubuntu2.2"),
    ("sudo", "1.9.9-1ubuntu2.4"),
    ("systemd", "249.11-0ubuntu3.12"),
    ("tzdata", "2024a-0ubuntu0.22.04"),
    ("unzip", "6.0-26ubuntu3.1"),
    ("vim", "2:8.2.3995-1ubuntu2.15"),
    ("zlib1g", "1:1.2.11.dfsg-2ubuntu9.2"),
)
# (name under /app/{env}/<service>/, SSM type)
PARAMETERS = (
    ("database/host", "String"),
    ("database/pool_size", "String"),
    ("database/password", "SecureString"),
    ("cache/url", "String"),
    ("log_level", "String"),
    ("api/base_url", "String"),
    ("allowed_origins", "StringList"),
    ("network/allowed_cidrs", "StringList"),
)
# Which kind each of 20 consecutive resources is.
PATTERN = (
    "instance",
    "ssm",
    "packages",
    "security_group",
    "ssm",
    "file",
    "instance",
    "ssm",
    "packages",
    "security_group",
    "rds",
    "instance",
    "ssm",
    "packages",
    "file",
    "ssm",
    "security_group",
    "instance",
    "ssm",
    "packages",
)
SOURCES = {
    "instance": "ec2-inventory",
    "security_group": "ec2-network",
    "ssm": "ssm-export",
    "rds": "rds-inventory",
    "file": "config-files",
    "packages": "host-agent",
}
TAKEN_AT = {"staging": "2026-11-22T04:00:00Z", "production": "2026-11-22T04:02:00Z"}


def cloud_id(prefix: str, env: Environment, *parts: object) -> str:
    """A cloud-assigned id (`i-0123456789abcdef0`): different in every environment."""
    text = ":".join(str(p) for p in (env.name, prefix, *parts))
    return f"{prefix}-0{hashlib.blake2b(text.encode(), digest_size=8).hexdigest()}"


def rule(
    protocol: str, ports: str, peer: str, kind: str = "cidr", word: str = "from"
) -> Attributes:
    """A security group rule as `aws.ec2.security_groups` reports it."""
    return {
        "label": f"{protocol}/{ports} {word} {peer}",
        "protocol": protocol,
        "ports": ports,
        kind: peer,
    }


@dataclass
class Resource:
    kind: str
    category: str
    resource_type: str
    key: str
    attributes: Attributes

    def push(self) -> dict[str, Any]:
        return {
            "source": SOURCES[self.kind],
            "category": self.category,
            "resource_type": self.resource_type,
            "key": self.key,
            "attributes": self.attributes,
        }


# ----------------------------------------------------------------------------- kinds
# Each takes the environment, the resource's ordinal among its kind and a random generator
# seeded by the resource alone (so both environments draw the same values), and draws from
# it the same way whatever the environment.


def instance(env: Environment, n: int, rng: random.Random) -> Resource:
    role = ROLES[n % len(ROLES)]
    name = f"{role}-{env.name}-{n:03d}"
    zone = rng.randrange(3)
    attributes = {
        "instance_id": cloud_id("i", env, n),
        "instance_type": rng.choice(INSTANCE_TYPES),
        "architecture": "x86_64",
        "platform": "Linux/UNIX",
        "ami": f"{role}-base-2026.{rng.randint(1, 11)}.{rng.randint(0, 9)}",
        "image_id": cloud_id("ami", env, role),
        "state": "running",
        "availability_zone": f"{env.region}{ZONES[zone]}",
        "subnet_id": cloud_id("subnet", env, zone),
        "subnet_cidr": env.subnet(zone),
        "vpc_id": cloud_id("vpc", env),
        "private_dns_name": f"{role}-{n:03d}.{env.domain}",
        "iam_instance_profile": f"arn:aws:iam::{env.account}:instance-profile/{role}-{env.name}",
        "security_groups": sorted([f"{role}-{env.name}-{n:03d}", f"base-{env.name}"]),
        "ebs_optimized": True,
        "root_volume": {"type": "gp3", "size": rng.choice((20, 50, 100)), "encrypted": True},
        "monitoring": "enabled",
        "imdsv2_required": True,
        "tags": {
            "Name": name,
            "env": env.name,
            "Role": role,
            "team": rng.choice(TEAMS),
            "cost-center": f"cc-{rng.randint(100, 999)}",
        },
    }
    return Resource("instance", "instances", "aws.ec2.instance", name, attributes)


def security_group(env: Environment, n: int, rng: random.Random) -> Resource:
    role = ROLES[n % len(ROLES)]
    name = f"{role}-{env.name}-{n:03d}"
    zone = rng.randrange(3)
    ingress = [
        rule("tcp", "443", env.vpc_cidr),
        rule("tcp", "8080", env.subnet(zone)),
        rule("tcp", str(rng.choice((5432, 6379, 9090))), f"base-{env.name}", kind="group"),
    ]
    if rng.random() < 0.2:
        ingress.append(rule("tcp", "443", "0.0.0.0/0"))
    if rng.random() < 0.3:
        ingress.append(rule("tcp", "22", "203.0.113.0/24"))
    attributes = {
        "group_id": cloud_id("sg", env, n),
        "vpc_id": cloud_id("vpc", env),
        "description": f"{role} {n:03d} in {env.name}",
        "tags": {"Name": name, "env": env.name, "team": rng.choice(TEAMS)},
        "ingress": sorted(ingress, key=lambda r: str(r["label"])),
        "egress": [rule("all", "all", "0.0.0.0/0", word="to")],
    }
    return Resource("security_group", "network", "aws.ec2.security_group", name, attributes)


def ssm(env: Environment, n: int, rng: random.Random) -> Resource:
    service = f"{ROLES[(n // len(PARAMETERS)) % len(ROLES)]}-{n // len(PARAMETERS):03d}"
    param, kind = PARAMETERS[n % len(PARAMETERS)]
    values: dict[str, Any] = {
        "database/host": f"db-{service}.{env.domain}",
        "database/pool_size": str(rng.choice((10, 20, 40))),
        "cache/url": f"redis://cache-{service}.{env.domain}:6379/0",
        "log_level": rng.choice(("info", "warn")),
        "api/base_url": f"https://api-{service}.{env.domain}/v1",
        "allowed_origins": sorted([f"https://app.{env.domain}", f"https://admin.{env.domain}"]),
        "network/allowed_cidrs": sorted([env.vpc_cidr, env.subnet(rng.randrange(3))]),
    }
    attributes: Attributes = {
        "type": kind,
        "data_type": "text",
        "tier": "Standard",
        "description": f"{param} of {service} in {env.name}",
    }
    if kind == "SecureString":  # metadata only, as the collector's default `secrets: metadata`
        attributes["key_id"] = f"alias/app-{env.name}"
    else:
        attributes["value"] = values[param]
    key = f"/app/{env.name}/{service}/{param}"
    return Resource("ssm", "config", "aws.ssm.parameter", key, attributes)


def rds(env: Environment, n: int, rng: random.Random) -> Resource:
    db = DATABASES[n % len(DATABASES)]
    name = f"{db}-{env.name}-{n:03d}"
    version = rng.choice(ENGINE_VERSIONS)
    attributes = {
        "arn": f"arn:aws:rds:{env.region}:{env.account}:db:{name}",
        "engine": "postgres",
        "engine_version": version,
        "instance_class": rng.choice(("db.r6g.large", "db.r6g.xlarge", "db.m6g.large")),
        "multi_az": True,
        "storage_type": "gp3",
        "allocated_storage": rng.choice((100, 200, 500)),
        "storage_encrypted": True,
        "backup_retention_period": 7,
        "deletion_protection": True,
        "publicly_accessible": False,
        "auto_minor_version_upgrade": True,
        "performance_insights": {"enabled": True, "retention_period": 7},
        "endpoint": f"{db}-{n:03d}.db.{env.domain}",
        "port": 5432,
        "subnet_group": f"db-{env.name}",
        "parameter_groups": [
            {"name": f"{db}-{env.name}-pg{version.split('.')[0]}", "status": "in-sync"}
        ],
        "security_groups": [f"{db}-{env.name}-db"],
        "ca_certificate": "rds-ca-rsa2048-g1",
        "cloudwatch_logs_exports": ["postgresql", "upgrade"],
        "tags": {"Name": name, "env": env.name, "team": rng.choice(TEAMS)},
    }
    return Resource("rds", "instances", "aws.rds.instance", name, attributes)


def config_file(env: Environment, n: int, rng: random.Random) -> Resource:
    role = ROLES[n % len(ROLES)]
    service = f"{role}-{n:03d}"
    attributes = {
        "service": {
            "name": service,
            "environment": env.name,
            "port": 8080,
            "replicas": rng.choice((2, 3, 4)),
            "image": f"registry.internal/{role}:1.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
        },
        "database": {
            "host": f"db-{n:03d}.{env.domain}",
            "port": 5432,
            "name": service.replace("-", "_"),
            "pool_size": rng.choice((10, 20, 30)),
            "ssl_mode": "verify-full",
        },
        "cache": {"url": f"redis://cache-{n:03d}.{env.domain}:6379/0", "ttl_seconds": 300},
        "queue": {
            "url": f"https://sqs.{env.region}.amazonaws.com/{env.account}/{service}-{env.name}-jobs",
            "visibility_timeout": 60,
        },
        "logging": {"level": "info", "format": "json"},
        "features": {f"flag_{k}": rng.random() < 0.5 for k in range(6)},
        "network": {
            "allowed_cidrs": sorted([env.vpc_cidr, env.subnet(rng.randrange(3))]),
            "egress_proxy": f"http://proxy.{env.domain}:3128",
        },
        "storage": {"bucket": f"acme-{env.name}-{service}"},
    }
    key = f"deploy/{env.name}/{service}/app.yaml"
    return Resource("file", "config", "file", key, attributes)


def packages(env: Environment, n: int, rng: random.Random) -> Resource:
    role = ROLES[n % len(ROLES)]
    chosen = sorted(rng.sample(range(len(PACKAGES)), 25))
    listed = []
    for index in chosen:
        name, version = PACKAGES[index]
        if rng.random() < 0.1:  # a host a patch behind (on both sides: no drift)
            version = _patch(version, -1)
        listed.append({"name": name, "version": version, "arch": "amd64"})
    attributes = {
        "host": f"{role}-{n:03d}.{env.domain}",
        "os": "ubuntu 22.04",
        "kernel": f"5.15.0-{rng.randint(1040, 1060)}-aws",
        "packages": listed,
    }
    return Resource(
        "packages", "packages", "packages.deb", f"{role}-{env.name}-{n:03d}", attributes
    )


KINDS: dict[str, Callable[[Environment, int, random.Random], Resource]] = {
    "instance": instance,
    "security_group": security_group,
    "ssm": ssm,
    "rds": rds,
    "file": config_file,
    "packages": packages,
}


# ----------------------------------------------------------------------------- drift


def _patch(version: str, step: int) -> str:
    """The version with its last number moved by `step` (`1ubuntu1.15` -> `1ubuntu1.16`)."""
    head = version.rstrip("0123456789")
    tail = version[len(head) :]
    if not tail:
        return version + ".1"
    return head + str(max(int(tail) + step, 0))


def drift(resource: Resource, rng: random.Random) -> str:
    """Changes `resource` (production's copy) as real drift would; says how."""
    a = resource.attributes
    if resource.kind == "instance":
        old = a["instance_type"]
        a["instance_type"] = UPSIZE[old]
        return f"instance_type {old} -> {a['instance_type']}"
    if resource.kind == "security_group":
        a["ingress"] = sorted(
            [*a["ingress"], rule("tcp", "22", "0.0.0.0/0")], key=lambda r: str(r["label"])
        )
        return "ingress[tcp/22 from 0.0.0.0/0] added"
    if resource.kind == "ssm":
        if a["type"] == "SecureString":
            a["tier"] = "Advanced"
            return "tier Standard -> Advanced"
        if a["type"] == "StringList":
            a["value"] = sorted([*a["value"], "https://partner.example.org"])
            return "value: an item added"
        old = a["value"]
        if old in ("info", "warn"):
            a["value"] = "debug"
        elif old.isdigit():
            a["value"] = str(int(old) * 2)
        elif "://" in old:
            a["value"] = old.replace("://", "://new-", 1)
        else:
            a["value"] = "replica-" + old
        return f"value {old} -> {a['value']}"
    if resource.kind == "rds":
        old = a["engine_version"]
        a["engine_version"] = _patch(old, 1)
        return f"engine_version {old} -> {a['engine_version']}"
    if resource.kind == "file":
        if rng.random() < 0.5:
            old = a["database"]["pool_size"]
            a["database"]["pool_size"] = old * 2
            return f"database.pool_size {old} -> {old * 2}"
        flag = f"flag_{rng.randrange(6)}"
        a["features"][flag] = not a["features"][flag]
        return f"features.{flag} flipped"
    listed = a["packages"]
    item = listed[rng.randrange(len(listed))]
    old = item["version"]
    item["version"] = _patch(old, 1)
    return f"packages[{item['name']}] {old} -> {item['version']}"


# ----------------------------------------------------------------------------- generation


@dataclass
class Planted:
    """The drift planted, by identity (resource type and key with `{env}` for the name)."""

    changed: dict[Identity, str] = field(default_factory=dict)  # identity -> what changed
    added: set[Identity] = field(default_factory=set)  # in production only
    removed: set[Identity] = field(default_factory=set)  # in staging only

    def identities(self) -> set[Identity]:
        return set(self.changed) | self.added | self.removed

    def as_json(self) -> dict[str, Any]:
        return {
            "changed": [
                {"resource_type": t, "key": k, "change": c}
                for (t, k), c in sorted(self.changed.items())
            ],
            "added": [{"resource_type": t, "key": k} for t, k in sorted(self.added)],
            "removed": [{"resource_type": t, "key": k} for t, k in sorted(self.removed)],
        }


@dataclass
class Pair:
    left: Environment
    right: Environment
    documents: dict[str, dict[str, Any]]  # environment name -> push document
    planted: Planted
    seed: int

    def config(self) -> str:
        """envparity.yaml: both environments push-only (no `sources:`), with their vars."""
        envs = "\n".join(
            f"  {e.name}:\n    vars: {json.dumps(e.vars)}" for e in (self.left, self.right)
        )
        return (
            f"# Written by benchmarks/envdata.py (seed {self.seed}). Both environments are\n"
            "# push-only: their snapshots arrive by `envparity push ENV FILE`.\n"
            f"environments:\n{envs}\n"
            f"comparisons:\n  - source: {self.left.name}\n    target: {self.right.name}\n"
        )


def identity(resource: Resource, env: Environment) -> Identity:
    return resource.resource_type, resource.key.replace(env.name, "{env}")


def generate(
    resources: int = 20_000,
    drift_share: float = 0.01,
    seed: int = 7,
    left: Environment = STAGING,
    right: Environment = PRODUCTION,
) -> Pair:
    """`resources` resources per side; `drift_share` of them changed on the right, and
    `resources // 4000` (at least 1) removed from it and as many added."""
    moved = max(1, resources // 4000)
    picker = random.Random(f"envdata:{seed}:pick")
    removed = set(picker.sample(range(resources), moved))
    both = [i for i in range(resources) if i not in removed]
    drifted = set(picker.sample(both, round(resources * drift_share)))
    ordinals: dict[str, int] = {}
    sides: dict[str, list[dict[str, Any]]] = {left.name: [], right.name: []}
    planted = Planted()
    for i in range(resources + moved):
        kind = PATTERN[i % len(PATTERN)]
        ordinal = ordinals.get(kind, 0)
        ordinals[kind] = ordinal + 1
        make = KINDS[kind]
        if i < resources:
            original = make(left, ordinal, random.Random(f"envdata:{seed}:{i}"))
            sides[left.name].append(original.push())
            if i in removed:
                planted.removed.add(identity(original, left))
                continue
        resource = make(right, ordinal, random.Random(f"envdata:{seed}:{i}"))
        if i >= resources:
            planted.added.add(identity(resource, right))
        elif i in drifted:
            how = drift(resource, random.Random(f"envdata:{seed}:{i}:drift"))
            planted.changed[identity(resource, right)] = how
        sides[right.name].append(resource.push())
    documents = {
        env.name: {
            "taken_at": TAKEN_AT.get(env.name, "2026-11-22T04:00:00Z"),
            "sources": [
                {"name": name, "type": "push", "status": "ok", "error": None}
                for name in SOURCES.values()
            ],
            "resources": sides[env.name],
        }
        for env in (left, right)
    }
    return Pair(left, right, documents, planted, seed)


def naming_share(pair: Pair) -> float:
    """The share of resources whose JSON names their own environment (1.0 for real data)."""
    total = naming = 0
    for env in (pair.left, pair.right):
        for r in pair.documents[env.name]["resources"]:
            total += 1
            naming += env.name in json.dumps(r)
    return naming / total if total else 1.0


def write(pair: Pair, directory: Path) -> dict[str, Path]:
    """Writes the two push documents, envparity.yaml and planted.json; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, doc in pair.documents.items():
        paths[name] = directory / f"{name}.json"
        paths[name].write_text(json.dumps(doc), encoding="utf-8")
    paths["config"] = directory / "envparity.yaml"
    paths["config"].write_text(pair.config(), encoding="utf-8")
    paths["planted"] = directory / "planted.json"
    paths["planted"].write_text(json.dumps(pair.planted.as_json(), indent=1), encoding="utf-8")
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--resources", type=int, default=20_000, help="per side")
    parser.add_argument("--drift", type=float, default=0.01, help="share of resources changed")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    pair = generate(args.resources, args.drift, args.seed)
    paths = write(pair, args.directory)
    p = pair.planted
    print(
        f"{args.resources:,} resources per side; planted: {len(p.changed)} changed, "
        f"{len(p.added)} added, {len(p.removed)} removed"
    )
    for name, path in paths.items():
        print(f"  {name:10} {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
