"""The envparity.yaml model: what each key may hold, checked as the file is loaded (the loader,
app/config/loader.py, names the file, line and key of every mistake).

Durations (`30s`, `15m`, `1h`, `2d`, `1w`) are parsed here, once: the model holds timedeltas,
and writes each back as a duration text (`Duration`). A schedule is an interval or a 5-field
cron expression (`Schedule`)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NewType

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.clock import DURATION, format_duration, parse_duration
from app.errors import ConfigError
from app.states import Allowance, Change, Severity
from collectors.base import CATEGORIES, Category, SourceOptions
from collectors.limits import Limits
from collectors.secrets import RULES

DEFAULT_CONFIG_NAME = "envparity.yaml"
DEFAULT_DATABASE_URL = "sqlite:///envparity.db"

_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# A 5-field cron expression (`*/5 * * * *`), checked when the config is loaded.
CronText = NewType("CronText", str)
# When an environment is scanned: every so long, or when a cron expression says.
Schedule = timedelta | CronText


def close_match(word: str, known: Iterable[str]) -> str | None:
    """The one known name `word` is most likely a misspelling of (difflib's closeness), or
    the only one it begins (`prod` for `production`); None when nothing is close."""
    names = [name for name in known if name != word]
    starting = [name for name in names if word and name.startswith(word)]
    if len(starting) == 1:
        return starting[0]
    close = difflib.get_close_matches(word, names, n=1)
    return close[0] if close else None


def did_you_mean(word: str, known: Iterable[str], shown: str = "{}") -> str:
    """`; did you mean `production`?` for a close known name (formatted by `shown`), else
    nothing: the tail of a message that refused `word`."""
    match = close_match(word, known)
    return f"; did you mean `{shown.format(match)}`?" if match is not None else ""


def _text(value: object) -> str:
    """A duration or schedule as the file gives it: a text, as before these were parsed
    (`max_age: 30` is refused as it always was, not taken for 30 seconds)."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return value


def _to_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):  # a default, or a model built in code
        return value
    return parse_duration(_text(value))


