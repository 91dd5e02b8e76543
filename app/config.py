"""envparity.yaml: the pydantic model, and a loader whose every error names file, line and key."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from app.errors import ConfigError
from collectors import registry
from collectors.base import CATEGORIES, Category, SourceOptions
from collectors.limits import Limits
from collectors.secrets import RULES

Severity = Literal["info", "warning", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
DEFAULT_CONFIG_NAME = "envparity.yaml"
DEFAULT_DATABASE_URL = "sqlite:///envparity.db"

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# `${NAME}` expands; `$${NAME}` is a literal `${NAME}` (for shell commands, dpkg formats).
_VAR_REF = re.compile(r"\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `1h`, `2d`, `1w` as a timedelta."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h, 2d")
    return timedelta(**{_UNITS[m[2]]: int(m[1])})


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


def _check_schedule(text: str) -> str:
    if _DURATION.match(text.strip()):
        return text
    from apscheduler.triggers.cron import CronTrigger

    if len(text.split()) != 5:
        raise ValueError(f"{text!r} is neither an interval (30s, 15m, 1h) nor a 5-field cron")
    try:
        CronTrigger.from_crontab(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid cron expression: {exc}") from exc
    return text


def _check_regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return text


Duration = Annotated[str, AfterValidator(_check_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateConfig(_Model):
    fail_on: Severity = "warning"
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
    allow: Literal["same_family", "patch", "minor", "any"]


class IgnoreConfig(_Matcher):
    reason: str = Field(min_length=1)
    owner: str | None = None
    expires: date | datetime | None = None


class SeverityRule(_Matcher):
    change: Literal["added", "removed", "changed", "leak", "secret_reused"] | None = None
    severity: Severity


class SlackConfig(_Model):
    """An incoming webhook (`webhook_url`), or a bot token posting with chat.postMessage
    (`bot_token` + `channel`), which threads a comparison's later messages under its first."""

    webhook_url: str | None = None
    bot_token: str | None = None
    channel: str | None = None
    min_severity: Severity = "warning"
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
    min_severity: Severity = "warning"


class AlertsConfig(_Model):
    slack: SlackConfig | None = None
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    # A reminder of critical drift still open after this long (and again after as long).
    repeat_after: Duration | None = None
    # How long `envparity scan` / `push` wait for delivery before leaving the rest to
    # `serve` / `scheduler` (or the next scan).
    deliver_timeout: Duration = "60s"
    # The most one request to Slack or a webhook takes, from connecting to the end of the
    # answer: a peer that trickles its answer is cut off then, and the send is retried.
    request_timeout: Duration = "10s"
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
    schedule: Annotated[str, AfterValidator(_check_schedule)] | None = None
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
    busy_timeout: Duration = "30s"
    # PostgreSQL: opening a connection, handshake and authentication included.
    connect_timeout: Duration = "5s"
    # PostgreSQL: the server cancels a statement running longer (0s: never). The client
    # itself gives up on a server that has not answered 5 s after it.
    statement_timeout: Duration = "30s"
    # PostgreSQL: the check of a pooled connection before each use (pool pre-ping).
    ping_timeout: Duration = "3s"
    # PostgreSQL TCP keepalives: probe an idle connection after keepalives_idle, every
    # keepalives_interval, and drop it after keepalives_count unanswered probes.
    keepalives_idle: Duration = "10s"
    keepalives_interval: Duration = "5s"
    keepalives_count: int = Field(default=3, ge=1, le=100)
    # PostgreSQL: data sent and not acknowledged for this long drops the connection.
    tcp_user_timeout: Duration = "20s"


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
    schedule: str | None
    sources: list[SourceOptions]

    @property
    def push_only(self) -> bool:
        return not self.sources


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
            known = ", ".join(self.environments) or "none"
            raise ConfigError(
                f"environment {name!r} is not declared in {self.path} (declared: {known})"
            ) from None

    def comparison(self, source: str, target: str) -> ComparisonConfig | None:
        for comparison in self.model.comparisons:
            if comparison.source == source and comparison.target == target:
                return comparison
        return None


# --------------------------------------------------------------------------- loading

Loc = tuple[str | int, ...]


