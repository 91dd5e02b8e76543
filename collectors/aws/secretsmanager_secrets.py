"""`aws.secretsmanager.secrets`: Secrets Manager secrets, keyed by name, values never in clear.

With `secrets: metadata` (the default) only ListSecrets is called: a secret's presence,
description, KMS key, rotation settings and tags are compared, never its value. With
`secrets: hash` each secret's current value is read and replaced by its keyed hash inside
`fetch` (and marked as a secret path, so the runner hashes it in any case): a change over time,
and one secret shared by two environments, show without the value.

A JSON secret string is hashed as a whole, not field by field: hashing fields separately would
report every shared non-secret field (`"port": 5432`, `"username": "app"`) as a reused secret
across environments, and would give away the secret's structure. It is hashed in a canonical
form (keys sorted, no spaces), so that a secret rewritten in another key order or spacing is
not reported as changed, and equal credentials written by different tools are seen as reused.
A binary secret is hashed as its base64 text.

IAM actions: `secretsmanager:ListSecrets` always; `secretsmanager:GetSecretValue` only with
`secrets: hash`, plus `kms:Decrypt` for secrets encrypted with a customer managed key.
"""

from __future__ import annotations

import base64
import json
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
from collectors.base import CollectorError, FetchContext, Resource, SourceOptions, SourceType
from collectors.registry import register

DEFAULT_KMS_KEY = "alias/aws/secretsmanager"
_VALUE: tuple[str | int, ...] = ("value",)


class SecretOptions(AwsOptions):
    secrets: Literal["metadata", "hash"] = Field(
        default="metadata",
        description="`metadata` never reads values; `hash` reads each value and keeps its "
        "keyed hash.",
    )


def _iso(stamp: Any) -> str | None:
    if stamp is None:
        return None
    return stamp.isoformat() if hasattr(stamp, "isoformat") else str(stamp)


def _function_name(arn: str | None) -> str | None:
    """`arn:aws:lambda:REGION:ACCOUNT:function:NAME` -> NAME."""
    if not arn:
        return None
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 and parts[5] == "function" else arn


def canonical_secret(text: str) -> str:
    """A JSON object or array in canonical form (sorted keys, no spaces); other text as is."""
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return text
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return text
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def secret_attributes(secret: dict[str, Any]) -> dict[str, Any]:
    """A ListSecrets entry (plus `Value` in hash mode, already hashed) as attributes. Pure."""
    rules = secret.get("RotationRules") or {}
    attributes: dict[str, Any] = {
        "description": secret.get("Description"),
        "kms_key_id": secret.get("KmsKeyId") or DEFAULT_KMS_KEY,
        "rotation_enabled": bool(secret.get("RotationEnabled", False)),
        "rotation_days": rules.get("AutomaticallyAfterDays"),
        "rotation_schedule": rules.get("ScheduleExpression"),
        "rotation_lambda": _function_name(secret.get("RotationLambdaARN")),
        "tags": tags_of(secret.get("Tags")),
        "last_changed": _iso(secret.get("LastChangedDate")),
        "last_rotated": _iso(secret.get("LastRotatedDate")),
    }
    if "Value" in secret:
        # None: the secret exists but holds no current value (created without one).
        attributes["value"] = secret["Value"]
    return attributes


@register
class SecretsManagerSecrets(SourceType[SecretOptions]):
    """Secrets Manager secrets.

    IAM: secretsmanager:ListSecrets; secretsmanager:GetSecretValue only with `secrets: hash`
    (and kms:Decrypt for customer managed keys).
    """

    type_name: ClassVar[str] = "aws.secretsmanager.secrets"
    Options: ClassVar[type[SourceOptions]] = SecretOptions
    summary: ClassVar[str] = (
        "Secrets Manager: secrets keyed by name, rotation and KMS key; values by keyed hash only."
    )
    iam_actions: ClassVar[tuple[str, ...]] = (
        "secretsmanager:ListSecrets",
        "secretsmanager:GetSecretValue",  # only with `secrets: hash`
        "kms:Decrypt",  # only with `secrets: hash`, customer managed keys
    )
    volatile_paths: ClassVar[tuple[str, ...]] = ("last_changed", "last_rotated")

    def iam_actions_for(self, options: SecretOptions) -> tuple[str, ...]:
        if options.secrets == "hash":
            return self.iam_actions
        return ("secretsmanager:ListSecrets",)

    def fetch(self, options: SecretOptions, ctx: FetchContext) -> list[dict[str, Any]]:
        session = session_for(options)
        wanted = tag_filter(options)

        def one(region: str) -> list[dict[str, Any]]:
            sm = client(session, "secretsmanager", region, options)
            secrets = list(paginate(sm, "list_secrets", "SecretList"))
            if options.secrets != "hash":
                return secrets

            def value_of(secret: dict[str, Any]) -> dict[str, Any]:
                from botocore.exceptions import ClientError

                if not wanted(tags_of(secret.get("Tags"))):
                    return secret  # filtered out later: its value is not read at all
                try:
                    with aws_errors(sm):
                        try:
                            response = sm.get_secret_value(SecretId=secret["ARN"])
                        except ClientError as exc:
                            if exc.response.get("Error", {}).get("Code") != (
                                "ResourceNotFoundException"
                            ):
                                raise
                            return {**secret, "Value": None}
                except CollectorError as exc:
                    if "AccessDenied" in str(exc):
                        raise CollectorError(
                            f"{exc}; in hash mode the credentials also need kms:Decrypt "
                            "on the secrets' customer managed KMS keys"
                        ) from None
                    raise
                plain = response.get("SecretString")
                if plain is None and response.get("SecretBinary") is not None:
                    plain = base64.b64encode(response["SecretBinary"]).decode("ascii")
                # The plain value lives no longer than this line.
                if plain is None:
                    return {**secret, "Value": None}
                return {**secret, "Value": ctx.hash_secret(canonical_secret(plain))}

            with ThreadPoolExecutor(max_workers=options.max_concurrency) as pool:
                return list(pool.map(value_of, secrets))

        return [{"region": region, "secrets": data} for region, data in per_region(options, one)]

    def normalize(self, raw: list[dict[str, Any]], options: SecretOptions) -> list[Resource]:
        wanted = tag_filter(options)
        resources = []
        for region_data in raw:
            region = region_data["region"]
            for secret in region_data["secrets"]:
                if not wanted(tags_of(secret.get("Tags"))):
                    continue
                attributes = secret_attributes(secret)
                if options.secrets != "hash":
                    attributes.pop("value", None)  # metadata mode keeps no value, ever
                resources.append(
                    Resource(
                        category="config",
                        resource_type="aws.secretsmanager.secret",
                        key=options.key(region, str(secret["Name"])),
                        attributes=attributes,
                        secret_paths=(_VALUE,) if "value" in attributes else (),
                    )
                )
        return sorted(resources, key=lambda r: r.key)
