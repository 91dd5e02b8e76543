"""Slack messages stay within Slack's limits whatever the drift: 5,000 items, long values,
mrkdwn control characters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.alerts.messages import MAX_BLOCKS, MAX_HEADER, MAX_SECTION, blocks_for
from tests.alerts.recorder import Recorder
from tests.support import Project


def event(n: int, kind: str = "drift.opened", url: str | None = "https://parity.example/x") -> dict:
    severities = ("critical", "warning", "info")
    return {
        "event": kind,
        "comparison": "staging->production",
        "source": "staging",
        "target": "production",
        "left": {"snapshot_id": 1, "taken_at": "2026-11-22T04:00:00Z"},
        "right": {"snapshot_id": 2, "taken_at": "2026-11-22T04:00:00Z"},
        "parity": 0.5,
        "report_url": url,
        "items": [
            {
                "category": "config",
                "resource_type": "file",
                "key": f"app-{i}.yaml <&> " + "k" * 400,
                "path": "database." + "p" * 500,
                "change": "changed",
                "left": "x" * 5000,
                "right": {"nested": ["y" * 4000]},
                "severity": severities[i % 3],
                "detail": None,
                "first_seen": "2026-11-20T10:00:00Z",
                "opened_at": "2026-11-20T10:00:00Z",
            }
            for i in range(n)
        ],
    }


def check_limits(blocks: list[dict[str, Any]], text: str) -> None:
    assert len(blocks) <= MAX_BLOCKS
    assert len(text) <= 3000
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])


def test_five_thousand_items_fit_with_the_rest_summarised_and_linked() -> None:
    text, blocks = blocks_for(event(5000))
    check_limits(blocks, text)
    body = json.dumps(blocks, ensure_ascii=False)
    assert "…and 4,980 more items" in body
    assert "<https://parity.example/x|the full report>" in body
    assert blocks[0]["text"]["text"] == "staging → production: 5,000 new drift items"
    shown = [b for b in blocks if b["type"] == "section"][1:21]
    assert all(":red_circle: *critical*" in b["text"]["text"] for b in shown)  # worst first
    assert "<&>" not in body
    assert "&lt;&amp;&gt;" in body


def test_without_a_server_address_the_rest_points_at_the_cli() -> None:
    text, blocks = blocks_for(event(30, "drift.resolved", url=None))
    check_limits(blocks, text)
    body = json.dumps(blocks, ensure_ascii=False)
    assert "`envparity diff staging production`" in body
    assert "actions" not in body  # no button without a link
    assert "resolved" in blocks[0]["text"]["text"]


@pytest.mark.slow
def test_five_thousand_pushed_items_reach_slack_within_limits(
    project: Project, recorder: Recorder
) -> None:
    project.write_config(
        f"""
environments:
  staging: {{}}
  production: {{}}
comparisons:
  - {{source: staging, target: production}}
alerts:
  slack: {{webhook_url: "{recorder.url("/slack")}", min_severity: info}}
  webhooks: [{{url: "{recorder.url("/hook")}", min_severity: info}}]
"""
    )
    for env, version in (("staging", "1.0.0"), ("production", "2.0.0")):
        doc = {
            "taken_at": "2026-11-22T04:00:00Z",
            "sources": [{"name": "agent", "type": "push", "status": "ok", "error": None}],
            "resources": [
                {"source": "agent", "category": "packages", "resource_type": "pip",
                 "key": f"pkg-{i:04d}", "attributes": {"version": version}}
                for i in range(5000)
            ],
        }  # fmt: skip
        path = project.write(f"{env}.json", json.dumps(doc))
        pushed = project.invoke("push", env, str(path))
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    [slack] = recorder.to("/slack")
    message = slack.json()
    check_limits(message["blocks"], message["text"])
    assert len(slack.body) < 40_000
    [hook] = recorder.to("/hook")
    assert len(hook.json()["items"]) == 5000  # a webhook gets every item
