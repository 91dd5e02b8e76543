"""The dashboard's Jinja2 environment: autoescaped templates, time filters, static asset URLs."""

from __future__ import annotations

import hashlib
import html
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from app import __version__
from app.clock import format_time, in_utc
from app.states import Severity
from app.web.views import value_text

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def age(value: timedelta | None) -> str:
    """A duration as a person says it: `just now`, `4 min`, `3 h`, `2 d`."""
    if value is None:
        return "never"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return "just now" if seconds < 10 else f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


# A report's items share few distinct times (first seen): format each once.
@lru_cache(maxsize=4096)
def when(value: datetime | None) -> str:
    """A time for people: UTC, to the minute (the exact time is in `<time datetime>`)."""
    return "" if value is None else in_utc(value).strftime("%Y-%m-%d %H:%M UTC")


@lru_cache(maxsize=4096)
def iso(value: datetime | None) -> str:
    return "" if value is None else format_time(value)


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def escaped(value: Any) -> str:
    """Every expression of a fragment template, escaped into a plain str."""
    return "" if value is None else html.escape(str(value))


class Pages:
    """Templates compiled once per application (auto_reload off: they ship in the package).

    Pages are autoescaped the usual way. Fragments (the comparison page's item list) go
    through a second environment that escapes every expression into a plain str with
    `finalize`: the usual way makes one markupsafe.Markup per value, and Markup objects are
    tracked by the garbage collector, so 50,000 of them per 5,000-row list made Python run
    full collections in the middle of the render (about 130 ms of a 250 ms page)."""

    def __init__(self, templates: Path = TEMPLATES, *, cache_size: int = 400) -> None:
        options: dict[str, Any] = {
            "loader": FileSystemLoader(templates),
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "auto_reload": False,
            "cache_size": cache_size,
        }
        self.env = Environment(autoescape=True, **options)
        self.fragments = Environment(autoescape=False, finalize=escaped, **options)
        # A content hash in each asset URL: browsers may cache assets for good.
        self.versions = {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in STATIC.iterdir()
            if path.is_file()
        }
        # The severities worst first, as every page lists them (counts, filters, legends).
        self.env.globals.update(
            static=self.static_url, version=__version__, severities=Severity.worst_first()
        )
        for env in (self.env, self.fragments):
            env.filters.update(age=age, when=when, iso=iso, percent=percent, value=value_text)

    def static_url(self, name: str) -> str:
        return f"/static/{name}?v={self.versions[name]}"

    def render(self, template: str, /, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def fragment(self, template: str, /, **context: Any) -> Markup:
        """A fragment template rendered with every expression escaped (see the class)."""
        html_text = self.fragments.get_template(template).render(**context)
        return Markup(html_text)  # safe: finalize escaped every expression
