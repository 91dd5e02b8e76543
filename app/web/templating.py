"""The dashboard's Jinja2 environment: autoescaped templates, time filters, static asset URLs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app import __version__
from app.snapshots.schemas import format_time

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
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@lru_cache(maxsize=4096)
def iso(value: datetime | None) -> str:
    return "" if value is None else format_time(value)


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


class Pages:
    """Templates compiled once per application (auto_reload off: they ship in the package)."""

    def __init__(self, templates: Path = TEMPLATES, *, cache_size: int = 400) -> None:
        self.env = Environment(
            loader=FileSystemLoader(templates),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            cache_size=cache_size,
        )
        # A content hash in each asset URL: browsers may cache assets for good.
        self.versions = {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in STATIC.iterdir()
            if path.is_file()
        }
        self.env.globals.update(static=self.static_url, version=__version__)
        self.env.filters.update(age=age, when=when, iso=iso, percent=percent)

    def static_url(self, name: str) -> str:
        return f"/static/{name}?v={self.versions[name]}"

    def render(self, template: str, /, **context: Any) -> str:
        return self.env.get_template(template).render(**context)
