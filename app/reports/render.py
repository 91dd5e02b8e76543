"""A report as a Rich table, JSON, Markdown (for a pull request), JUnit XML (for CI) or GitHub
Actions workflow commands; the gate's answer in the same formats."""

from __future__ import annotations

import io
import json
import os
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from xml.etree import ElementTree as ET

from rich.cells import cell_len, chop_cells
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from app.diff.model import DriftItem
from app.reports.model import Report, gate_view, item_of_json, sort_items
from app.states import GateStatus, Severity

SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
MAX_VALUE = 120
# The width of a table where stdout is no terminal (a CI log, `| less`) and $COLUMNS is unset.
TABLE_WIDTH = 160
# GitHub's limit on a comment (pull request, issue): CI recipes post the Markdown as one.
MARKDOWN_LIMIT = 65_536


class GateAnswer(Protocol):
    """What the renderers read of a gate's answer (app.gate.service.GateResult; the gate
    sits above the reports, so they name it by its shape)."""

    source: str
    target: str
    status: GateStatus
    reasons: list[str]
    summary: dict[str, Any]
    failing: list[dict[str, Any]]
    report: Report | None
    report_url: str | None
    fail_on: Severity | None
    categories: list[str]

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


def note_of(item: DriftItem) -> str:
    """What a report says beside an item: why it does not count (waived, tolerated) and what
    the finding is (a leak's `names production (its env)`, where a reused secret also is)."""
    return "; ".join(part for part in (status_of(item), item.detail or "") if part)


def summary_numbers(summary: Mapping[str, Any]) -> tuple[int, int, int]:
    """Unwaived, waived and tolerated items, from a report's JSON summary."""
    unwaived, tolerated = summary["unwaived"], summary["tolerated"]
    return unwaived, summary["items"] - unwaived, tolerated


# ----------------------------------------------------------------------------- json


def to_json(report: Report) -> str:
    return json_text(report.as_json())


def json_text(body: dict[str, Any]) -> str:
    """A report's JSON as `diff --format json` prints it (and as it is stored)."""
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------- table

# Where a line may break: at spaces, and after the separators of paths, dotted keys and
# lists, so that `/app/{env}/db/host` wraps as `/app/{env}/` + `db/host`, never mid-word (a
# leading separator stays with the word after it).
_PIECES = re.compile(r"\s+|[/.,:=&]*[^\s/.,:=&]+[/.,:=&]*|[/.,:=&]+")


