"""`aws.lambda.functions`: Lambda functions keyed by name, their settings and their versions.

Two resources per function, so that a version bump and a settings change land in their own
categories and are never counted twice:
- `config` / `aws.lambda.function`: handler, memory, timeout, architectures, ephemeral storage,
  tracing mode, role, environment variables as a mapping `{NAME: value}` (the runner hashes the
  values of secret-looking names such as `DB_PASSWORD`, and URL passwords in any value);
- `packages` / `aws.lambda.runtime`: the runtime and each layer's version by layer name
  (`{"runtime": "python3.12", "layers": {"deps": 7}}`).

Tags are read with one ListTags call per function, so only when `filters` are given; they are
then reported as the `tags` attribute as well.

IAM actions: `lambda:ListFunctions` always; `lambda:ListTags` only when `filters` are given.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

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
from collectors.base import FetchContext, Resource, SourceOptions, SourceType
from collectors.registry import register


class LambdaOptions(AwsOptions):
    pass


def layer_versions(layers: list[dict[str, Any]]) -> dict[str, int | str]:
    """`[{"Arn": "arn:aws:lambda:R:A:layer:NAME:7"}]` -> `{"NAME": 7}`. Pure.

    Two layers of one name (from two accounts or regions) are keyed by their ARN without the
    version instead, so that neither hides the other.
    """
    parsed: list[tuple[str, str, int | str]] = []
    for layer in layers:
        arn = str(layer.get("Arn", ""))
        base, _, version = arn.rpartition(":")
        parts = base.split(":")
        name = parts[6] if len(parts) == 7 and parts[5] == "layer" else base or arn
        parsed.append((name, base or arn, int(version) if version.isdigit() else version))
    names = [name for name, _, _ in parsed]
    return {(name if names.count(name) == 1 else base): version for name, base, version in parsed}


def function_resources(
    function: dict[str, Any], key: str, tags: dict[str, str] | None
) -> list[Resource]:
    """A ListFunctions entry as its config and packages resources. Pure."""
    environment = function.get("Environment") or {}
    config: dict[str, Any] = {
        "description": function.get("Description") or None,
        "package_type": function.get("PackageType", "Zip"),
        "handler": function.get("Handler"),
        "architectures": sorted(function.get("Architectures") or ["x86_64"]),
        "memory": function.get("MemorySize"),
        "timeout": function.get("Timeout"),
        "ephemeral_storage": (function.get("EphemeralStorage") or {}).get("Size"),
        "tracing": (function.get("TracingConfig") or {}).get("Mode"),
        "role": function.get("Role"),
        "kms_key_arn": function.get("KMSKeyArn"),
        "environment": dict(environment.get("Variables") or {}),
        "last_modified": function.get("LastModified"),
    }
    if environment.get("Error"):
        # Lambda could not read the variables (a KMS key it lost access to): say so, rather
        # than reporting every variable as removed.
        config["environment_error"] = environment["Error"].get("ErrorCode")
    if tags is not None:
        config["tags"] = tags
    packages = {
        "runtime": function.get("Runtime"),
        "layers": layer_versions(function.get("Layers") or []),
    }
    return [
        Resource("config", "aws.lambda.function", key, config),
        Resource("packages", "aws.lambda.runtime", key, packages),
    ]


@register
class LambdaFunctions(SourceType[LambdaOptions]):
    """Lambda functions.

    IAM: lambda:ListFunctions; lambda:ListTags only with `filters`.
    """

    type_name: ClassVar[str] = "aws.lambda.functions"
    Options: ClassVar[type[SourceOptions]] = LambdaOptions
    summary: ClassVar[str] = (
        "Lambda functions by name: settings and environment variables (config), "
        "runtime and layer versions (packages)."
    )
    iam_actions: ClassVar[tuple[str, ...]] = (
        "lambda:ListFunctions",
        "lambda:ListTags",  # only with `filters`
    )
    volatile_paths: ClassVar[tuple[str, ...]] = ("last_modified",)

    def iam_actions_for(self, options: LambdaOptions) -> tuple[str, ...]:
        if options.filters:
            return self.iam_actions
        return tuple(a for a in self.iam_actions if a != "lambda:ListTags")

    def fetch(self, options: LambdaOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)

        def one(region: str) -> dict[str, Any]:
            api = client(session, "lambda", region, options)
            functions = list(paginate(api, "list_functions", "Functions"))
            tags: dict[str, dict[str, str]] | None = None
            if options.filters:

                def tags_for(function: dict[str, Any]) -> dict[str, str]:
                    with aws_errors(api):
                        response = api.list_tags(Resource=function["FunctionArn"])
                    return tags_of(response.get("Tags"))

                with ThreadPoolExecutor(max_workers=options.max_concurrency) as pool:
                    found = list(pool.map(tags_for, functions))
                tags = {str(f["FunctionName"]): t for f, t in zip(functions, found, strict=True)}
            return {"functions": functions, "tags": tags}

        return [{"region": region, **data} for region, data in per_region(options, one)]

    def normalize(self, raw: list[dict[str, Any]], options: LambdaOptions) -> list[Resource]:
        wanted = tag_filter(options)
        resources: list[Resource] = []
        for region_data in raw:
            region = region_data["region"]
            tags: dict[str, dict[str, str]] | None = region_data.get("tags")
            for function in region_data["functions"]:
                name = str(function["FunctionName"])
                function_tags = None if tags is None else tags.get(name, {})
                if options.filters and not wanted(function_tags or {}):
                    continue
                resources += function_resources(function, options.key(region, name), function_tags)
        return sorted(resources, key=lambda r: (r.resource_type, r.key))
