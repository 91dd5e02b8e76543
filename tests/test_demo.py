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
        env={**os.environ, "COLUMNS": "200"},
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
