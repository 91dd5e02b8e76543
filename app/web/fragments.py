"""The comparison page's item lists, rendered once per report and filters.

A report the gate cached (app/gate/service.py) stays the same object until its snapshots or
the waivers change, and the HTML of its items holds no time relative to the request, so the
rows of a 5,000-item report are built and rendered once, not on every visit."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from markupsafe import Markup

from app.reports.model import Report
from app.web.views import Filters


class Fragments:
    def __init__(self, size: int = 8) -> None:
        self.size = size  # a 5,000-item list is about 2.5 MB of HTML
        self.entries: OrderedDict[tuple[int, Filters], tuple[Report, Markup]] = OrderedDict()
        self.lock = threading.Lock()

    def items(self, report: Report, filters: Filters, render: Callable[[], Markup]) -> Markup:
        """`render()`'s HTML, kept for this report and filters."""
        key = (id(report), filters)
        with self.lock:
            hit = self.entries.get(key)
            # the entry holds the report itself, so its id cannot be reused while it is here
            if hit is not None and hit[0] is report:
                self.entries.move_to_end(key)
                return hit[1]
        html = render()
        with self.lock:
            self.entries[key] = (report, html)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return html
