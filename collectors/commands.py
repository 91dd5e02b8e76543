"""The `command` source: a command's output parsed as package lists, JSON, key=value or lines.

A list `command` is an argv run without a shell; a string runs through `/bin/sh -c`. The
command runs in the config file's folder unless `cwd` says otherwise, with stdin closed, in
a session of its own so that a timeout kills everything it started.

Package parsers key every package by name. A name can come more than once (a package in two
site-packages, a multiarch library, several kernels): the resource then holds the highest
version by a numeric-aware sort (`npm_ls`: the version nearest the root), the other distinct
versions as a sorted "other_versions" list, and, when the copies differ in architecture,
"arch" as the sorted list of them all (dpkg's `libc6:amd64` plus `libc6:i386` of one version
gives {"version": ..., "arch": ["amd64", "i386"]}). Lines of `dpkg-query -W` with an empty
version (packages known but not installed) are skipped; so are `npm ls` entries without a
version (missing dependencies) and the root project itself.

Parse errors give a line number and what was expected, never the text of the line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from collectors import cancel
from collectors._util import as_attributes
from collectors.base import (
    Attributes,
    Category,
    CollectorError,
    FetchContext,
    Resource,
    SourceOptions,
    SourceType,
)
from collectors.registry import register

Parser = Literal["pip_freeze", "pip_json", "dpkg", "npm_ls", "rpm", "json", "key_value", "lines"]

PACKAGE_RESOURCE_TYPES: dict[str, str] = {
    "pip_freeze": "package.pip",
    "pip_json": "package.pip",
    "dpkg": "package.deb",
    "npm_ls": "package.npm",
    "rpm": "package.rpm",
}

_STDERR_LINES = 20
_STDERR_CHARS = 2000


class CommandOptions(SourceOptions):
    command: list[str] | str = Field(
        description="An argv list (run without a shell) or a string (run by `/bin/sh -c`)."
    )
    parser: Parser = Field(description="How to read the command's standard output.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Variables added to the command's environment."
    )
    cwd: str | None = Field(
        default=None, description="Working folder, relative to the config file's folder."
    )
    ok_status: list[int] = Field(
        default_factory=lambda: [0],
        min_length=1,
        description="Exit statuses that count as success (`npm ls` exits 1 on peer problems).",
    )
    category: Category | None = Field(
        default=None, description="Defaults to `packages` for package parsers, else `config`."
    )
    resource_type: str | None = Field(default=None, min_length=1)
    key: str | None = Field(
        default=None,
        min_length=1,
        description="Key of the single resource of `json` and `key_value`.",
    )

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, str) and not value.strip():
            raise ValueError("the command is empty")
        if isinstance(value, list) and (not value or not value[0]):
            raise ValueError("the command needs at least a program")
        return value

    @property
    def display(self) -> str:
        """The command as a person would type it."""
        return self.command if isinstance(self.command, str) else shlex.join(self.command)

    @property
    def effective_category(self) -> Category:
        if self.category is not None:
            return self.category
        return "packages" if self.parser in PACKAGE_RESOURCE_TYPES else "config"

    @property
    def effective_resource_type(self) -> str:
        if self.resource_type is not None:
            return self.resource_type
        return PACKAGE_RESOURCE_TYPES.get(self.parser, f"command.{self.parser}")

    @property
    def effective_key(self) -> str:
        if self.key is not None:
            return self.key
        if self.name is not None:
            return self.name
        return self.command if isinstance(self.command, str) else " ".join(self.command)


@register
class CommandSource(SourceType[CommandOptions]):
    type_name: ClassVar[str] = "command"
    Options: ClassVar[type[SourceOptions]] = CommandOptions
    summary: ClassVar[str] = (
        "A command's output: pip, dpkg, npm or rpm package lists, JSON, key=value or lines."
    )

    def fetch(self, options: CommandOptions, ctx: FetchContext) -> str:
        """The command's standard output; a failure to run or a bad exit status raises."""
        cwd = ctx.resolve(options.cwd) if options.cwd is not None else ctx.base_dir
        if not cwd.is_dir():
            raise CollectorError(f"working folder not found: {options.cwd or cwd}")
        shell = isinstance(options.command, str)
        program = "/bin/sh" if shell else options.command[0]
        try:
            proc = subprocess.Popen(
                options.command,
                shell=shell,
                cwd=cwd,
                env={**_inherited_environment(), **options.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
            )
        except FileNotFoundError:
            raise CollectorError(f"command not found: {program}") from None
        except PermissionError:
            raise CollectorError(f"command is not executable: {program}") from None
        except OSError as exc:
            raise CollectorError(f"cannot run {program}: {exc.strerror}") from None
        with proc, _running(proc):
            stdout, stderr = _communicate(proc, options, ctx.limits.max_source_bytes)
        status = proc.returncode
        if status not in options.ok_status:
            raise CollectorError(_failure(options.display, status, stderr))
        return stdout

    def normalize(self, raw: str, options: CommandOptions) -> list[Resource]:
        try:
            documents = parse_output(raw, options.parser, options.effective_key)
        except ParseError as exc:
            raise CollectorError(
                f"cannot parse the output of `{options.display}` as {options.parser}: {exc}"
            ) from None
        return [
            Resource(
                category=options.effective_category,
                resource_type=options.effective_resource_type,
                key=key,
                attributes=attributes,
            )
            for key, attributes in sorted(documents.items())
        ]


_RUNNING: set[subprocess.Popen[str]] = set()
_RUNNING_LOCK = threading.Lock()


@contextlib.contextmanager
def _running(proc: subprocess.Popen[str]) -> Iterator[None]:
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)


