"""What every AWS source type shares: options, sessions (profile, assumed role), clients with
standard retries, regions scanned in parallel, pagination, tag filters and readable errors."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, model_validator

from collectors import cancel
from collectors.base import CollectorError, SourceOptions

# The AWS SDK takes a few hundred milliseconds to import: it is loaded when a source first
# talks to AWS, not when a config naming AWS sources is read (`diff`, `gate`, `validate`).
if TYPE_CHECKING:
    import boto3
    from botocore.config import Config as BotoConfig

T = TypeVar("T")

# Error codes that mean "the caller lacks a permission".
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "AuthorizationError",
    "AuthFailure",
    "NotAuthorized",
}


class AwsOptions(SourceOptions):
    """Options every AWS source type accepts."""

    region: str | None = None
    regions: list[str] | None = Field(default=None, min_length=1)
    profile: str | None = None
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    external_id: str | None = None
    endpoint_url: str | None = None
    # `tag:KEY: VALUE` (or a list of values; `*` globs) selects by tag, on every resource type.
    filters: dict[str, str | list[str]] = Field(default_factory=dict)
    max_attempts: int = Field(default=8, ge=1, le=20)
    max_concurrency: int = Field(default=4, ge=1, le=32)

    @model_validator(mode="after")
    def _one_region_setting(self) -> AwsOptions:
        if self.region and self.regions:
            raise ValueError("give either `region` or `regions`, not both")
        if not self.region and not self.regions:
            raise ValueError("give `region` (or `regions`: a list)")
        for name in self.filters:
            if not name.startswith("tag:") or len(name) <= 4:
                raise ValueError(f"filter {name!r}: filters are `tag:KEY: VALUE`")
        return self

    @property
    def region_list(self) -> list[str]:
        return list(self.regions) if self.regions else [self.region or ""]

    @property
    def multi_region(self) -> bool:
        return bool(self.regions) and len(self.regions or []) > 1

    def key(self, region: str, name: str) -> str:
        """A resource key: the logical name, prefixed with its region when several are scanned."""
        if not self.multi_region:
            return name
        return f"{region}{name}" if name.startswith("/") else f"{region}/{name}"


# ----------------------------------------------------------------------------- tags


def tags_of(tags: Sequence[Mapping[str, Any]] | Mapping[str, str] | None) -> dict[str, str]:
    """`[{"Key": k, "Value": v}]` (or `{"key": k, "value": v}`, or a mapping) as a dict."""
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    out: dict[str, str] = {}
    for tag in tags:
        key = tag.get("Key", tag.get("key"))
        if key is not None:
            out[str(key)] = str(tag.get("Value", tag.get("value", "")))
    return out


def tag_filter(options: AwsOptions) -> Callable[[Mapping[str, str]], bool]:
    """A predicate on a resource's tags from the `tag:KEY` filters (client-side)."""
    wanted = {
        name[4:]: ([value] if isinstance(value, str) else list(value))
        for name, value in options.filters.items()
    }

    def matches(tags: Mapping[str, str]) -> bool:
        return all(
            key in tags and any(fnmatch.fnmatchcase(tags[key], p) for p in patterns)
            for key, patterns in wanted.items()
        )

    return matches


def ec2_filters(options: AwsOptions) -> list[dict[str, Any]]:
    """The same filters in EC2's server-side form (globs pass through: EC2 supports `*`)."""
    return [
        {"Name": name, "Values": [value] if isinstance(value, str) else list(value)}
        for name, value in options.filters.items()
    ]


# ----------------------------------------------------------------------------- sessions


def session_for(options: AwsOptions) -> boto3.Session:
    """A session from the profile (or the default chain), with the role assumed if asked."""
    import boto3
    from botocore.credentials import DeferredRefreshableCredentials, RefreshableCredentials

    session = boto3.Session(profile_name=options.profile) if options.profile else boto3.Session()
    if not options.role_arn:
        return session
    sts = session.client(
        "sts",
        region_name=options.region_list[0] or None,
        endpoint_url=options.endpoint_url,
        config=_client_config(options),
    )
    role_arn = options.role_arn

    def refresh() -> dict[str, str]:
        params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "envparity"}
        if options.external_id:
            params["ExternalId"] = options.external_id
        with aws_errors("sts"):
            creds = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    # Credentials are fetched on first use and refreshed before they expire.
    credentials: RefreshableCredentials = DeferredRefreshableCredentials(
        refresh_using=refresh, method="assume-role"
    )
    botocore_session = session._session  # botocore has no public setter for these
    botocore_session._credentials = credentials  # type: ignore[attr-defined]
    return boto3.Session(botocore_session=botocore_session)


