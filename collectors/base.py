"""The collector contract: a source type's options model, its fetch (I/O) and normalize (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from collectors.limits import Limits

Category = Literal["config", "packages", "instances", "network"]
CATEGORIES: tuple[Category, ...] = ("config", "packages", "instances", "network")

# A resource attribute document: JSON-compatible values only.
Attributes = dict[str, Any]


class CollectorError(Exception):
    """A source could not be collected; the message is shown to the user as the source's error.

    Messages must never carry secret values: the scan scrubs them once more, but a collector
    should say *what* failed (file, command, URL, API action), not echo what it read.
    """


class SourceOptions(BaseModel):
    """Options every source type accepts; each type subclasses this with its own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\s].*$",
        description="A name unique within the environment; defaults to the type plus a number.",
    )
    timeout: float = Field(default=60.0, gt=0, description="Seconds before the source fails.")


@dataclass(frozen=True, slots=True)
class Resource:
    """One logical thing a source reports, identified by (resource_type, key)."""

    category: Category
    resource_type: str
    key: str
    attributes: Attributes
    # Paths (tuples of dict keys / list indexes) whose values the source knows are secret,
    # whatever their key looks like (an SSM SecureString value, say). They are hashed with
    # the installation's key before anything leaves the collector.
    secret_paths: tuple[tuple[str | int, ...], ...] = ()


@dataclass(frozen=True)
class FetchContext:
    """What a fetch may know about where it runs. Nothing here touches the database."""

    environment: str
    base_dir: Path
    vars: Mapping[str, str] = field(default_factory=dict)
    # Hashes one secret value (HMAC-SHA256 under the installation key) into its stored form.
    hash_secret: Callable[[str], str] = field(default=lambda value: value)
    # What one document, one source's output and one file may hold (limits: in the config).
    limits: Limits = field(default_factory=Limits)

    def resolve(self, path: str | Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


OptionsT = TypeVar("OptionsT", bound=SourceOptions)


class SourceType(Generic[OptionsT]):
    """Base of every source type. Subclasses set `type_name`, `Options`, and implement both halves.

    `fetch` is the only place that talks to the world; it returns the raw material. `normalize`
    is pure: raw material in, resources out, so it can be tested with tables of examples.
    """

    type_name: ClassVar[str]
    Options: ClassVar[type[SourceOptions]]
    # Attribute paths (dotted, `*` for any key or index) that change on their own and never
    # count as drift: launch times, last-modified stamps.
    volatile_paths: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""

    def iam_actions_for(self, options: OptionsT) -> tuple[str, ...]:
        """The IAM actions these options make the source call (least privilege); by default
        every action the type may call (`iam_actions`, for AWS types)."""
        return tuple(getattr(self, "iam_actions", ()))

    def fetch(self, options: OptionsT, ctx: FetchContext) -> Any:
        raise NotImplementedError

    def normalize(self, raw: Any, options: OptionsT) -> list[Resource]:
        raise NotImplementedError

    def collect(self, options: OptionsT, ctx: FetchContext) -> list[Resource]:
        """fetch then normalize; the scan calls this inside its isolation and timeout."""
        return self.normalize(self.fetch(options, ctx), options)


_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


def valid_type_name(name: str) -> bool:
    """Source type names are dotted lowercase words, plural for many resources."""
    return bool(_TYPE_NAME.match(name))
