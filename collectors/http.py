"""The `http` source: the JSON a URL answers to a GET (a config or version endpoint).

Error messages name the URL without its query string and user info, and never header values:
those are where tokens travel.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from collectors import cancel
from collectors._util import as_attributes
from collectors.base import (
    Category,
    CollectorError,
    FetchContext,
    Resource,
    SourceOptions,
    SourceType,
)
from collectors.registry import register

if TYPE_CHECKING:
    import httpx


class HttpOptions(SourceOptions):
    url: str = Field(description="An http:// or https:// URL answering JSON to a GET.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Request headers, e.g. Authorization."
    )
    category: Category = "config"
    resource_type: str = Field(default="http.json", min_length=1)
    key: str | None = Field(
        default=None,
        min_length=1,
        description="The resource's key; defaults to the URL without query string or user info.",
    )
    verify_tls: bool = Field(default=True, description="Check the server's TLS certificate.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host")
        return value

    @property
    def display_url(self) -> str:
        return public_url(self.url)


def public_url(url: str) -> str:
    """A URL fit to show and to key by: no user info, query string or fragment."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@register
class HttpSource(SourceType[HttpOptions]):
    type_name: ClassVar[str] = "http"
    Options: ClassVar[type[SourceOptions]] = HttpOptions
    summary: ClassVar[str] = "A JSON document answered to a GET, as one resource."

    def fetch(self, options: HttpOptions, ctx: FetchContext) -> str:
        """The body of a 2xx answer (redirects followed); anything else raises. The body is
        read in chunks: at most limits.max_source_bytes of it, and no further once the
        source's timeout has fired (a server that trickles forever keeps no thread busy)."""
        import httpx  # here, not at module level: every command loads the registry

        url = options.display_url
        host = urlsplit(options.url).hostname
        limit = ctx.limits.max_source_bytes
        try:
            with (
                httpx.Client(
                    timeout=options.timeout,
                    follow_redirects=True,
                    verify=options.verify_tls,
                    headers=options.headers,
                ) as client,
                client.stream("GET", options.url) as response,
            ):
                if not response.is_success:
                    phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
                    raise CollectorError(f"GET {url} answered {response.status_code}{phrase}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    cancel.checkpoint()
                    body += chunk
                    if len(body) > limit:
                        raise CollectorError(
                            f"GET {url} answered more than {limit:,} bytes "
                            "(limits.max_source_bytes)"
                        )
        except httpx.TimeoutException:
            raise CollectorError(f"GET {url} timed out after {options.timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise CollectorError(f"cannot connect to {host}: {_reason(exc)}") from None
        except httpx.TooManyRedirects:
            raise CollectorError(f"GET {url} redirected too many times") from None
        except httpx.HTTPError as exc:
            raise CollectorError(f"GET {url} failed: {type(exc).__name__}") from None
        return bytes(body).decode(response.encoding or "utf-8", errors="replace")

    def normalize(self, raw: str, options: HttpOptions) -> list[Resource]:
        if not raw.strip():
            raise CollectorError(f"GET {options.display_url} answered an empty body, not JSON")
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CollectorError(
                f"GET {options.display_url} did not answer JSON: {exc.msg}"
                f" at line {exc.lineno}, column {exc.colno}"
            ) from None
        return [
            Resource(
                category=options.category,
                resource_type=options.resource_type,
                key=options.key or options.display_url,
                attributes=as_attributes(document),
            )
        ]


def _reason(exc: httpx.ConnectError) -> str:
    # httpx wraps the socket or TLS error; its text ("[Errno 111] Connection refused",
    # "certificate verify failed") says why without echoing the request.
    return str(exc) or type(exc).__name__