def wrap_on_boundaries(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` cells, broken at spaces or after `/ . , : = &`;
    only a piece wider than a whole line is folded."""
    width = max(width, 1)
    lines: list[str] = []
    line, space = "", ""
    for piece in _PIECES.findall(text):
        if piece.isspace():
            space = piece if line else ""
            continue
        joined = line + space + piece
        space = ""
        if cell_len(joined) <= width:
            line = joined
            continue
        if line:
            lines.append(line)
        if cell_len(piece) <= width:
            line = piece
        else:
            *whole, line = chop_cells(piece, width)
            lines.extend(whole)
    lines.append(line)
    return lines


class Cell:
    """A table cell that wraps on word and path boundaries only (`wrap_on_boundaries`): Rich's
    own folding cuts anywhere once a word is wider than its column."""

    def __init__(self, text: str) -> None:
        self.text = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        pieces = [p for p in _PIECES.findall(self.text) if not p.isspace()]
        return Measurement(max(map(cell_len, pieces), default=0), cell_len(self.text))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = wrap_on_boundaries(self.text, options.max_width)
        yield Text("\n".join(lines), no_wrap=True, overflow="crop")


def table_width(environ: Mapping[str, str] | None = None) -> int:
    """The width of a table printed elsewhere than on a terminal: $COLUMNS, else 160."""
    columns = (os.environ if environ is None else environ).get("COLUMNS", "").strip()
    return int(columns) if columns.isdigit() and int(columns) > 0 else TABLE_WIDTH


def summary_line(summary: Mapping[str, Any], unwaived: Mapping[Severity, int] | None) -> Text:
    """`parity 50.0% of 8 resources · 6 unwaived · 2 critical, 4 warning · 0 waived · 1
    tolerated`: the numbers of the JSON summary (`unwaived` by severity when known)."""
    counting, waived, tolerated = summary_numbers(summary)
    parts = [f"parity [bold]{summary['parity']:.1%}[/bold] of {summary['compared']} resources"]
    parts.append(f"{counting} unwaived")
    if unwaived is not None:
        counts = ", ".join(f"[{SEVERITY_STYLE[s]}]{n} {s}[/]" for s, n in unwaived.items() if n)
        parts.append(counts or "no drift")
    parts += [f"{waived} waived", f"{tolerated} tolerated"]
    return Text.from_markup(" · ".join(parts))


def to_rich(report: Report, items: list[DriftItem] | None = None, note: str | None = None) -> Group:
    """The report as Rich renders it: both snapshots, the summary (always of the whole
    report), the sources not compared, and a table per category of `items` (all of them
    unless given: the gate lists its failing ones), preceded by `note`."""
    data = report.as_json()
    left, right = data["left"], data["right"]
    head = Text.from_markup(
        f"[bold]{escape(left['label'])}[/bold] #{left['snapshot_id']} ({left['status']}, "
        f"{left['taken_at']})  →  [bold]{escape(right['label'])}[/bold] "
        f"#{right['snapshot_id']} ({right['status']}, {right['taken_at']})"
    )
    parts: list[RenderableType] = [
        head,
        summary_line(data["summary"], unwaived_by_severity(report)),
    ]
    for unknown in report.result.unknown:
        parts.append(
            Text.from_markup(
                f"[yellow]not compared:[/yellow] {escape(unknown.environment)} source "
                f"{escape(unknown.source)} failed ({escape(unknown.error or '')}); "
                f"{unknown.resources} resources unknown"
            )
        )
    if note:
        parts.append(Text(note))
    listed = report.result.items if items is None else items
    parts += item_tables(listed, left["label"], right["label"])
    return Group(*parts)


def item_tables(items: list[DriftItem], left: str, right: str) -> list[ItemTable]:
    """One table per category, worst first within each; waived and tolerated items dimmed."""
    by_category: dict[str, list[DriftItem]] = {}
    for item in sort_items(items):
        by_category.setdefault(item.category, []).append(item)
    tables = []
    for category, listed in sorted(by_category.items()):
        table = Table(title=category, title_justify="left", expand=False, show_lines=False)
        table.add_column("severity", no_wrap=True)
        table.add_column("change", no_wrap=True)
        for header in ("resource / path", left, right, "note"):
            table.add_column(Cell(header))
        rows = []
        for item in listed:
            # Text cells: a path like `ingress[tcp/22 from 0.0.0.0/0]` is not Rich markup.
            cells = [
                Cell(f"{item.resource_type} {where(item)}"),
                Cell(short(item.left)),
                Cell(short(item.right)),
                Cell(note_of(item)),
            ]
            table.add_row(
                Text(item.severity, style=SEVERITY_STYLE[item.severity] if item.counts else "dim"),
                Text(item.change),
                *cells,
                style="" if item.counts else "dim",
            )
            rows.append([item.severity, item.change, *(c.text for c in cells)])
        tables.append(ItemTable(table, rows))
    return tables


class ItemTable:
    """A table of drift items whose columns share out the width so that as many items as
    can stay on one line do. Rich narrows the widest columns first, wrapping nearly every
    row; here the column narrowed next is the one that wraps the fewest more rows, never
    below its longest word (`wrap_on_boundaries`) while another column can give."""

    def __init__(self, table: Table, rows: list[list[str]]) -> None:
        self.table = table
        self.rows = rows

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.table
        columns = table.columns
        # The borders (edges, and one between columns), and a space either side of a cell.
        available = options.max_width - (len(columns) + 1) - 2 * len(columns)
        headers = [c.header.text if isinstance(c.header, Cell) else str(c.header) for c in columns]
        fixed = [c.no_wrap for c in columns]
        widths = fit_widths(headers, self.rows, available, fixed)
        for column, width in zip(columns, widths, strict=True):
            column.width = width
        yield table


def fit_widths(
    headers: list[str], rows: list[list[str]], available: int, fixed: list[bool]
) -> list[int]:
    """Column widths within `available` cells that wrap as few rows as they can: each
    column starts at its widest cell; while too wide, the column narrowed is the one whose
    narrowing (to its next shorter cell, or by what is still too much) wraps the fewest rows
    that did not wrap yet, then saves the most. Words are kept whole while any column can
    give without cutting one; `fixed` columns give last."""
    count = len(headers)
    lengths = [[cell_len(row[c]) for row in rows] for c in range(count)]
    widest = [max([cell_len(headers[c]), *lengths[c]]) for c in range(count)]
    words = [
        max(
            (
                cell_len(p)
                for text in [headers[c], *(r[c] for r in rows)]
                for p in _PIECES.findall(text)
                if not p.isspace()
            ),
            default=1,
        )
        for c in range(count)
    ]  # the longest word of each column
    # Per column: its distinct lengths, its rows longest first (narrowing the column wraps a
    # prefix of them: `taken` so far), and the lengths of the rows no column wraps yet.
    distinct = [sorted(set(lengths[c])) for c in range(count)]
    longest_first = [
        [r for _n, r in sorted(((-n, r) for r, n in enumerate(lengths[c])))] for c in range(count)
    ]
    taken = [0] * count
    unwrapped = [sorted(lengths[c]) for c in range(count)]
    wrapped: set[int] = set()
    widths = list(widest)
    for floors in (
        [widest[c] if fixed[c] else words[c] for c in range(count)],
        [widest[c] if fixed[c] else 1 for c in range(count)],
        [1] * count,
    ):
        while sum(widths) > available:
            excess = sum(widths) - available
            best: tuple[tuple[int, int], int, int] | None = None
            for c in range(count):
                if widths[c] <= floors[c]:
                    continue
                below = bisect_left(distinct[c], widths[c])
                shorter = distinct[c][below - 1] if below else floors[c]
                target = max(widths[c] - excess, shorter, floors[c])
                newly = len(unwrapped[c]) - bisect_right(unwrapped[c], target)
                score = (newly, target - widths[c])  # fewest new wraps, then the most saved
                if best is None or score < best[0]:
                    best = (score, c, target)
            if best is None:
                break
            _score, column, target = best
            order = longest_first[column]
            while taken[column] < len(order) and lengths[column][order[taken[column]]] > target:
                row = order[taken[column]]
                taken[column] += 1
                if row not in wrapped:
                    wrapped.add(row)
                    for c in range(count):
                        del unwrapped[c][bisect_left(unwrapped[c], lengths[c][row])]
            widths[column] = target
    return widths


def rich_text(renderable: RenderableType, width: int | None = None) -> str:
    """What Rich prints of `renderable` at `width` columns (`table_width()` by default), as
    plain text: for a file, a pipe, a CI log."""
    console = Console(
        width=width or table_width(),
        record=True,
        file=io.StringIO(),
        force_terminal=False,
        highlight=False,
        emoji=False,
    )
    console.print(renderable)
    return "".join(line.rstrip() + "\n" for line in console.export_text().splitlines())


def to_table(report: Report, width: int | None = None) -> str:
    return rich_text(to_rich(report), width)


def gate_rich(result: GateAnswer, details: bool = True) -> Group:
    """The gate's status and reasons; with `details`, the report's summary (the numbers of
    the JSON answer's `summary`) and the items that fail the gate."""
    colour = {GateStatus.PASS: "green", GateStatus.FAIL: "red"}.get(result.status, "yellow")
    parts: list[RenderableType] = [
        Text.from_markup(
            f"gate {escape(result.source)} -> {escape(result.target)}: "
            f"[{colour}]{result.status.upper()}[/{colour}]"
        )
    ]
    parts += [Text(f"  {reason}") for reason in result.reasons]
    if result.report_url:
        parts.append(Text(f"  report: {result.report_url}"))
    if not details:
        return Group(*parts)
    failing = failing_items(result)
    note = f"{len(failing)} item(s) fail the gate:" if failing else None
    if result.report is not None:
        parts.append(to_rich(result.report, failing, note))
    elif result.summary:  # a server's answer: its summary and failing items, no report
        parts.append(summary_line(result.summary, None))
        if note:
            parts.append(Text(note))
        parts += item_tables(failing, result.source, result.target)
    return Group(*parts)


def failing_items(result: GateAnswer) -> list[DriftItem]:
    """The items that fail the gate: the report's own when it has it, else from the answer."""
    fingerprints = {i["fingerprint"] for i in result.failing}
    if result.report is not None:
        return [i for i in sort_items(result.report.result.items) if i.fingerprint in fingerprints]
    return [item_of_json(dict(i)) for i in result.failing]


# ----------------------------------------------------------------------------- markdown

# Characters with a meaning in GitHub's Markdown (emphasis, links, HTML, tables, mentions,
# references, math), escaped in text that comes from the data.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&$@!])")
_BACKTICKS = re.compile(r"`+")


def md_text(text: str) -> str:
    """Text shown as written: every Markdown or HTML meaning escaped, on one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def md_code(text: str) -> str:
    """`text` as an inline code span in a table cell: shown literally (`**x** <img>` as
    written), fenced by more backticks than any run inside it (CommonMark), padded with a
    space where it starts or ends with a backtick or a space, its pipes escaped (GitHub
    splits table cells before it reads code spans)."""
    text = text.replace("\r", " ").replace("\n", " ")
    if not text:
        return "—"
    fence = "`" * (max(map(len, _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def _md_value(value: Any) -> str:
    return "—" if value is None else md_code(short(value, 80))


def _size(text: str) -> int:
    """Length as GitHub counts it (UTF-16 code units: an emoji is two), plus the newline."""
    return len(text.encode("utf-16-le")) // 2 + 1


def to_markdown(
    report: Report,
    items: list[DriftItem] | None = None,
    preamble: Iterable[str] = (),
    note: str | None = None,
    limit: int = MARKDOWN_LIMIT,
    full: str = "the same command with `--format json` (or `--format junit`)",
) -> str:
    """The report in GitHub Markdown, for a pull request comment: a summary (always of the
    whole report), a table of the unwaived items of `items` (all unless given), a collapsed
    table of the waived and tolerated ones. `preamble` lines come first (the gate's header).
    Within `limit` characters: when the items do not fit, the most severe are kept and a
    last line says how many were left out and where the full report is (`full`)."""
    data = report.as_json()
    s, left, right = data["summary"], data["left"], data["right"]
    ln, rn = md_text(left["label"]), md_text(right["label"])
    unwaived = unwaived_by_severity(report)
    icon = "✅" if s["unwaived"] == 0 else ("🔴" if unwaived[Severity.CRITICAL] else "🟠")
    counting_n, waived_n, _tolerated = summary_numbers(s)
    head = [
        *preamble,
        f"### {icon} envparity: {ln} → {rn}",
        "",
        f"Parity **{s['parity']:.1%}** of {s['compared']} resources; "
        f"**{counting_n}** unwaived drift item(s) "
        f"({', '.join(f'{n} {k}' for k, n in unwaived.items() if n) or 'none'}); "
        f"{waived_n} waived; {s['tolerated']} tolerated.",
        "",
        f"Snapshots: {ln} #{left['snapshot_id']} ({left['taken_at']}), "
        f"{rn} #{right['snapshot_id']} ({right['taken_at']}).",
    ]
    for unknown in data["unknown"]:
        head.append(
            f"> ⚠️ not compared: {md_text(unknown['environment'])} source "
            f"{md_code(unknown['source'])} failed: {md_text(short(unknown['error'] or '', 300))}"
        )
    if note:  # ours: Markdown as written
        head += ["", note]
    listed = sort_items(report.result.items if items is None else items)
    counting = [_counting_row(i) for i in listed if i.counts]
    documented = [_documented_row(i) for i in listed if not i.counts]
    counting_head = [
        "",
        f"| severity | change | resource | path | {ln} | {rn} | note | first seen |",
        "|---|---|---|---|---|---|---|---|",
    ]
    documented_head = [
        "",
        "<details><summary>Documented differences (waived or tolerated)</summary>",
        "",
        "| resource | path | why |",
        "|---|---|---|",
    ]
    documented_tail = ["", "</details>"]

    total = len(counting) + len(documented)
    footer = (
        f"**{{left_out:,}} of {total:,} items left out** to stay within GitHub's "
        f"{limit:,}-character limit for a comment (the most severe are shown). The full "
        f"report: {full}."
    )
    # Below the limit, not at it; the footer's room is kept whatever it will say.
    budget = limit - 1 - sum(map(_size, head)) - _size("") - _size(footer.format(left_out=total))
    shown_counting = _fitting(counting, counting_head, budget)
    budget -= sum(map(_size, counting_head)) * bool(shown_counting)
    budget -= sum(map(_size, shown_counting))
    shown_documented = (
        _fitting(documented, documented_head + documented_tail, budget)
        if len(shown_counting) == len(counting)
        else []
    )
    lines = list(head)
    if shown_counting:
        lines += counting_head + shown_counting
    if shown_documented:
        lines += documented_head + shown_documented + documented_tail
    left_out = total - len(shown_counting) - len(shown_documented)
    if left_out:
        lines += ["", footer.format(left_out=left_out)]
    return "\n".join(lines) + "\n"


def _fitting(rows: list[str], frame: list[str], budget: int) -> list[str]:
    """The first rows that fit in `budget` with their `frame` (table head and tail)."""
    budget -= sum(map(_size, frame))
    shown = []
    for row in rows:
        budget -= _size(row)
        if budget < 0:
            break
        shown.append(row)
    return shown


def _resource(item: DriftItem) -> str:
    return f"{md_code(item.resource_type)} {md_code(short(item.key, 200))}"


def _counting_row(i: DriftItem) -> str:
    return (
        f"| {i.severity} | {i.change} | {_resource(i)} | {md_code(short(i.path, 200))} | "
        f"{_md_value(i.left)} | {_md_value(i.right)} | {md_text(short(i.detail or '', 200))} | "
        f"{i.first_seen.date().isoformat() if i.first_seen else ''} |"
    )


def _documented_row(i: DriftItem) -> str:
    why = md_text(short(note_of(i), 200))
    return f"| {_resource(i)} | {md_code(short(i.path, 200))} | {why} |"


# ----------------------------------------------------------------------------- junit


def to_junit(report: Report) -> str:
    """One test case per compared resource; unwaived drift fails it; unknown sources error."""
    data = report.as_json()
    left, right = report.left, report.right
    labelled = left.label is not None or right.label is not None
    name = f"envparity {left.name}->{right.name}" if labelled else f"envparity {data['comparison']}"
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


# ----------------------------------------------------------------------------- github

# The annotation of an item, by its severity.
ANNOTATION = {Severity.CRITICAL: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def command_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's toolkit does (`escapeData`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def command_property(text: str) -> str:
    """A workflow command's property value (`title=`), escaped (`escapeProperty`)."""
    return command_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(level: str, title: str, message: str) -> str:
    return f"::{level} title={command_property(title)}::{command_data(message)}"


def _annotations(items: Iterable[DriftItem], left: str, right: str) -> list[str]:
    return [
        workflow_command(
            ANNOTATION[i.severity],
            f"envparity {left} → {right}: {i.severity} {i.change}",
            f"{i.resource_type} {where(i)}: {left} {short(i.left)}, {right} {short(i.right)}"
            + (f" ({i.detail})" if i.detail else ""),
        )
        for i in sort_items(list(items))
        if i.counts
    ]


def _summary_message(summary: Mapping[str, Any]) -> str:
    counting, waived, tolerated = summary_numbers(summary)
    return (
        f"parity {summary['parity']:.1%} of {summary['compared']} resources; "
        f"{counting} unwaived, {waived} waived, {tolerated} tolerated"
    )


def to_github(report: Report) -> str:
    """GitHub Actions workflow commands: an annotation per unwaived item (`::error` for
    critical, `::warning`, `::notice` for info), a warning per source not compared, and a
    notice with the summary. (`diff` and `gate` also append the Markdown report to
    $GITHUB_STEP_SUMMARY.)"""
    data = report.as_json()
    left, right = data["left"]["label"], data["right"]["label"]
    lines = [
        workflow_command(
            "warning",
            f"envparity {left} → {right}: not compared",
            f"{u.environment} source {u.source} failed ({u.error or ''}); "
            f"{u.resources} resources unknown",
        )
        for u in report.result.unknown
    ]
    lines += _annotations(report.result.items, left, right)
    lines.append(
        workflow_command("notice", f"envparity {left} → {right}", _summary_message(data["summary"]))
    )
    return "\n".join(lines) + "\n"


def gate_github(result: GateAnswer) -> str:
    """The gate as workflow commands: its status (`::error` unless it passed) with the
    reasons, then an annotation per item that fails it."""
    level = "notice" if result.status == GateStatus.PASS else "error"
    title = f"envparity gate {result.source} → {result.target}: {result.status.upper()}"
    message = "; ".join(result.reasons)
    if result.fail_on is not None:
        message += f" (fail_on {result.fail_on})"
    if result.summary:
        message += f"; {_summary_message(result.summary)}"
    lines = [workflow_command(level, title, message)]
    report = result.report
    left, right = (
        (report.left.name, report.right.name) if report else (result.source, result.target)
    )
    lines += _annotations(failing_items(result), left, right)
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- by format


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "markdown":
        return to_markdown(report)
    if fmt == "junit":
        return to_junit(report)
    if fmt == "github":
        return to_github(report)
    return to_table(report)


GATE_ICON = {GateStatus.PASS: "✅", GateStatus.FAIL: "❌"}


def gate_markdown(result: GateAnswer) -> str:
    """The gate's header (status, fail_on, gated categories, reasons), then the report as the
    gate judged it: the items that fail it and the documented differences, under the whole
    report's summary."""
    icon = GATE_ICON.get(result.status, "⚠️")
    rule = []
    if result.fail_on is not None:
        rule.append(f"fail_on {md_code(result.fail_on)}")
    if result.categories:
        rule.append(f"gated categories: {', '.join(map(md_text, result.categories))}")
    header = [
        f"## {icon} envparity gate {md_text(result.source)} → {md_text(result.target)}: "
        f"**{result.status.upper()}**",
        "",
    ]
    if rule:
        header += [" · ".join(rule), ""]
    header += [f"- {md_text(short(reason, 500))}" for reason in result.reasons]
    if result.report_url:
        header += ["", f"Report: <{result.report_url}>"]
    report = result.report
    if report is None:
        return "\n".join(header) + "\n"
    failing = {i["fingerprint"] for i in result.failing}
    view = gate_view(report, failing)
    unjudged = len(report.counting) - len(failing)
    note = (
        f"Listed: the {len(failing)} item(s) that fail the gate and the documented differences; "
        f"{unjudged} unwaived item(s) below fail_on or outside the gated categories are not "
        "(`envparity diff` lists them)."
        if unjudged
        else None
    )
    full = f"`envparity diff {result.source} {result.target} --format json`"
    return to_markdown(report, view.result.items, [*header, ""], note, full=full)


def gate_text(result: GateAnswer, fmt: str) -> str:
    """The gate's answer as json, markdown, junit or github: what the CLI prints and the API
    serves."""
    if fmt == "json":
        return json.dumps(result.as_json(), indent=2) + "\n"
    if fmt == "markdown":
        return gate_markdown(result)
    if fmt == "github":
        return gate_github(result)
    if fmt == "junit" and result.report is not None:
        failing = {i["fingerprint"] for i in result.failing}
        return to_junit(gate_view(result.report, failing))
    if fmt == "junit":  # no report to show: one erroring case says why
        return gate_junit(result)
    return rich_text(gate_rich(result))
