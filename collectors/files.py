"""The `file` source: configuration files (YAML, JSON, TOML, INI, .env, .properties) as resources.

One resource per file, keyed by its path relative to the config's folder, with the parsed
document as attributes. A `path` may be a glob (`deploy/*/app.yaml`, `conf/**/*.ini`); like a
shell, `*` does not match names that start with a dot unless the pattern's part does
(`deploy/.env*`). A YAML file holding several documents (`---`) becomes
{"documents": [...]}. INI files keep their keys' case and `%` as written (no interpolation);
.env files are read without `${VAR}` expansion, so that what is compared is what is written.

Parse errors name the file, the line and the column, never the text found there: a
config file may hold secrets.
"""

from __future__ import annotations

import configparser
import glob
import io
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, ClassVar, Literal

import dotenv
import dotenv.parser
import javaproperties
import yaml
from pydantic import Field

from collectors import cancel
from collectors._util import as_attributes
from collectors.base import (
    Attributes,
    CollectorError,
    FetchContext,
    Resource,
    SourceOptions,
    SourceType,
)
from collectors.limits import Limits
from collectors.registry import register

Format = Literal["yaml", "json", "toml", "ini", "env", "properties"]
FORMATS: tuple[Format, ...] = ("yaml", "json", "toml", "ini", "env", "properties")

_BY_SUFFIX: dict[str, Format] = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".toml": "toml",
    ".ini": "ini",
    ".cfg": "ini",
    ".conf": "ini",
    ".env": "env",
    ".properties": "properties",
}
_GLOB_CHARS = frozenset("*?[")


class FileOptions(SourceOptions):
    path: str = Field(
        min_length=1,
        description="A file, or a glob (`**` recursive), relative to the config file's folder.",
    )
    format: Literal["auto", "yaml", "json", "toml", "ini", "env", "properties"] = Field(
        default="auto",
        description="How to parse the file; `auto` goes by its extension.",
    )
    resource_type: str = Field(default="file", min_length=1)


@dataclass(frozen=True, slots=True)
class FileText:
    """One file as read: its key, its format and its text."""

    key: str
    format: Format
    text: str
    max_yaml_nodes: int = Limits.max_yaml_nodes


def detect_format(name: str) -> Format | None:
    """The format a file name implies, or None when its extension says nothing."""
    lowered = PurePath(name).name.lower()
    if lowered.startswith(".env"):  # .env, .env.production, .env.local
        return "env"
    return _BY_SUFFIX.get(PurePath(lowered).suffix)


def is_glob(path: str) -> bool:
    return any(char in _GLOB_CHARS for char in path)


@register
class FileSource(SourceType[FileOptions]):
    type_name: ClassVar[str] = "file"
    Options: ClassVar[type[SourceOptions]] = FileOptions
    summary: ClassVar[str] = (
        "A config file or a glob of them (YAML, JSON, TOML, INI, .env, .properties)."
    )

    def fetch(self, options: FileOptions, ctx: FetchContext) -> list[FileText]:
        matches = _matches(options.path, ctx)
        files: list[FileText] = []
        for key, path in matches:
            cancel.checkpoint()
            fmt = _format_of(key, options)
            text = _read(key, path, ctx.limits.max_source_bytes)
            files.append(FileText(key, fmt, text, ctx.limits.max_yaml_nodes))
        return files

    def normalize(self, raw: list[FileText], options: FileOptions) -> list[Resource]:
        return [
            Resource(
                category="config",
                resource_type=options.resource_type,
                key=item.key,
                attributes=parse(item.text, item.format, item.key, item.max_yaml_nodes),
            )
            for item in raw
        ]


def _matches(pattern: str, ctx: FetchContext) -> list[tuple[str, Path]]:
    """(key, path) of every file `pattern` names, sorted by key."""
    if not is_glob(pattern):
        path = ctx.resolve(pattern)
        key = Path(pattern).as_posix()
        if not path.exists():
            raise CollectorError(f"file not found: {key}")
        if path.is_dir():
            raise CollectorError(f"{key} is a directory, not a file")
        return [(key, path)]

    base = os.path.abspath(ctx.base_dir)
    # Globbing from base_dir as root keeps glob characters in its own name literal.
    expanded = os.path.expanduser(pattern)
    if os.path.isabs(expanded):
        found = glob.glob(expanded, recursive=True)
    else:
        found = glob.glob(expanded, root_dir=base, recursive=True)
    matches: dict[str, Path] = {}
    for match in found:
        full = os.path.normpath(os.path.join(base, match))
        if not os.path.isfile(full):
            continue
        relative = os.path.relpath(full, base)
        inside = not (relative == os.pardir or relative.startswith(os.pardir + os.sep))
        key = Path(relative).as_posix() if inside else Path(full).as_posix()
        matches[key] = Path(full)
    if not matches:
        raise CollectorError(f"no file matches {Path(pattern).as_posix()}")
    return sorted(matches.items())


def _format_of(key: str, options: FileOptions) -> Format:
    if options.format != "auto":
        return options.format
    fmt = detect_format(key)
    if fmt is None:
        raise CollectorError(
            f"cannot tell the format of {key} from its name; set `format:` to one of "
            + ", ".join(FORMATS)
        )
    return fmt


_CHUNK = 1 << 20


