"""Loading envparity.yaml: a YAML reader that remembers the line of every key and item, `${VAR}`
expansion from the environment, and errors that each name file, line and key
(`envparity.yaml:12: comparisons[0].gate.max_age: ...`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.config.model import (
    DEFAULT_CONFIG_NAME,
    ComparisonConfig,
    Config,
    ConfigModel,
    Environment,
    SlackRoute,
)
from app.errors import ConfigError
from collectors import registry
from collectors.base import SourceOptions

# `${NAME}` expands; `$${NAME}` is a literal `${NAME}` (for shell commands, dpkg formats).
_VAR_REF = re.compile(r"\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

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


def _check_routes(
    located: _Located, model: ConfigModel, i: int, comparison: ComparisonConfig
) -> None:
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