class _Located:
    """The plain data of a YAML document plus the line of every key and item."""

    def __init__(self, filename: str, environ: Mapping[str, str]) -> None:
        self.filename = filename
        self.environ = environ
        self.lines: dict[Loc, int] = {}
        self._constructor = yaml.SafeLoader("")

    def error(self, loc: Loc, message: str) -> ConfigError:
        return ConfigError(f"{self.filename}:{self.line_of(loc)}: {_dotted(loc)}: {message}")

    def line_of(self, loc: Loc) -> int:
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return 1

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            inherited: dict[str, Any] = {}  # from `<<` merges; the mapping's own keys win
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`
                    merged = self.build(value_node, loc)
                    for part in merged if isinstance(merged, list) else [merged]:
                        if not isinstance(part, dict):
                            raise self.error(loc, "`<<` merges mappings only")
                        for k, v in part.items():
                            inherited.setdefault(k, v)
                    continue
                key = self.build_scalar(key_node, loc)
                if not isinstance(key, str | int | float | bool):
                    raise self.error(loc, "mapping keys must be plain values")
                key = str(key)
                if key in out:
                    self.lines[(*loc, key)] = key_node.start_mark.line + 1
                    raise self.error((*loc, key), "duplicate key")
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*loc, key))
            return {**inherited, **out}
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self.build_scalar(node, loc)

    def build_scalar(self, node: yaml.Node, loc: Loc) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(loc, "expected a plain value here")
        value = self._constructor.construct_object(node, deep=True)
        if isinstance(value, str):
            return self.expand(value, loc)
        return value

    def expand(self, value: str, loc: Loc) -> str:
        def sub(m: re.Match[str]) -> str:
            if m[0].startswith("$$"):
                return m[0][1:]
            name = m[1]
            if name not in self.environ:
                raise self.error(loc, f"${{{name}}} is not set in the environment")
            return self.environ[name]

        return _VAR_REF.sub(sub, value)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _follow(data: Any, loc: tuple[Any, ...]) -> Loc:
    """The part of a pydantic error location that indexes into the data (drops union tags)."""
    out: list[str | int] = []
    for part in loc:
        in_dict = isinstance(data, dict) and isinstance(part, str) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if in_dict or in_list:
            data = data[part]
            out.append(part)
        else:
            # A missing key is worth naming; a union member's tag (`list[str]`) is not.
            if isinstance(data, dict) and isinstance(part, str) and part.isidentifier():
                out.append(part)
            break
    return tuple(out)


def _raise_validation(located: _Located, data: Any, exc: ValidationError, prefix: Loc = ()) -> None:
    messages: list[str] = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *_follow(_at(data, prefix), err["loc"]))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        msg = msg.removeprefix("Value error, ")
        line = f"{located.filename}:{located.line_of(loc)}: {_dotted(loc)}: {msg}"
        if line not in messages:
            messages.append(line)
    raise ConfigError("\n".join(messages))


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


def find_config_path(explicit: str | Path | None, env_value: Path | None = None) -> Path:
    """--config, else $ENVPARITY_CONFIG, else ./envparity.yaml."""
    path = Path(explicit) if explicit else (env_value or Path(DEFAULT_CONFIG_NAME))
    return path.expanduser()


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Reads and validates a config file; any problem raises ConfigError naming file:line: key."""
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file (write a starter one with `envparity init`)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    located = _Located(str(path), environ)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{path}:{line}: not valid YAML: {exc.problem}") from None
    if node is None:
        raise ConfigError(f"{path}:1: the file is empty")
    data = located.build(node, ())
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping of keys")
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as exc:
        _raise_validation(located, data, exc)
        raise  # unreachable: _raise_validation always raises
    for i, comparison in enumerate(model.comparisons):
        for end in ("source", "target"):
            if getattr(comparison, end) not in model.environments:
                raise located.error(
                    ("comparisons", i, end),
                    f"names an undeclared environment {getattr(comparison, end)!r}",
                )
        _check_routes(located, model, i, comparison)
    environments = {
        name: Environment(
            name=name,
            vars={"env": name, **env.vars},
            schedule=env.schedule,
            sources=_load_sources(located, data, name, env.sources),
        )
        for name, env in model.environments.items()
    }
    return Config(path=path.resolve(), model=model, environments=environments)


def _check_routes(located: _Located, model: ConfigModel, i: int, comparison: Any) -> None:
    routes = comparison.alerts
    known = model.alerts.webhook_names()
    for j, name in enumerate(routes.webhooks or []):
        if name not in known:
            raise located.error(
                ("comparisons", i, "alerts", "webhooks", j),
                f"names no webhook of alerts.webhooks: {name!r} (declared: "
                f"{', '.join(known) or 'none'})",
            )
    route = routes.slack
    if isinstance(route, SlackRoute) and model.alerts.slack is None and not route.webhook_url:
        raise located.error(
            ("comparisons", i, "alerts", "slack"),
            "a Slack route needs a webhook_url here or an alerts.slack to inherit from",
        )


def _load_sources(
    located: _Located, data: Any, env_name: str, raw_sources: list[dict[str, Any]]
) -> list[SourceOptions]:
    out: list[SourceOptions] = []
    names: set[str] = set()
    counters: dict[str, int] = {}
    for i, raw in enumerate(raw_sources):
        loc: Loc = ("environments", env_name, "sources", i)
        type_name = raw.get("type")
        if not isinstance(type_name, str):
            raise located.error((*loc, "type"), "every source needs a `type`")
        source_type = registry.get(type_name)
        if source_type is None:
            known = ", ".join(registry.source_types())
            raise located.error(
                (*loc, "type"), f"unknown source type {type_name!r} (known: {known})"
            )
        try:
            options = source_type.Options.model_validate(raw)
        except ValidationError as exc:
            _raise_validation(located, data, exc, prefix=loc)
            raise
        if options.name is None:
            counters[type_name] = counters.get(type_name, 0) + 1
            n = counters[type_name]
            options = options.model_copy(
                update={"name": type_name if n == 1 else f"{type_name}#{n}"}
            )
        assert options.name is not None
        if options.name in names:
            raise located.error((*loc, "name"), f"source name {options.name!r} is used twice")
        names.add(options.name)
        out.append(options)
    return out
