"""`aws.ssm.parameters`: Parameter Store parameters under a path, keyed by their full name.

`/app/staging/db/host` is compared with `/app/production/db/host` once the environment's vars
have replaced its name (`/app/{env}/db/host`).

SecureString values are never stored in plain text. With `secrets: metadata` (the default) the
parameters are read *without* decryption and the `Value` of every SecureString is dropped as
soon as it arrives (moto, LocalStack and some proxies return readable values even then): only
its type, KMS key and version are kept, so environments are compared by presence. With
`secrets: hash` they are read with decryption and each SecureString value is replaced by its
keyed hash inside `fetch` and marked as a secret path, so the runner hashes it in any case: a
change over time, and one secret shared by two environments, both show without the value.

A String or StringList parameter whose last name segment looks like a secret
(`/app/staging/db/password`) is hashed too, as an attribute with that name would be.

IAM actions: `ssm:GetParametersByPath` and `ssm:DescribeParameters` always;
`ssm:ListTagsForResource` only when `filters` are given (one call per parameter);
`kms:Decrypt` only with `secrets: hash`, on customer managed keys (the AWS managed `aws/ssm`
key grants it through SSM).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal

from pydantic import Field

from collectors.aws.base import (
    AwsOptions,
    aws_errors,
    client,
    paginate,
    per_region,
    session_for,
    tag_filter,
    tags_of,
)
from collectors.base import (
    CollectorError,
    FetchContext,
    Resource,
    SourceOptions,
    SourceType,
)
from collectors.registry import register
from collectors.secrets import KeyLexicon

SECURE = "SecureString"
_SECRET_NAMES = KeyLexicon()
_VALUE: tuple[str | int, ...] = ("value",)


class SsmParameterOptions(AwsOptions):
    path: str = Field(
        min_length=1,
        pattern=r"^/",
        description="The hierarchy to read, e.g. /app/staging/ (parameters below it).",
    )
    recursive: bool = Field(default=True, description="Include every level below `path`.")
    secrets: Literal["metadata", "hash"] = Field(
        default="metadata",
        description="SecureStrings: `metadata` keeps type, KMS key and version only; "
        "`hash` decrypts them and keeps a keyed hash of the value.",
    )


def _filter_path(path: str) -> str:
    """DescribeParameters' `Path` filter takes the hierarchy without a trailing slash."""
    return path.rstrip("/") or "/"


def iso(stamp: Any) -> str | None:
    """A timestamp as ISO 8601 text (boto3 gives datetimes, recorded responses strings)."""
    if stamp is None:
        return None
    return stamp.isoformat() if hasattr(stamp, "isoformat") else str(stamp)


def secret_looking(name: str) -> bool:
    """Whether a parameter's last name segment looks like a secret (`.../db/password`)."""
    return _SECRET_NAMES.is_secret(name.rstrip("/").rsplit("/", 1)[-1])


def parameter_attributes(
    parameter: dict[str, Any],
    metadata: dict[str, Any] | None,
    secrets: Literal["metadata", "hash"],
) -> tuple[dict[str, Any], bool]:
    """One parameter's attributes, and whether its value is secret. Pure.

    `parameter` is a GetParametersByPath entry, `metadata` its DescribeParameters entry.
    """
    meta = metadata or {}
    kind = str(parameter.get("Type") or meta.get("Type") or "String")
    attributes: dict[str, Any] = {
        "type": kind,
        "data_type": parameter.get("DataType") or meta.get("DataType") or "text",
        "tier": meta.get("Tier"),
        "description": meta.get("Description"),
    }
    if meta.get("AllowedPattern"):
        attributes["allowed_pattern"] = meta["AllowedPattern"]
    secret = False
    if kind == SECURE:
        attributes["key_id"] = meta.get("KeyId")
        # In metadata mode a SecureString's value is never kept, whatever came back.
        if secrets == "hash" and "Value" in parameter:
            attributes["value"] = parameter["Value"]
            secret = True
    elif "Value" in parameter:
        value = str(parameter["Value"])
        # A StringList is a set for every use we know of (origins, subnets, feature names):
        # sorted, so that rewriting it in another order is not drift.
        attributes["value"] = sorted(value.split(",")) if kind == "StringList" else value
        secret = secret_looking(str(parameter["Name"]))
    attributes["version"] = parameter.get("Version", meta.get("Version"))
    attributes["last_modified"] = iso(
        parameter.get("LastModifiedDate") or meta.get("LastModifiedDate")
    )
    return attributes, secret


