"""A report as a Rich table, JSON, Markdown (for a pull request) or JUnit XML (for CI)."""

from __future__ import annotations

import io
import json
from typing import Any, Protocol
from xml.etree import ElementTree as ET

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from app.diff.model import DriftItem
from app.reports.model import Report, gate_view, sort_items
from app.states import GateStatus, Severity

SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
MAX_VALUE = 120


class GateAnswer(Protocol):
    """What the renderers read of a gate's answer (app.gate.service.GateResult; the gate
    sits above the reports, so they name it by its shape)."""

    source: str
    target: str
    status: GateStatus
    reasons: list[str]
    failing: list[dict[str, Any]]
    report: Report | None

    def as_json(self) -> dict[str, Any]: ...


def unwaived_by_severity(report: Report) -> dict[Severity, int]:
    """Counting drift (neither waived nor tolerated) by severity, worst first."""
    counts = dict.fromkeys(Severity.worst_first(), 0)
    for item in report.counting:
        counts[item.severity] += 1
    return counts


def short(value: Any, limit: int = MAX_VALUE) -> str:
    """A value on one line, cut to `limit` characters."""
    if value is None:
        return "—"
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def where(item: DriftItem) -> str:
    return f"{item.key} {item.path}".strip() if item.path else item.key


def status_of(item: DriftItem) -> str:
    if item.tolerated:
        return f"tolerated ({item.tolerance})"
    if item.waived and item.waiver:
        return f"waived: {item.waiver['reason']}"
    return ""


# ----------------------------------------------------------------------------- json


def to_json(report: Report) -> str:
    return json_text(report.as_json())


def json_text(body: dict[str, Any]) -> str:
    """A report's JSON as `diff --format json` prints it (and as it is stored)."""
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------- table


def to_rich(report: Report) -> Group:
    data = report.as_json()
    summary = data["summary"]
    left, right = data["left"], data["right"]
    head = Text.from_markup(
        f"[bold]{escape(left['environment'])}[/bold] #{left['snapshot_id']} ({left['status']}, "
        f"{left['taken_at']})  →  [bold]{escape(right['environment'])}[/bold] "
        f"#{right['snapshot_id']} ({right['status']}, {right['taken_at']})"
    )
    unwaived = unwaived_by_severity(report)
    counts = ", ".join(f"[{SEVERITY_STYLE[s]}]{n} {s}[/]" for s, n in unwaived.items() if n)
    line = Text.from_markup(
        f"parity [bold]{summary['parity']:.1%}[/bold] of {summary['compared']} resources · "
        f"{summary['unwaived']} unwaived · {counts or 'no drift'} · "
        f"{summary['tolerated']} tolerated"
    )
    parts: list[RenderableType] = [head, line]
    for unknown in report.result.unknown:
        parts.append(
            Text.from_markup(
                f"[yellow]not compared:[/yellow] {escape(unknown.environment)} source "
                f"{escape(unknown.source)} failed ({escape(unknown.error or '')}); "
                f"{unknown.resources} resources unknown"
            )
        )
    by_category: dict[str, list[DriftItem]] = {}
    for item in sort_items(report.result.items):
        by_category.setdefault(item.category, []).append(item)
    for category, items in sorted(by_category.items()):
        table = Table(title=category, title_justify="left", expand=False, show_lines=False)
        table.add_column("severity")
        table.add_column("change")
        table.add_column("resource / path", overflow="fold")
        table.add_column(left["environment"], overflow="fold")
        table.add_column(right["environment"], overflow="fold")
        table.add_column("note", overflow="fold")
        for item in items:
            style = "dim" if not item.counts else ""
            # Text cells: a path like `ingress[tcp/22 from 0.0.0.0/0]` is not Rich markup.
            table.add_row(
                Text(item.severity, style=SEVERITY_STYLE[item.severity] if item.counts else "dim"),
                Text(item.change),
                Text(f"{item.resource_type} {where(item)}"),
                Text(short(item.left)),
                Text(short(item.right)),
                Text(status_of(item) or (item.detail or "")),
                style=style,
            )
        parts.append(table)
    return Group(*parts)


def to_table(report: Report, width: int = 160) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), force_terminal=False)
    console.print(to_rich(report))
    return console.export_text()


