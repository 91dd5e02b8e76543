"""A scan of 5,000 instances and 1,000 security groups on moto, against the raw paginated
boto3 calls for the same data, in the same run.

Run: .venv/bin/python benchmarks/bench_scan.py [--instances 5000] [--groups 1000]

Target (issue 4): the whole scan (collect, normalize, hash secrets, store) takes <= 1.3x the
time of the raw API calls alone. The raw reference makes the same calls the two source types
make (describe_instances, describe_images, describe_volumes; describe_security_groups,
describe_vpcs), paginated, and does nothing with the answers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from botocore.config import Config

from app import runtime
from app.demo import start_simulator
from app.snapshots.service import Scanner

REGION = "us-east-1"
# The instance source asks for live instances only; the reference asks the same.
STATES = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]


def seed(endpoint: str, instances: int, groups: int) -> None:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    ami = ec2.register_image(Name="bench-ami", RootDeviceName="/dev/xvda")["ImageId"]
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    for i in range(groups):
        group = ec2.create_security_group(
            GroupName=f"sg-bench-{i:05d}",
            Description="bench",
            VpcId=vpc,
            TagSpecifications=[
                {"ResourceType": "security-group", "Tags": [{"Key": "env", "Value": "bench"}]}
            ],
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                }
            ],
        )
    left = instances
    n = 0
    while left:
        batch = min(500, left)
        ec2.run_instances(
            ImageId=ami,
            MinCount=batch,
            MaxCount=batch,
            InstanceType="m5.large",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": "env", "Value": "bench"},
                        {"Key": "Role", "Value": f"role-{n % 50}"},
                    ],
                }
            ],
        )
        left -= batch
        n += 1


def raw_calls(endpoint: str) -> float:
    config = Config(read_timeout=600, retries={"mode": "standard", "max_attempts": 3})
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint, config=config)
    started = time.perf_counter()
    instances = [
        i
        for page in ec2.get_paginator("describe_instances").paginate(Filters=STATES)
        for r in page["Reservations"]
        for i in r["Instances"]
    ]
    image_ids = sorted({i["ImageId"] for i in instances})
    ec2.describe_images(ImageIds=image_ids)
    volume_ids = sorted(
        {
            m["Ebs"]["VolumeId"]
            for i in instances
            for m in i.get("BlockDeviceMappings", [])
            if "Ebs" in m
        }
    )
    for start in range(0, len(volume_ids), 500):
        for _ in ec2.get_paginator("describe_volumes").paginate(
            VolumeIds=volume_ids[start : start + 500]
        ):
            pass
    for _ in ec2.get_paginator("describe_security_groups").paginate():
        pass
    for _ in ec2.get_paginator("describe_vpcs").paginate():
        pass
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=1000)
    args = parser.parse_args()
    simulator = start_simulator()
    try:
        print(f"seeding {args.instances:,} instances and {args.groups:,} security groups...")
        seed(simulator.endpoint, args.instances, args.groups)
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "envparity.yaml"
            endpoint = simulator.endpoint
            # Every resource of the simulated account is the bench's: no tag filter, which
            # moto applies slowly on thousands of instances (real AWS does it server-side).
            common = f"region: {REGION}, endpoint_url: '{endpoint}'"
            config.write_text(
                "environments:\n  bench:\n    sources:\n"
                f"      - {{type: aws.ec2.instances, name: instances, {common}, timeout: 600}}\n"
                f"      - {{type: aws.ec2.security_groups, name: groups, {common}, timeout: 600}}\n"
            )
            os.environ["ENVPARITY_DATABASE_URL"] = f"sqlite:///{tmp}/envparity.db"
            os.environ.setdefault("ENVPARITY_SECRET_KEY", "ab" * 32)
            rt = runtime.load(config)
            scanner = Scanner(rt.config, rt.sessions, rt.redactor)
            raw = []
            scans = []
            for _ in range(2):  # alternate, so that neither gets a warmer server
                raw.append(raw_calls(simulator.endpoint))
                started = time.perf_counter()
                result = scanner.scan("bench")
                scans.append(time.perf_counter() - started)
                assert result.status == "complete", [s.error for s in result.sources]
            rt.close()
    finally:
        simulator.stop()
    ratio = min(scans) / min(raw)
    runs = ", ".join(f"{r:.2f}" for r in raw)
    print(f"raw paginated boto3 calls  {min(raw):7.2f} s  (runs: {runs})")
    runs = ", ".join(f"{s:.2f}" for s in scans)
    print(f"envparity scan             {min(scans):7.2f} s  (runs: {runs})")
    print(f"resources stored: {result.resource_count:,}")
    print(f"ratio {ratio:.2f}x (target <= 1.3x)")
    ok = ratio <= 1.3
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