@register
class SsmParameters(SourceType[SsmParameterOptions]):
    """SSM parameters under a path.

    IAM: ssm:GetParametersByPath, ssm:DescribeParameters; ssm:ListTagsForResource only with
    `filters`; kms:Decrypt only with `secrets: hash` (customer managed keys).
    """

    type_name: ClassVar[str] = "aws.ssm.parameters"
    Options: ClassVar[type[SourceOptions]] = SsmParameterOptions
    summary: ClassVar[str] = (
        "SSM Parameter Store: parameters under a path, keyed by full name; "
        "SecureStrings by metadata or keyed hash only."
    )
    iam_actions: ClassVar[tuple[str, ...]] = (
        "ssm:GetParametersByPath",
        "ssm:DescribeParameters",
        "ssm:ListTagsForResource",  # only with `filters`
        "kms:Decrypt",  # only with `secrets: hash`
    )
    volatile_paths: ClassVar[tuple[str, ...]] = ("version", "last_modified")

    def iam_actions_for(self, options: SsmParameterOptions) -> tuple[str, ...]:
        wanted = {"ssm:GetParametersByPath", "ssm:DescribeParameters"}
        if options.filters:
            wanted.add("ssm:ListTagsForResource")
        if options.secrets == "hash":
            wanted.add("kms:Decrypt")
        return tuple(a for a in self.iam_actions if a in wanted)

    def fetch(self, options: SsmParameterOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)
        decrypt = options.secrets == "hash"

        def one(region: str) -> dict[str, Any]:
            ssm = client(session, "ssm", region, options)
            parameters = []
            try:
                for parameter in paginate(
                    ssm,
                    "get_parameters_by_path",
                    "Parameters",
                    Path=options.path,
                    Recursive=options.recursive,
                    WithDecryption=decrypt,
                ):
                    if parameter.get("Type") == SECURE:
                        value = parameter.pop("Value", None)
                        # The plain value lives no longer than this line.
                        if decrypt and isinstance(value, str):
                            parameter["Value"] = ctx.hash_secret(value)
                    parameters.append(parameter)
            except CollectorError as exc:
                if decrypt and "AccessDenied" in str(exc):
                    raise CollectorError(
                        f"{exc}; in hash mode the credentials also need kms:Decrypt "
                        "on the parameters' KMS keys"
                    ) from None
                raise
            option = "Recursive" if options.recursive else "OneLevel"
            metadata = {
                m["Name"]: m
                for m in paginate(
                    ssm,
                    "describe_parameters",
                    "Parameters",
                    ParameterFilters=[
                        {"Key": "Path", "Option": option, "Values": [_filter_path(options.path)]}
                    ],
                )
            }
            tags: dict[str, dict[str, str]] | None = None
            if options.filters:

                def tags_for(name: str) -> dict[str, str]:
                    with aws_errors(ssm):
                        response = ssm.list_tags_for_resource(
                            ResourceType="Parameter", ResourceId=name
                        )
                    return tags_of(response.get("TagList"))

                names = [str(p["Name"]) for p in parameters]
                with ThreadPoolExecutor(max_workers=options.max_concurrency) as pool:
                    tags = dict(zip(names, pool.map(tags_for, names), strict=True))
            return {"parameters": parameters, "metadata": metadata, "tags": tags}

        return [{"region": region, **data} for region, data in per_region(options, one)]

    def normalize(self, raw: list[dict[str, Any]], options: SsmParameterOptions) -> list[Resource]:
        wanted = tag_filter(options)
        resources = []
        for region_data in raw:
            region = region_data["region"]
            metadata: dict[str, Any] = region_data.get("metadata") or {}
            tags: dict[str, dict[str, str]] | None = region_data.get("tags")
            for parameter in region_data["parameters"]:
                name = str(parameter["Name"])
                if options.filters and not wanted((tags or {}).get(name, {})):
                    continue
                attributes, secret = parameter_attributes(
                    parameter, metadata.get(name), options.secrets
                )
                if tags is not None:
                    attributes["tags"] = tags.get(name, {})
                resources.append(
                    Resource(
                        category="config",
                        resource_type="aws.ssm.parameter",
                        key=options.key(region, name),
                        attributes=attributes,
                        secret_paths=(_VALUE,) if secret else (),
                    )
                )
        return sorted(resources, key=lambda r: r.key)