def terminate_all() -> int:
    """Kills the process group of every command still running (the scan was told to stop:
    SIGTERM or Ctrl-C); returns how many there were."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        _kill_session(proc)
    return len(running)


class _Capped:
    """Reads a pipe in a thread: everything up to `limit` characters (then it says so), or
    only the last `tail` characters (stderr, of which only the end is ever shown)."""

    def __init__(self, pipe: Any, limit: int, tail: int = 0) -> None:
        self.pipe, self.limit, self.tail = pipe, limit, tail
        self.parts: list[str] = []
        self.size = 0
        self.over = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="envparity-pipe")
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self.pipe.read(65536):
                self.size += len(chunk)
                self.parts.append(chunk)
                if self.tail:
                    text = "".join(self.parts)[-self.tail :]
                    self.parts = [text]
                elif self.size > self.limit:
                    self.over.set()
                    return

    def text(self) -> str:
        return "".join(self.parts)


def _communicate(
    proc: subprocess.Popen[str], options: CommandOptions, limit: int
) -> tuple[str, str]:
    """The command's output, at most `limit` characters of stdout: past it, or past the
    timeout, the command's whole process group is killed and the source fails."""
    out = _Capped(proc.stdout, limit)
    err = _Capped(proc.stderr, limit, tail=_STDERR_CHARS * 4)
    too_much = CollectorError(
        f"command `{options.display}` printed more than {limit:,} characters "
        "(limits.max_source_bytes)"
    )
    deadline = time.monotonic() + options.timeout
    while proc.poll() is None:
        if cancel.stopped():  # the scan gave up on this source: nobody waits for the output
            _kill_session(proc)
            proc.wait()
            cancel.checkpoint()
        if out.over.is_set():
            _kill_session(proc)
            proc.wait()
            raise too_much
        if time.monotonic() >= deadline:
            _kill_session(proc)
            proc.wait()
            raise CollectorError(
                f"command `{options.display}` timed out after {options.timeout:g}s"
            )
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.05)
    # The command is done; its pipes close once every process holding them is (a child left
    # in the background may hold them open: it is not waited for past the deadline).
    _kill_session(proc)
    for reader in (out, err):
        reader.thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
    if out.over.is_set():
        raise too_much
    return out.text(), err.text()


def _kill_session(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, signal.SIGKILL)


def _failure(display: str, status: int, stderr: str) -> str:
    if status < 0:
        try:
            what = f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            what = f"was killed by signal {-status}"
    else:
        what = f"exited with status {status}"
        if status == 127:
            what += " (command not found)"
    tail = "\n".join(stderr.strip().splitlines()[-_STDERR_LINES:])[-_STDERR_CHARS:]
    return f"command `{display}` {what}" + (f": {tail}" if tail else " and wrote no error")


class ParseError(ValueError):
    """Output that does not fit its parser; says where (line numbers), never quotes lines."""


def parse_output(text: str, parser: str, key: str) -> dict[str, Attributes]:
    """Output text to {resource key: attributes}; `key` names the single-resource parsers' one."""
    if parser == "json":
        return {key: parse_json(text)}
    if parser == "key_value":
        return {key: parse_key_value(text)}
    if parser == "lines":
        return {line: {} for line in parse_lines(text)}
    return PACKAGE_PARSERS[parser](text)


# --- package lists ---------------------------------------------------------------------

