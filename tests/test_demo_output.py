"""`envparity demo` prints the items of every comparison it gates, not only the first, in
tables as wide as a CI log allows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_prints_every_gated_comparisons_items(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # a pipe: 160 columns
    done = subprocess.run(
        [sys.executable, "-m", "app", "demo", "--folder", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout
    sections = {}
    for comparison in ("staging → production", "staging-eu → production"):
        start = text.index(f" {comparison} ")
        gate = text.index(f"gate {comparison.replace(' → ', ' -> ')}:", start)
        sections[comparison] = text[start:gate]
    for comparison, section in sections.items():
        left = comparison.split(" → ")[0]
        assert f"{left} #" in section, section
        # An item of each: the instance type drift is planted in both staging environments.
        [row] = [line for line in section.splitlines() if "web instance_type" in line]
        assert "m5.large" in row
        assert "c5.xlarge" in row
    # The planted leak, key and values on one line.
    [leak] = [
        line
        for line in sections["staging → production"].splitlines()
        if "aws.ssm.parameter /app/{env}/db/host" in line
    ]
    assert "orders-db-production.internal" in leak