def _client_config(options: AwsOptions) -> BotoConfig:
    from botocore.config import Config as BotoConfig

    return BotoConfig(
        retries={"mode": "standard", "total_max_attempts": options.max_attempts},
        max_pool_connections=max(10, options.max_concurrency * 2),
        connect_timeout=min(10.0, options.timeout),
        read_timeout=options.timeout,
        user_agent_extra="envparity",
    )


def client(session: boto3.Session, service: str, region: str, options: AwsOptions) -> Any:
    """A client whose every request first looks at the source's stop flag: a source whose
    timeout fired makes no further AWS call."""
    api = session.client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=options.endpoint_url,
        config=_client_config(options),
    )
    flag = cancel.current()
    if flag is not None:

        def stop_if_told(**_: Any) -> None:
            if flag.is_set():
                raise cancel.Stopped(f"{service}: the source's timeout fired")

        api.meta.events.register("before-send", stop_if_told)
    return api


def per_region(options: AwsOptions, collect: Callable[[str], T]) -> list[tuple[str, T]]:
    """`collect(region)` for every region, in parallel (bounded); the first failure wins."""
    regions = options.region_list
    if len(regions) == 1:
        return [(regions[0], collect(regions[0]))]
    with ThreadPoolExecutor(max_workers=min(options.max_concurrency, len(regions))) as pool:
        results = list(pool.map(cancel.carry(collect), regions))
    return list(zip(regions, results, strict=True))


def chunks(values: Iterable[str], size: int) -> Iterator[list[str]]:
    """The distinct values, sorted, in lists of at most `size`: APIs cap the ids per call
    (200 values per EC2 filter, 20 ARNs per ELB DescribeTags, 50 launch configurations)."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def describe_where(
    api: Any,
    operation: str,
    key: str,
    filter_name: str,
    values: Iterable[str],
    size: int = 200,
    **params: Any,
) -> list[dict[str, Any]]:
    """Every item of an EC2 `operation` whose `filter_name` is one of `values`, asked by
    filter (an id that no longer exists is not an error) in chunks of at most `size` values."""
    return [
        item
        for chunk in chunks(values, size)
        for item in paginate(
            api, operation, key, Filters=[{"Name": filter_name, "Values": chunk}], **params
        )
    ]


def paginate(api: Any, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item under `key` across all pages of `operation`."""
    with aws_errors(api):
        if api.can_paginate(operation):
            for page in api.get_paginator(operation).paginate(**params):
                yield from page.get(key, [])
        else:
            yield from getattr(api, operation)(**params).get(key, [])


# ----------------------------------------------------------------------------- errors


def _prefix(api: Any) -> str:
    if isinstance(api, str):
        return api
    model = api.meta.service_model
    return str(model.signing_name or model.endpoint_prefix)


@contextmanager
def aws_errors(api: Any) -> Iterator[None]:
    """AWS errors as CollectorError, naming the missing IAM action on AccessDenied."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        action = f"{_prefix(api)}:{exc.operation_name}"
        if code in _DENIED:
            raise CollectorError(
                f"AccessDenied: the credentials lack the IAM permission {action} ({code})"
            ) from None
        message = str(error.get("Message", "")).strip()
        raise CollectorError(f"{action} failed: {code}: {message}"[:500]) from None
    except NoCredentialsError:
        raise CollectorError(
            "no AWS credentials found (set `profile`, `role_arn` or the usual AWS_* variables)"
        ) from None
    except NoRegionError:
        raise CollectorError("no AWS region: set `region` or `regions`") from None
    except EndpointConnectionError as exc:
        raise CollectorError(
            f"cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url')}"
        ) from None
    except BotoCoreError as exc:
        raise CollectorError(f"AWS error: {type(exc).__name__}: {exc}"[:500]) from None