def _read(key: str, path: Path, limit: int = Limits.max_source_bytes) -> str:
    """The file's text, at most `limit` bytes (a device like /dev/zero, or a 2 GB log named
    by mistake, fails its source instead of filling the memory). Read in chunks, so a source
    whose timeout fired stops reading (a slow network mount, a pipe)."""
    chunks: list[bytes] = []
    size = 0
    try:
        with path.open("rb") as fh:
            while size <= limit and (chunk := fh.read1(min(_CHUNK, limit + 1 - size))):
                chunks.append(chunk)
                size += len(chunk)
                cancel.checkpoint()
    except OSError as exc:
        raise CollectorError(f"cannot read {key}: {exc.strerror or type(exc).__name__}") from None
    data = b"".join(chunks)
    if len(data) > limit:
        raise CollectorError(
            f"cannot read {key}: larger than {limit:,} bytes (limits.max_source_bytes)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CollectorError(
            f"cannot read {key}: not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None


def parse(
    text: str, fmt: Format, name: str, max_yaml_nodes: int = Limits.max_yaml_nodes
) -> Attributes:
    """A file's text as an attribute document; `name` only serves error messages."""
    try:
        if fmt == "yaml":
            return _parse_yaml(text, max_yaml_nodes)
        return _PARSERS[fmt](text)
    except _ParseError as exc:
        raise CollectorError(f"cannot parse {name} as {fmt}: {exc}") from None
    except RecursionError:
        raise CollectorError(f"cannot parse {name} as {fmt}: nested too deep") from None


class _ParseError(Exception):
    """Why a text is not valid in its format, with a line number and no quoted content."""


def _at(line: int | None, column: int | None = None) -> str:
    if line is None:
        return ""
    return f" at line {line}" + (f", column {column}" if column is not None else "")


# libyaml when it is there: fast, and it refuses nesting past 1,000 levels on its own.
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _expanded_size(doc: Any, limit: int) -> int:
    """Nodes `doc` holds with every alias expanded (a shared node counted each time it is
    used), without expanding anything: a few hundred bytes of nested aliases ("billion
    laughs") would be billions of nodes for whatever walks them. An alias inside the node it
    names (a cycle) is refused too: nothing could walk it to the end."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, finished = stack.pop()
        if not isinstance(node, dict | list):
            continue
        children = list(node.values()) if isinstance(node, dict) else node
        key = id(node)
        if finished:
            size = 1 + sum(sizes.get(id(c), 1) for c in children)
            sizes[key] = size
            on_path.discard(key)
            if size > limit:
                raise _ParseError(
                    f"aliases expand to more than {limit:,} nodes (limits.max_yaml_nodes; "
                    "a YAML bomb?)"
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _ParseError("an alias is used inside the node it names (a cycle)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, dict | list))
    return sizes.get(id(doc), 1)


def _parse_yaml(text: str, max_nodes: int = Limits.max_yaml_nodes) -> Attributes:
    try:
        documents = list(yaml.load_all(text, Loader=_YamlLoader))
        for document in documents:
            _expanded_size(document, max_nodes)
    except yaml.MarkedYAMLError as exc:
        # str(exc) quotes the offending line; keep the parser's own words and the position.
        mark = exc.problem_mark or exc.context_mark
        where = _at(mark.line + 1, mark.column + 1) if mark is not None else ""
        raise _ParseError(f"{exc.problem or exc.context or 'invalid YAML'}{where}") from None
    except yaml.YAMLError as exc:
        raise _ParseError(getattr(exc, "reason", None) or type(exc).__name__) from None
    if not documents or documents == [None]:
        return {}
    if len(documents) > 1:
        return as_attributes({"documents": documents})
    return as_attributes(documents[0])


def _parse_json(text: str) -> Attributes:
    try:
        return as_attributes(json.loads(text))
    except json.JSONDecodeError as exc:
        raise _ParseError(f"{exc.msg}{_at(exc.lineno, exc.colno)}") from None


def _parse_toml(text: str) -> Attributes:
    try:
        return as_attributes(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages carry the position ("(at line 3, column 5)"), never the text.
        raise _ParseError(str(exc)) from None


def _parse_ini(text: str) -> Attributes:
    # An unlikely default section name turns [DEFAULT] into an ordinary section, so that its
    # keys are reported once, under DEFAULT, rather than copied into every other section.
    parser = _IniParser(
        default_section="\0no default section\0",
        interpolation=None,
        allow_no_value=True,
        strict=True,
    )
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError as exc:
        raise _ParseError(f"a key comes before any [section] header{_at(exc.lineno)}") from None
    except configparser.DuplicateSectionError as exc:
        raise _ParseError(f"section [{exc.section}] appears twice{_at(exc.lineno)}") from None
    except configparser.DuplicateOptionError as exc:
        raise _ParseError(
            f"key {exc.option!r} appears twice in section [{exc.section}]{_at(exc.lineno)}"
        ) from None
    except configparser.ParsingError as exc:
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        raise _ParseError(f"invalid line(s) {lines}") from None
    except configparser.Error as exc:
        raise _ParseError(type(exc).__name__) from None
    return {section: dict(parser.items(section)) for section in parser.sections()}


class _IniParser(configparser.RawConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr  # keys keep their case, as written


def _parse_env(text: str) -> Attributes:
    # dotenv_values only logs the statements it cannot parse; find them first to fail loudly.
    bad = [b.original.line for b in dotenv.parser.parse_stream(io.StringIO(text)) if b.error]
    if bad:
        raise _ParseError("invalid statement at line(s) " + ", ".join(map(str, bad)))
    values: dict[str, Any] = dotenv.dotenv_values(stream=io.StringIO(text), interpolate=False)
    return dict(values)


def _parse_properties(text: str) -> Attributes:
    try:
        values: dict[str, Any] = javaproperties.loads(text)
    except javaproperties.InvalidUEscapeError:
        raise _ParseError("invalid \\u escape sequence") from None
    except ValueError as exc:
        raise _ParseError(type(exc).__name__) from None
    return dict(values)


_PARSERS = {
    "yaml": _parse_yaml,
    "json": _parse_json,
    "toml": _parse_toml,
    "ini": _parse_ini,
    "env": _parse_env,
    "properties": _parse_properties,
}
