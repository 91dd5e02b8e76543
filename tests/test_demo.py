"""`envparity demo --serve`: the demo's scans, report and gates, then its dashboard on
loopback until interrupted (the README's way to look at the dashboard without any setup)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_until_answers


@pytest.mark.slow
def test_demo_scans_reports_and_serves_its_dashboard(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "demo", "--folder", str(tmp_path), "--serve",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},  # a pipe: 160 columns
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("dashboard: "):
                break
        text = "".join(lines)
        assert f"dashboard: http://127.0.0.1:{port}/" in text, text
        assert "staging → production" in text
        every_comparisons_items(text)
        wait_until_answers(f"http://127.0.0.1:{port}/", deadline - time.monotonic(), process)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200
        assert "staging" in page.text
        assert "production" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def every_comparisons_items(text: str) -> None:
    """The demo prints the items of every comparison it gates, not only the first, in
    tables as wide as a CI log allows."""
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
