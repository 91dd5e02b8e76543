"""Loading envparity.yaml: a YAML reader that remembers the line of every key and item, `${VAR}`
expansion from the environment, and errors that each name file, line and key
(`envparity.yaml:12: comparisons[0].gate.max_age: ...`)."""

from __future__ import annotations

import codecs
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path, PosixPath, WindowsPath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from app.config.model import (
    DEFAULT_CONFIG_NAME,
    ComparisonConfig,
    Config,
    ConfigModel,
    Environment,
    SlackRoute,
    did_you_mean,
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


def _follow(data: Any, loc: tuple[Any, ...], missing: bool = False) -> Loc:
    """The part of a pydantic error location that indexes into the data: without the tags
    of union members (`SlackRoute`, `list[str]`), with the key a `missing` error names."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        in_dict = isinstance(data, dict) and isinstance(part, str) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if in_dict or in_list:
            data = data[part]
            out.append(part)
        elif i < len(loc) - 1:
            continue  # a union member's tag: the location goes on inside the same value
        else:
            if missing and isinstance(data, dict) and isinstance(part, str):
                out.append(part)
            break
    return tuple(out)


def _raise_validation(
    located: _Located,
    data: Any,
    exc: ValidationError,
    model: type[BaseModel],
    prefix: Loc = (),
) -> None:
    messages: list[str] = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *_follow(_at(data, prefix), err["loc"], err["type"] == "missing"))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = _unknown_key(str(err["loc"][-1]), _keys_at(model, err["loc"][:-1]))
        elif err["type"] == "missing":
            msg = "required key is missing"
        msg = msg.removeprefix("Value error, ")
        line = f"{located.filename}:{located.line_of(loc)}: {_dotted(loc)}: {msg}"
        if line not in messages:
            messages.append(line)
    raise ConfigError("\n".join(messages))


def _unknown_key(key: str, known: list[str] | None) -> str:
    """`unknown key; did you mean `vars`?` when a key of that place is close, else the keys
    it may hold."""
    if not known:
        return "unknown key (check its spelling)"
    close = did_you_mean(key, known)
    if close:
        return f"unknown key{close}"
    return f"unknown key (check its spelling; the keys here are {', '.join(known)})"


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The keys the mapping at `loc` (a pydantic error location inside `model`) may hold,
    found by following the models' field types; None where the types do not say."""
    tp: Any = model
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return None
    tp = _model_in(tp)
    return list(tp.model_fields) if tp is not None else None


def _members(tp: Any) -> list[Any]:
    """A type without its Annotated metadata, as the list of its union members."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _members(arg)]
    return [tp]


def _model_in(tp: Any) -> type[BaseModel] | None:
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _step(tp: Any, part: Any) -> Any:
    """The type one step of an error location leads to from `tp` (None: unknown)."""
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            if isinstance(part, str) and part in member.model_fields:
                return member.model_fields[part].annotation
            if part == member.__name__:  # a union member's tag: the location stays here
                return member
        origin = typing.get_origin(member)
        if origin is dict and isinstance(part, str):
            return typing.get_args(member)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(member)[0]
    return None


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


if sys.platform == "win32":
    _PlatformPath = WindowsPath
else:
    _PlatformPath = PosixPath


class ConfigPath(_PlatformPath):
    """The config file's path as find_config_path chose it, remembering what named it
    (`--config`, `$ENVPARITY_CONFIG`, or None for ./envparity.yaml): the message for a
    missing file says so."""

    named_by: str | None = None


def find_config_path(explicit: str | Path | None, env_value: Path | None = None) -> Path:
    """--config, else $ENVPARITY_CONFIG, else ./envparity.yaml."""
    if explicit:
        path, named_by = ConfigPath(explicit), "--config"
    elif env_value:
        path, named_by = ConfigPath(env_value), "$ENVPARITY_CONFIG"
    else:
        path, named_by = ConfigPath(DEFAULT_CONFIG_NAME), None
    path = path.expanduser()
    path.named_by = named_by
    return path


def missing_config(path: Path) -> str:
    """The message for a config file that is not there: where it was looked for, what named
    that place, and the ways to name another."""
    named_by = getattr(path, "named_by", None)
    where = path.absolute()
    if named_by is None and path == Path(DEFAULT_CONFIG_NAME):
        return (
            f"no {DEFAULT_CONFIG_NAME} in {where.parent} (the current folder): pass "
            "--config FILE, set $ENVPARITY_CONFIG, or write a starter one here with "
            "`envparity init`"
        )
    if named_by == "$ENVPARITY_CONFIG":
        why = " (named by $ENVPARITY_CONFIG); fix or unset $ENVPARITY_CONFIG, pass --config FILE,"
    elif named_by == "--config":
        why = f" (named by --config {path}); check the path,"
    else:
        why = "; pass --config FILE, set $ENVPARITY_CONFIG,"
    return f"{where}: no such config file{why} or write a starter one with `envparity init {path}`"


# Byte order marks and what they mean, UTF-32's first (UTF-32 LE's begins with UTF-16 LE's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)


class NotText(ValueError):
    """Bytes that are not text in the encoding they announce (or UTF-8): the message says
    which encoding, where and how to fix it."""


def encoding_of(raw: bytes) -> tuple[int, str, str]:
    """The byte order mark's length, the codec and its name for people. Without a mark, as
    `json.loads` reads bytes (RFC 4627): text that begins with ASCII characters shows UTF-16
    or UTF-32 by where its NUL bytes fall; anything else is UTF-8."""
    for bom, codec, name in _BOMS:
        if raw.startswith(bom):
            return len(bom), codec, name
    if len(raw) >= 4 and not raw[0]:
        return (0, "utf-16-be", "UTF-16 BE") if raw[1] else (0, "utf-32-be", "UTF-32 BE")
    if len(raw) >= 4 and not raw[1]:
        return (0, "utf-16-le", "UTF-16 LE") if raw[2] or raw[3] else (0, "utf-32-le", "UTF-32 LE")
    return 0, "utf-8", "UTF-8"


def decode_text(raw: bytes) -> str:
    """A file's text as an editor or shell saved it: UTF-8, or what its byte order mark says
    (UTF-8 with a BOM; UTF-16 or UTF-32, either byte order: PowerShell's `>` writes UTF-16 LE
    with a BOM). Bytes that are not text in that encoding raise NotText."""
    skip, codec, name = encoding_of(raw)
    body = raw[skip:]
    try:
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].decode(codec).count("\n") + 1
        raise NotText(undecodable(name, codec, exc, line, skip + exc.start)) from None


def undecodable(name: str, codec: str, exc: UnicodeDecodeError, line: int, offset: int) -> str:
    """What is wrong with bytes that are not text in `codec`, where, and what to do."""
    bad = exc.object[exc.start : min(exc.end, exc.start + 4)].hex(" ")
    hint = " (another encoding, such as Latin-1 or Windows-1252?)" if codec == "utf-8" else ""
    return (
        f"not valid {name} text{hint}: {exc.reason} at line {line}, byte {offset} "
        f"({bad}); save it as UTF-8"
    )


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Reads and validates a config file; any problem raises ConfigError naming file:line: key."""
    environ = os.environ if environ is None else environ
    try:
        text = decode_text(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(missing_config(path)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except NotText as exc:
        raise ConfigError(f"{path}: {exc}") from None
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
        _raise_validation(located, data, exc, ConfigModel)
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
            types_ = registry.source_types()
            raise located.error(
                (*loc, "type"),
                f"unknown source type {type_name!r} (known: {', '.join(types_)})"
                f"{did_you_mean(type_name, types_)}",
            )
        try:
            options = source_type.Options.model_validate(raw)
        except ValidationError as exc:
            _raise_validation(located, data, exc, source_type.Options, prefix=loc)
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
