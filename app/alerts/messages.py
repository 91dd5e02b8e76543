"""An event as a Slack Block Kit message, within Slack's limits whatever the number of items
(pure: no I/O)."""

from __future__ import annotations

import json
from typing import Any

from app.states import Change, EventKind, Severity

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FALLBACK = 3000  # the notification text; Slack truncates far later, people far sooner
# What we show: the worst items, each kept short; the rest is counted and linked.
TOP_ITEMS = 20
MAX_VALUE = 300
# Changes whose two values are worth showing (a leak or a reused secret is told by its detail).
_VALUE_CHANGES = (Change.ADDED, Change.REMOVED, Change.CHANGED)

_ICON = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":white_circle:",
}


def escape(text: str) -> str:
    """Slack mrkdwn's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return "`" + escape(_cut(text.replace("`", "'"), MAX_VALUE)) + "`"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _counts(items: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        counts[item["severity"]] = counts.get(item["severity"], 0) + 1
    return " · ".join(
        f"{_ICON[s]} {counts[s]:,} {s}" for s in Severity.worst_first() if s in counts
    )


def _title(event: dict[str, Any]) -> str:
    arrow = f"{event['source']} → {event['target']}"
    n = len(event["items"])
    if event["event"] == EventKind.OPENED:
        return f"{arrow}: {_plural(n, 'new drift item')}"
    if event["event"] == EventKind.RESOLVED:
        return f"{arrow}: {_plural(n, 'drift item')} resolved"
    return f"{arrow}: {_plural(n, 'critical drift item')} still open"


def _item_text(event: dict[str, Any], item: dict[str, Any]) -> str:
    head = (
        f"{_ICON[item['severity']]} *{item['severity']}* · {escape(item['category'])} · "
        f"`{escape(_cut(item['key'], 200))}` `{escape(_cut(item['path'], 300))}` "
        f"({escape(item['change'])})"
    )
    if event["event"] == EventKind.RESOLVED:
        return _cut(f"{head}\nopen since {item.get('opened_at') or '?'}", MAX_SECTION)
    lines = [head]
    if item.get("detail"):
        lines.append(escape(_cut(str(item["detail"]), MAX_VALUE)))
    if item["change"] in _VALUE_CHANGES:
        lines.append(f"{escape(event['source'])}: {_value(item.get('left'))}")
        lines.append(f"{escape(event['target'])}: {_value(item.get('right'))}")
    if item.get("first_seen"):
        lines.append(f"_first seen {item['first_seen']}_")
    return _cut("\n".join(lines), MAX_SECTION)


def blocks_for(event: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The fallback text and the blocks of one event's message."""
    items = sorted(
        event["items"],
        key=lambda i: (-Severity.rank_of(i["severity"]), i["category"], i["key"], i["path"]),
    )
    title = _title(event)
    url = event.get("report_url")
    left, right = event["left"], event["right"]
    where = (
        f"*{escape(event['source'])}* #{left['snapshot_id']} ({left['taken_at']}) vs "
        f"*{escape(event['target'])}* #{right['snapshot_id']} ({right['taken_at']}) · "
        f"parity {event['parity'] * 100:.1f}%"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, MAX_HEADER)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(where, MAX_SECTION)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _counts(items) or "-"}]},
        {"type": "divider"},
    ]
    shown = items[:TOP_ITEMS]
    for item in shown:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _item_text(event, item)}}
        )
    rest = items[len(shown) :]
    if rest:
        more = f"…and {_plural(len(rest), 'more item')} ({_counts(rest)})"
        where_all = (
            f"<{url}|the full report>"
            if url
            else f"`envparity diff {escape(event['source'])} {escape(event['target'])}`"
        )
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(f"{more}: see {where_all}", MAX_SECTION)},
            }
        )
    if url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the report"},
                        "url": url,
                    }
                ],
            }
        )
    fallback = _cut(f"{title} ({_counts(items)})", MAX_FALLBACK)
    return fallback, blocks[:MAX_BLOCKS]