def _to_schedule(value: object) -> Schedule:
    if isinstance(value, timedelta):
        return value
    text = _text(value)
    if DURATION.match(text.strip()):
        return parse_duration(text)
    from apscheduler.triggers.cron import CronTrigger

    if len(text.split()) != 5:
        raise ValueError(f"{text!r} is neither an interval (30s, 15m, 1h) nor a 5-field cron")
    try:
        CronTrigger.from_crontab(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid cron expression: {exc}") from exc
    return CronText(text)


def schedule_text(schedule: Schedule) -> str:
    """A schedule as the config writes it: `15m`, or the cron expression."""
    return format_duration(schedule) if isinstance(schedule, timedelta) else schedule


def _check_regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return text


# A duration text of the file (`30s`, `15m`, `1h`, `2d`, `1w`) as a timedelta; written back
# (model_dump, the API's gate rules) as a duration text again.
Duration = Annotated[
    timedelta, BeforeValidator(_to_duration), PlainSerializer(format_duration, return_type=str)
]
ScheduleField = Annotated[
    Schedule, BeforeValidator(_to_schedule), PlainSerializer(schedule_text, return_type=str)
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateConfig(_Model):
    fail_on: Severity = Severity.WARNING
    max_age: Duration | None = None
    # Categories that must be complete on both sides for the gate to judge; all by default.
    categories: list[Category] = Field(default_factory=lambda: list(CATEGORIES))


class SlackRoute(_Model):
    """A comparison's own Slack route: fields left out come from `alerts.slack`."""

    webhook_url: str | None = None
    channel: str | None = None
    min_severity: Severity | None = None


class ComparisonAlerts(_Model):
    """Where a comparison's alerts go. `slack: false` turns Slack off for it; `webhooks`
    names the `alerts.webhooks` it posts to (all of them when left out, none with [])."""

    slack: SlackRoute | bool = True
    webhooks: list[str] | None = None


class ComparisonConfig(_Model):
    source: str
    target: str
    gate: GateConfig = Field(default_factory=GateConfig)
    alerts: ComparisonAlerts = Field(default_factory=ComparisonAlerts)

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


class _Matcher(_Model):
    """Fields shared by rules that pick drift items; key and path take shell-style globs."""

    comparison: str | None = None
    category: Category | None = None
    resource_type: str | None = None
    key: str | None = None
    path: str | None = None


class ToleranceConfig(_Matcher):
    path: str
    allow: Allowance


class IgnoreConfig(_Matcher):
    reason: str = Field(min_length=1)
    owner: str | None = None
    expires: date | datetime | None = None


class SeverityRule(_Matcher):
    change: Change | None = None
    severity: Severity


class SlackConfig(_Model):
    """An incoming webhook (`webhook_url`), or a bot token posting with chat.postMessage
    (`bot_token` + `channel`), which threads a comparison's later messages under its first."""

    webhook_url: str | None = None
    bot_token: str | None = None
    channel: str | None = None
    min_severity: Severity = Severity.WARNING
    # Slack's Web API; another address only for a proxy or a test double.
    api_url: str = "https://slack.com/api/"

    @model_validator(mode="after")
    def _one_way_to_post(self) -> SlackConfig:
        if self.webhook_url and self.bot_token:
            raise ValueError("give either webhook_url or bot_token (with channel), not both")
        if not self.webhook_url and not (self.bot_token and self.channel):
            raise ValueError("give webhook_url, or bot_token and channel")
        return self


class WebhookConfig(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] | None = None
    url: str
    # The HMAC-SHA256 key of the X-Envparity-Signature header.
    secret: str | None = None
    min_severity: Severity = Severity.WARNING


class AlertsConfig(_Model):
    slack: SlackConfig | None = None
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    # A reminder of critical drift still open after this long (and again after as long).
    repeat_after: Duration | None = None
    # How long `envparity scan` / `push` wait for delivery before leaving the rest to
    # `serve` / `scheduler` (or the next scan).
    deliver_timeout: Duration = timedelta(seconds=60)
    # The most one request to Slack or a webhook takes, from connecting to the end of the
    # answer: a peer that trickles its answer is cut off then, and the send is retried.
    request_timeout: Duration = timedelta(seconds=10)
    # A send that went out in full and got no answer may have reached the peer: once an
    # event has been sent this many times, such a send fails it instead of sending again.
    max_unanswered: int = Field(default=3, ge=1, le=50)
    # Destinations sent to at once, one worker each: a slow peer holds only its own events.
    delivery_workers: int = Field(default=8, ge=1, le=64)

    @field_validator("webhooks")
    @classmethod
    def _webhook_names(cls, value: list[WebhookConfig]) -> list[WebhookConfig]:
        names = [_webhook_name(i, hook) for i, hook in enumerate(value)]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ValueError(f"two webhooks are named {duplicate!r}: give each its own name")
        return value

    def named_webhooks(self) -> dict[str, WebhookConfig]:
        """Each webhook under its name (`webhook-N` when it has none)."""
        return _named(self.webhooks)

    def webhook_names(self) -> list[str]:
        return list(self.named_webhooks())


def _webhook_name(index: int, hook: WebhookConfig) -> str:
    return hook.name or f"webhook-{index + 1}"


def _named(hooks: list[WebhookConfig]) -> dict[str, WebhookConfig]:
    return {_webhook_name(i, hook): hook for i, hook in enumerate(hooks)}


def _check_rule(name: str) -> str:
    if name not in RULES:
        raise ValueError(f"unknown secret rule {name!r} (rules: {', '.join(sorted(RULES))})")
    return name


class SecretsConfig(_Model):
    # Where the installation's HMAC key lives (created on first use); outside the database.
    key_file: str | None = None
    # Attribute keys matching this regex (case-insensitive) hold secrets; it replaces the
    # key lexicon (docs/secrets.md) rather than adding to it.
    key_pattern: Annotated[str, AfterValidator(_check_regex)] | None = None
    # More words that make a key secret (`pin`, `seed`), on word boundaries.
    key_words: list[str] = Field(default_factory=list)
    # Keys that are never secret, whatever the lexicon says (`token_bucket_size`).
    plain_keys: list[str] = Field(default_factory=list)
    # Rules to turn off, by the names `envparity secrets audit` reports (`jwt`, `url_token`).
    disable: list[Annotated[str, AfterValidator(_check_rule)]] = Field(default_factory=list)


class EnvironmentConfig(_Model):
    vars: dict[str, str] = Field(default_factory=dict)
    schedule: ScheduleField | None = None
    # Raw here; validated against each source type's own options model by load_config.
    sources: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("vars")
    @classmethod
    def _vars_not_empty(cls, value: dict[str, str]) -> dict[str, str]:
        for name, val in value.items():
            if not str(val).strip():
                raise ValueError(f"var {name!r} is empty: an empty value would match everywhere")
        return value


class ServerConfig(_Model):
    """`envparity serve`: where it listens, and what it allows."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Turning auth off is allowed only here, and `serve` refuses it on a non-loopback host.
    auth: bool = True
    # The address people reach the server at, for report links in gate answers and alerts.
    public_url: str | None = None
    max_push_mb: int = Field(default=50, ge=1, le=4096)
    # Every other request body (the login form, a waiver): counted as it arrives, refused
    # with 413 past this many KiB, before anything parses it.
    max_body_kb: int = Field(default=64, ge=1, le=1024 * 1024)


class LimitsConfig(_Model):
    """What any one document may hold, whoever made it (collectors.limits.Limits)."""

    max_depth: int = Field(default=Limits.max_depth, ge=4, le=1000)
    max_key_length: int = Field(default=Limits.max_key_length, ge=64, le=1 << 20)
    max_string_length: int = Field(default=Limits.max_string_length, ge=1024, le=1 << 30)
    max_resources: int = Field(default=Limits.max_resources, ge=1, le=100_000_000)
    max_source_bytes: int = Field(default=Limits.max_source_bytes, ge=1024, le=1 << 34)
    max_yaml_nodes: int = Field(default=Limits.max_yaml_nodes, ge=1000, le=1_000_000_000)

    def limits(self) -> Limits:
        return Limits(**self.model_dump())


class DatabaseConfig(_Model):
    """How long envparity waits on its database (app.db.session.make_engine)."""

    # SQLite: a writer that finds the database locked waits this long for its turn.
    busy_timeout: Duration = timedelta(seconds=30)
    # PostgreSQL: opening a connection, handshake and authentication included.
    connect_timeout: Duration = timedelta(seconds=5)
    # PostgreSQL: the server cancels a statement running longer (0s: never). The client
    # itself gives up on a server that has not answered 5 s after it.
    statement_timeout: Duration = timedelta(seconds=30)
    # PostgreSQL: the check of a pooled connection before each use (pool pre-ping).
    ping_timeout: Duration = timedelta(seconds=3)
    # PostgreSQL TCP keepalives: probe an idle connection after keepalives_idle, every
    # keepalives_interval, and drop it after keepalives_count unanswered probes.
    keepalives_idle: Duration = timedelta(seconds=10)
    keepalives_interval: Duration = timedelta(seconds=5)
    keepalives_count: int = Field(default=3, ge=1, le=100)
    # PostgreSQL: data sent and not acknowledged for this long drops the connection.
    tcp_user_timeout: Duration = timedelta(seconds=20)


def _retention_window(value: timedelta) -> timedelta:
    if value < timedelta(hours=1):
        raise ValueError(
            f"{format_duration(value)} is shorter than 1h: stored reports would go almost as "
            "soon as they are made (a unit typo? 90d, not 90s)"
        )
    return value


def _prune_schedule(value: Schedule | None) -> Schedule | None:
    if isinstance(value, timedelta) and value < timedelta(minutes=1):
        raise ValueError(f"prune at most once a minute: {format_duration(value)} is too often")
    return value


class RetentionConfig(_Model):
    """How long stored reports (evaluations) are kept: app.reports.retention prunes the rest,
    on `schedule` in the scheduler's leader and with `envparity db prune`."""

    # Evaluations made less than this long ago are kept.
    evaluations: Annotated[Duration, AfterValidator(_retention_window)] = timedelta(days=90)
    # The latest this many evaluations of each comparison are kept, however old.
    keep_per_comparison: int = Field(default=10, ge=1, le=1_000_000)
    # When the scheduler prunes: an interval (first run a minute after it starts) or a
    # 5-field cron; null: never on a schedule (`envparity db prune` by hand or from cron).
    schedule: Annotated[ScheduleField | None, AfterValidator(_prune_schedule)] = timedelta(days=1)


class ConfigModel(_Model):
    database_url: str | None = None
    server: ServerConfig = Field(default_factory=ServerConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)
    comparisons: list[ComparisonConfig] = Field(default_factory=list)
    tolerate: list[ToleranceConfig] = Field(default_factory=list)
    ignore: list[IgnoreConfig] = Field(default_factory=list)
    severity: list[SeverityRule] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("environments")
    @classmethod
    def _env_names(cls, value: dict[str, EnvironmentConfig]) -> dict[str, EnvironmentConfig]:
        for name in value:
            if not _ENV_NAME.match(name):
                raise ValueError(
                    f"environment name {name!r} must be letters, digits, '.', '_' or '-'"
                )
        return value


@dataclass(frozen=True)
class Environment:
    """One environment, its sources validated by their own source types."""

    name: str
    vars: dict[str, str]
    schedule: Schedule | None
    sources: list[SourceOptions]

    @property
    def push_only(self) -> bool:
        return not self.sources

    @property
    def schedule_text(self) -> str | None:
        """The schedule as the config writes it (`15m`, a cron expression), for people."""
        return None if self.schedule is None else schedule_text(self.schedule)


@dataclass(frozen=True)
class Config:
    """The loaded configuration: the model plus where it came from."""

    path: Path
    model: ConfigModel
    environments: dict[str, Environment] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def database_url(self) -> str:
        return self.model.database_url or DEFAULT_DATABASE_URL

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(self.undeclared(name)) from None

    def undeclared(self, name: str) -> str:
        """Why `name` is refused as an environment: the message of `environment()` (scan,
        gate, push...), of a ref (`diff`) and of `export`, with the declared names and the one
        `name` is likely a misspelling of."""
        known = ", ".join(self.environments) or "none"
        return (
            f"environment {name!r} is not declared in {self.path} (declared: {known})"
            f"{did_you_mean(name, self.environments)}"
        )

    def comparison(self, source: str, target: str) -> ComparisonConfig | None:
        for comparison in self.model.comparisons:
            if comparison.source == source and comparison.target == target:
                return comparison
        return None