# ----------------------------------------------------------------------------- markdown


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    data = report.as_json()
    s, left, right = data["summary"], data["left"], data["right"]
    unwaived = unwaived_by_severity(report)
    icon = "✅" if s["unwaived"] == 0 else ("🔴" if unwaived[Severity.CRITICAL] else "🟠")
    lines = [
        f"### {icon} envparity: {left['environment']} → {right['environment']}",
        "",
        f"Parity **{s['parity']:.1%}** of {s['compared']} resources; "
        f"**{s['unwaived']}** unwaived drift item(s) "
        f"({', '.join(f'{n} {k}' for k, n in unwaived.items() if n) or 'none'}); "
        f"{s['tolerated']} tolerated.",
        "",
        f"Snapshots: {left['environment']} #{left['snapshot_id']} ({left['taken_at']}), "
        f"{right['environment']} #{right['snapshot_id']} ({right['taken_at']}).",
    ]
    for unknown in data["unknown"]:
        lines.append(
            f"> ⚠️ not compared: {unknown['environment']} source `{unknown['source']}` failed: "
            f"{_md(unknown['error'] or '')}"
        )
    counting = [i for i in sort_items(report.result.items) if i.counts]
    documented = [i for i in sort_items(report.result.items) if not i.counts]
    if counting:
        lines += [
            "",
            "| severity | change | resource | path | "
            f"{left['environment']} | {right['environment']} | first seen |",
            "|---|---|---|---|---|---|---|",
        ]
        for i in counting:
            lines.append(
                f"| {i.severity} | {i.change} | `{_md(i.resource_type)}` {_md(i.key)} | "
                f"`{_md(i.path) or '—'}` | {_md(short(i.left, 80))} | {_md(short(i.right, 80))} | "
                f"{i.first_seen.date().isoformat() if i.first_seen else ''} |"
            )
    if documented:
        lines += [
            "",
            "<details><summary>Documented differences (waived or tolerated)</summary>",
            "",
            "| resource | path | why |",
            "|---|---|---|",
        ]
        for i in documented:
            lines.append(f"| {_md(i.key)} | `{_md(i.path) or '—'}` | {_md(status_of(i))} |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- junit


def to_junit(report: Report) -> str:
    """One test case per compared resource; unwaived drift fails it; unknown sources error."""
    data = report.as_json()
    name = f"envparity {data['comparison']}"
    by_resource: dict[tuple[str, str, str], list[DriftItem]] = {}
    for item in sort_items(report.result.items):  # worst first within each case
        by_resource.setdefault((item.category, item.resource_type, item.key), []).append(item)
    cases: list[ET.Element] = []
    failures = 0
    for (category, resource_type, key), items in sorted(by_resource.items()):
        case = ET.Element("testcase", classname=f"{category}.{resource_type}", name=key)
        counting = [i for i in items if i.counts]
        if counting:
            failures += 1
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{len(counting)} drift item(s), worst {max_severity(counting)}",
                type="drift",
            )
            failure.text = "\n".join(
                f"[{i.severity}] {i.change} {i.path or '(resource)'}: "
                f"{short(i.left)} -> {short(i.right)}" + (f" ({i.detail})" if i.detail else "")
                for i in counting
            )
        others = [i for i in items if not i.counts]
        if others:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"{i.path or '(resource)'}: {status_of(i)}" for i in others)
        cases.append(case)
    for category, resource_type, key in sorted(report.result.resources):
        if (category, resource_type, key) not in by_resource:
            cases.append(ET.Element("testcase", classname=f"{category}.{resource_type}", name=key))
    errors = 0
    for unknown in report.result.unknown:
        case = ET.Element(
            "testcase",
            classname="envparity.unknown",
            name=f"{unknown.environment}:{unknown.source}",
        )
        error = ET.SubElement(case, "error", message="source failed: not compared", type="unknown")
        error.text = unknown.error or ""
        cases.append(case)
        errors += 1
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        timestamp=data["right"]["taken_at"],
    )
    suite.extend(cases)
    suites = ET.Element("testsuites", name="envparity")
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def gate_junit(result: GateAnswer) -> str:
    """A gate that could not judge (no, stale or partial data) as one erroring test case."""
    suite = ET.Element(
        "testsuite",
        name=f"envparity gate {result.source}->{result.target}",
        tests="1",
        failures="0",
        errors="1",
    )
    case = ET.SubElement(suite, "testcase", classname="envparity.gate", name=result.status)
    error = ET.SubElement(case, "error", message=f"gate {result.status}", type=result.status)
    error.text = "\n".join(result.reasons)
    suites = ET.Element("testsuites", name="envparity")
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def max_severity(items: list[DriftItem]) -> Severity:
    worst = Severity.worst(i.severity for i in items)
    assert worst is not None, "no items"
    return worst


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "markdown":
        return to_markdown(report)
    if fmt == "junit":
        return to_junit(report)
    return to_table(report)


def gate_text(result: GateAnswer, fmt: str) -> str:
    """The gate's answer as json, markdown or junit: what the CLI prints and the API serves."""
    if fmt == "json":
        return json.dumps(result.as_json(), indent=2) + "\n"
    if fmt in ("markdown", "junit") and result.report is not None:
        failing = {i["fingerprint"] for i in result.failing}
        return render(gate_view(result.report, failing), fmt)
    if fmt == "junit":  # no report to show: one erroring case says why
        return gate_junit(result)
    lines = [f"**gate {result.source} → {result.target}: {result.status.upper()}**", ""]
    lines += [f"- {reason}" for reason in result.reasons]
    return "\n".join(lines) + "\n"