_PEP503 = re.compile(r"[-_.]+")
_EDITABLE_COMMENT = re.compile(
    r"^#.*\(\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+?)\s*\)$"
)
_RPM_ARCH = re.compile(
    r"^(noarch|x86_64|i[3-6]86|aarch64|arm\w*|ppc(64)?(le|p7)?|s390x?|riscv64|ia64|alpha\w*"
    r"|sparc\w*|mips\w*|loongarch64|src|nosrc)$"
)


def pep503(name: str) -> str:
    """A Python package's canonical name: lowercase, runs of `-_.` as one `-`."""
    return _PEP503.sub("-", name).lower()


def version_sort_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Numeric-aware order: 1.10 after 1.9; numbers rank above letters at the same place."""
    return tuple(
        (1, int(part), "") if part.isdigit() else (0, 0, part)
        for part in re.split(r"(\d+)", version)
        if part
    )


def _label(attributes: Attributes) -> str:
    """What tells two copies of a package apart: version(-release), else its location."""
    version = attributes.get("version")
    if version is not None:
        release = attributes.get("release")
        return f"{version}-{release}" if release else str(version)
    return str(attributes.get("url") or attributes.get("editable") or "")


def merge_packages(entries: Iterable[tuple[str, Attributes]]) -> dict[str, Attributes]:
    """One attribute document per key; see the module docstring for how copies merge."""
    return merge_ranked((key, attributes, 0) for key, attributes in entries)


def merge_ranked(entries: Iterable[tuple[str, Attributes, int]]) -> dict[str, Attributes]:
    """Like merge_packages, for (key, attributes, rank): the highest rank wins, then version."""
    groups: dict[str, list[tuple[int, Attributes]]] = {}
    for key, attributes, rank in entries:
        groups.setdefault(key, []).append((rank, attributes))
    merged: dict[str, Attributes] = {}
    for key, copies in groups.items():
        if len(copies) == 1:
            merged[key] = copies[0][1]
            continue
        _, winner = max(copies, key=lambda c: (c[0], version_sort_key(_label(c[1]))))
        result = {k: v for k, v in winner.items() if k != "arch"}
        arches = sorted({str(c["arch"]) for _, c in copies if c.get("arch")})
        if len(arches) == 1:
            result["arch"] = arches[0]
        elif arches:
            result["arch"] = arches
        others = {_label(c) for _, c in copies} - {_label(winner)}
        if others:
            result["other_versions"] = sorted(others, key=version_sort_key)
        merged[key] = result
    return merged


def _lines(text: str, strip: bool = True) -> Iterator[tuple[int, str]]:
    """(line number, line) of every non-blank line, stripped unless `strip` is false."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip() if strip else line


def parse_pip_freeze(text: str) -> dict[str, Attributes]:
    """`pip freeze`: `name==version`, `name @ url` and `-e location[#egg=name]` lines."""
    entries: list[tuple[str, Attributes]] = []
    pending: tuple[str, str] | None = None  # from "# Editable install ... (name==version)"
    for number, line in _lines(text):
        if line.startswith("#"):
            match = _EDITABLE_COMMENT.match(line)
            pending = (match["name"], match["version"]) if match else None
            continue
        if line.startswith(("-e ", "--editable ", "--editable=")):
            location = re.split(r"[ =]", line, maxsplit=1)[1].strip()
            egg = re.search(r"[#&]egg=([^&\s]+)", location)
            if egg:
                entries.append((pep503(egg[1]), {"editable": location}))
            elif pending:
                entries.append((pep503(pending[0]), {"version": pending[1], "editable": location}))
            pending = None
            continue
        pending = None
        if line.startswith("-"):  # other pip options (-i, -r, --hash ...) name no package
            continue
        if " @ " in line:
            name, url = line.split(" @ ", 1)
            entries.append((pep503(name.strip()), {"url": url.strip()}))
            continue
        name, sep, version = line.partition("===")
        if not sep:
            name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise ParseError(f"line {number} is not `name==version`, `name @ url` or `-e ...`")
        entries.append((pep503(name.strip()), {"version": version.strip()}))
    return merge_packages(entries)


def parse_pip_json(text: str) -> dict[str, Attributes]:
    """`pip list --format=json`: a list of {"name", "version", ...}; other fields are kept."""
    document = _load_json(text)
    if not isinstance(document, list):
        raise ParseError("expected a JSON list of packages")
    entries: list[tuple[str, Attributes]] = []
    for index, item in enumerate(document):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ParseError(f"item {index} is not an object with a name")
        entries.append((pep503(item["name"]), {k: v for k, v in item.items() if k != "name"}))
    return merge_packages(entries)


def parse_dpkg(text: str) -> dict[str, Attributes]:
    """`dpkg-query -W` (`name[:arch]<TAB>version`), or a third column with the architecture."""
    entries: list[tuple[str, Attributes]] = []
    # Unstripped: `name<TAB>` with nothing after the tab is a package that is not installed.
    for number, line in _lines(text, strip=False):
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        if len(fields) not in (2, 3) or not fields[0]:
            raise ParseError(f"line {number} is not `name<TAB>version[<TAB>arch]`")
        name, _, arch = fields[0].partition(":")
        if len(fields) == 3 and fields[2]:
            arch = fields[2]
        version = fields[1]
        if not version:  # known to dpkg but not installed (removed, config-files)
            continue
        attributes: Attributes = {"version": version}
        if arch:
            attributes["arch"] = arch
        entries.append((name, attributes))
    return merge_packages(entries)


def parse_rpm(text: str) -> dict[str, Attributes]:
    """`rpm -qa` NVRA names, or `name version[-release] [arch]` lines from `--qf`."""
    entries: list[tuple[str, Attributes]] = []
    for number, line in _lines(text):
        fields = line.split()
        if len(fields) == 1:
            nvr, arch = fields[0], ""
            head, dot, tail = nvr.rpartition(".")
            if dot and _RPM_ARCH.match(tail):
                nvr, arch = head, tail
            parts = nvr.rsplit("-", 2)
            if len(parts) != 3 or not all(parts):
                raise ParseError(f"line {number} is not `name-version-release[.arch]`")
            name, version, release = parts
        elif len(fields) in (2, 3):
            name = fields[0]
            version, _, release = (
                fields[1].rpartition("-") if "-" in fields[1] else (fields[1], "", "")
            )
            arch = fields[2] if len(fields) == 3 else ""
        else:
            raise ParseError(f"line {number} is not `name version[-release] [arch]`")
        attributes: Attributes = {"version": version}
        for field, value in (("release", release), ("arch", arch)):
            if value and value != "(none)":
                attributes[field] = value
        entries.append((name, attributes))
    return merge_packages(entries)


def parse_npm_ls(text: str) -> dict[str, Attributes]:
    """`npm ls --json --all`: every package of the tree, at the version nearest the root."""
    document = _load_json(text)
    if not isinstance(document, dict):
        raise ParseError("expected a JSON object with `dependencies`")
    entries: list[tuple[str, Attributes, int]] = []
    level: list[dict[str, Any]] = [document]
    depth = 0
    while level:
        depth += 1
        following: list[dict[str, Any]] = []
        for node in level:
            dependencies = node.get("dependencies", {})
            if not isinstance(dependencies, dict):
                raise ParseError(f"`dependencies` at depth {depth} is not an object")
            for name, child in dependencies.items():
                if not isinstance(child, dict):
                    raise ParseError(f"the entry of a package at depth {depth} is not an object")
                version = child.get("version")
                if isinstance(version, str) and version:
                    # Nearer the root ranks higher; among equally near copies, the highest version.
                    entries.append((name, {"version": version}, -depth))
                following.append(child)
        level = following
    return merge_ranked(entries)


PACKAGE_PARSERS: dict[str, Callable[[str], dict[str, Attributes]]] = {
    "pip_freeze": parse_pip_freeze,
    "pip_json": parse_pip_json,
    "dpkg": parse_dpkg,
    "npm_ls": parse_npm_ls,
    "rpm": parse_rpm,
}


# --- single documents and line sets -------------------------------------------------------


def _load_json(text: str) -> Any:
    if not text.strip():
        raise ParseError("the output is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def parse_json(text: str) -> Attributes:
    """Any JSON document: an object is the attributes, anything else sits under "value"."""
    return as_attributes(_load_json(text))


def parse_key_value(text: str) -> Attributes:
    """`key=value` or `key: value` lines (the first separator wins); `#` lines are comments."""
    attributes: Attributes = {}
    for number, line in _lines(text):
        if line.startswith("#"):
            continue
        separator = re.search(r"[=:]", line)
        if separator is None:
            raise ParseError(f"line {number} has no `=` or `:`")
        name = _unquote(line[: separator.start()].strip())
        if not name:
            raise ParseError(f"line {number} has no key before its `{separator[0]}`")
        attributes[name] = _unquote(line[separator.end() :].strip())
    return attributes


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_lines(text: str) -> list[str]:
    """The distinct non-blank lines, stripped and sorted: a set, so order never counts."""
    return sorted({line for _, line in _lines(text)})


def _inherited_environment() -> dict[str, str]:
    """The process environment less envparity's own settings (its secret key, its database)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ENVPARITY_")}
