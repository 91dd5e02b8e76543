"""The secret corpus: realistic secret shapes that must never show in plain text, and plain
values (versions, digests, fingerprints ...) that must stay plain and comparable.

Templates hold placeholders: `@@0@@`, `@@1@@` ... for a shape's secrets, `@@int:0@@` for a
secret written as a number, `@@esc:0@@` for a multi-line one written with `\\n` escapes. Text
templates keep the indentation of a multi-line secret (a PEM block under a YAML `|`).

Staging holds each shape's secrets as written here; production holds a variant of each
(every digit shifted by one, or a value given), so that the two environments differ in every
secret and in nothing else. What exists once (the pushed document, production's failing
sources, the alert settings) has no variant.

Every secret here is made up for these tests. None has ever been a real credential.
"""

from __future__ import annotations

import base64
import json
import random
import re
from dataclasses import dataclass
from typing import Any

# Where a shape is written. Text sources get text templates, the others JSON-like objects;
# config sources are settings of envparity.yaml (their template names which one).
TEXT_SOURCES = (
    "env",
    "yaml",
    "ini",
    "properties",
    "toml",
    "key_value",
    "lines",
    "stderr",  # production's failing command writes it to its standard error
    "broken_yaml",  # production's files that do not parse, a secret on a bad line
    "broken_json",
    "broken_ini",
    "push_error",  # the error of a failed source in the pushed document
    "push_key",  # the key of a pushed resource
)
OBJECT_SOURCES = ("json", "json_command", "http_body", "push")
CONFIG_SOURCES = ("http_config", "http_fail", "command_env", "alerts_config")
PRODUCTION_ONLY = ("stderr", "broken_yaml", "broken_json", "broken_ini", "http_fail")
FLEET_ONLY = ("push", "push_error", "push_key")
ONE_SIDED = (*PRODUCTION_ONLY, *FLEET_ONLY, "alerts_config")  # no production variant

_DIGIT_SHIFT = str.maketrans("0123456789", "1234567890")
_PLACEHOLDER = re.compile(r"@@(int:|esc:)?(\d+)@@")


def variant(secret: str) -> str:
    """Production's counterpart of a staging secret: the same shape, every digit shifted."""
    return secret.translate(_DIGIT_SHIFT)


def needles_of(value: str) -> list[str]:
    """What to grep for: the secret itself, or each line of a multi-line one (a PEM body;
    its BEGIN/END lines are no secret)."""
    lines = [line.strip() for line in value.splitlines()]
    return [line for line in lines if line and not line.startswith("-----")]


@dataclass(frozen=True)
class Secret:
    shape: str  # names the case in test ids and failure messages
    source: str  # one of TEXT_SOURCES, OBJECT_SOURCES or CONFIG_SOURCES
    template: Any
    secrets: tuple[str, ...]
    # production's values where shifting digits would break the shape (base64 of JSON or of
    # user:password must still decode to one)
    production: tuple[str, ...] | None = None

    @property
    def envs(self) -> tuple[str, ...]:
        if self.source in PRODUCTION_ONLY:
            return ("production",)
        if self.source in FLEET_ONLY:
            return ("fleet",)
        if self.source == "alerts_config":
            return ("config",)
        return ("staging", "production")

    def values(self, env: str) -> tuple[str, ...]:
        if env == "production" and self.source not in ONE_SIDED:
            return self.production or tuple(variant(s) for s in self.secrets)
        return self.secrets

    def needles(self) -> list[str]:
        found: list[str] = []
        for env in self.envs:
            for value in self.values(env):
                found += [n for n in needles_of(value) if n not in found]
        return found


def fill_text(template: str, values: tuple[str, ...]) -> str:
    """A text template with its placeholders replaced; the lines of a multi-line value keep
    the indentation of the line its placeholder stands on."""
    out = []
    for line in template.splitlines():
        indent = line[: len(line) - len(line.lstrip())]

        def value(match: re.Match[str], indent: str = indent) -> str:
            text = values[int(match[2])]
            if match[1] == "esc:":  # a multi-line value written with \n escapes
                return "\\n".join(text.splitlines())
            return ("\n" + indent).join(text.splitlines())

        out.append(_PLACEHOLDER.sub(value, line))
    return "\n".join(out) + "\n"


def fill_object(template: Any, values: tuple[str, ...]) -> Any:
    """A JSON-like template with its placeholders replaced, in keys and values."""
    if isinstance(template, dict):
        return {fill_object(k, values): fill_object(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill_object(v, values) for v in template]
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole and whole[1] == "int:":
            return int(values[int(whole[2])])
        return _PLACEHOLDER.sub(lambda m: values[int(m[2])], template)
    return template


def render_text(source: str, env: str, shapes: list[Secret] | None = None) -> str:
    parts = [
        fill_text(s.template, s.values(env))
        for s in shapes or POSITIVE
        if s.source == source and env in s.envs
    ]
    return "".join(parts)


def render_object(source: str, env: str, shapes: list[Secret] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for s in shapes or POSITIVE:
        if s.source == source and env in s.envs:
            part = fill_object(s.template, s.values(env))
            overlap = document.keys() & part.keys()
            assert not overlap, f"{s.shape}: top-level keys {overlap} used twice in {source}"
            document.update(part)
    return document


def _pem_body(seed: int, first: str, size: int) -> str:
    rng = random.Random(seed)
    raw = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(size))).decode()
    body = first + raw[len(first) :]
    return "\n".join(body[i : i + 64] for i in range(0, len(body), 64))


# A PKCS#8 RSA key's first bytes are the same in every key; the rest is random.
PRIVATE_KEY_BODY = _pem_body(41, "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQ", 1190)
EC_KEY_BODY = _pem_body(43, "MHcCAQEEI", 121)
OPENSSH_KEY_BODY = _pem_body(42, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMw", 300)
JWT_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256","typ":"JWT"}: no secret
# {"sub":"svc-orders","iat":1732248000,"scope":"orders:write"}, and a day later
JWT_PAYLOAD = "eyJzdWIiOiJzdmMtb3JkZXJzIiwiaWF0IjoxNzMyMjQ4MDAwLCJzY29wZSI6Im9yZGVyczp3cml0ZSJ9"
JWT_PAYLOAD_PRODUCTION = (
    "eyJzdWIiOiJzdmMtb3JkZXJzIiwiaWF0IjoxNzMyMzM0NDAwLCJzY29wZSI6Im9yZGVyczp3cml0ZSJ9"
)
PRESIGNED = (
    "https://shop-builds.s3.eu-west-1.amazonaws.com/web/web-2.4.0.tar.gz"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=@@1@@%2F20261122%2Feu-west-1%2Fs3"
    "%2Faws4_request&X-Amz-Date=20261122T040000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=@@0@@"
)
SAS = (
    "https://shopbackups.blob.core.windows.net/nightly?sv=2022-11-02&ss=b&srt=co&sp=rl"
    "&se=2027-01-01T00:00:00Z&st=2026-11-01T00:00:00Z&spr=https&sig=@@0@@"
)


def _s(
    shape: str,
    source: str,
    template: Any,
    *secrets: str,
    production: tuple[str, ...] | None = None,
) -> Secret:
    return Secret(shape, source, template, secrets, production)


POSITIVE: list[Secret] = [
    # ------------------------------------------------------------------ .env
    _s("env SMTP_PASS", "env", "SMTP_PASS=@@0@@", "Sm7p-pass-9f2Kq4x"),
    _s("env DB_PASS", "env", "DB_PASS=@@0@@", "Db4ss-Wq81-zzT0pL"),
    _s("env MYSQL_PWD", "env", "MYSQL_PWD=@@0@@", "My5q1-Pwd-Kx93rTe"),
    _s("env DB_PWD", "env", "DB_PWD=@@0@@", "Pwd-Db-3kLm91ZqW"),
    _s(
        "env SENTRY_DSN key",
        "env",
        "SENTRY_DSN=https://@@0@@@o12345.ingest.sentry.io/678",
        "096ab7d0f46240cbc85a9b64c7722044",
    ),
    _s(
        "env JSON in a string value (SETTINGS password)",
        "env",
        """SETTINGS='{"password": "@@0@@", "pool": 5}'""",
        "Js0n-In-Str-7Hq2wX",
    ),
    _s(
        "env GPG_PASSPHRASE",
        "env",
        "GPG_PASSPHRASE=correct-horse-battery-@@0@@",
        "staple-42-Zq7vKd",
    ),
    _s(
        "env SESSION_COOKIE",
        "env",
        "SESSION_COOKIE=@@0@@",
        "s%3AuHVmrgnue0MG1qgcNN5fA4M2w.Rd9YDkf3kX8e2Pq1",
    ),
    _s("env BEARER", "env", "BEARER=@@0@@", "xIo6z7Qeoa6fgJZIa31Fa7WUJQigQZbJ"),
    _s(
        "env Stripe sk_live_ under PAYMENTS_KEY",
        "env",
        "PAYMENTS_KEY=@@0@@",
        "sk_live_AsoO9s6mqFh5RNM6rP8k3Bv6",
    ),
    _s(
        "env URL password containing /",
        "env",
        "CACHE_URL=redis://:@@0@@@cache.internal:6379/0",
        "Pw/With/Slash-8Kq3",
    ),
    _s(
        "env GitHub token under CI_CHECKOUT",
        "env",
        "CI_CHECKOUT=@@0@@",
        "ghp_6Dw9Jy2c5eY9TBXuLxue6zst9fP12n56Zkpj",
    ),
    _s(
        "env amqp URL password",
        "env",
        "BROKER_URL=amqp://orders:@@0@@@mq.internal:5672/orders",
        "Amqp-5VzN-Q9AGSd",
    ),
    # ------------------------------------------------------------------ YAML
    _s("yaml passphrase", "yaml", "signing:\n  passphrase: @@0@@", "Pphr-izw3-z8qEv-9yZ"),
    _s(
        "yaml encryption_key",
        "yaml",
        "storage:\n  bucket: shop-assets\n  encryption_key: @@0@@",
        "8tPNiwATxDBagsEdu6wI2kWaJXv6t5al",
    ),
    _s(
        "yaml Slack webhook URL under notify",
        "yaml",
        "notify: https://hooks.slack.com/services/T07DU50NDW/B0XNM7KVK7Y/@@0@@",
        "2cxc4t5RZqeognMLZrIhTZrf",
    ),
    _s(
        "yaml PEM private key under tls.key",
        "yaml",
        "tls:\n  cert_file: /etc/ssl/web.crt\n  key: |\n"
        "    -----BEGIN PRIVATE KEY-----\n    @@0@@\n    -----END PRIVATE KEY-----",
        PRIVATE_KEY_BODY,
    ),
    _s(
        "yaml JWT under session",
        "yaml",
        f"session: {JWT_HEADER}.@@0@@",
        f"{JWT_PAYLOAD}.j_cdohbJa-zYOEu9Xtvpsu8HewhHnP_8JZX2TNFZmJY",
        production=(f"{JWT_PAYLOAD_PRODUCTION}.WtOY-2U6yptVReseDo7zHSerPbDvgMcz9xkQREcCT2I",),
    ),
    _s(
        "yaml AWS access key id AKIA under uploads.access",
        "yaml",
        "uploads:\n  bucket: shop-uploads\n  access: @@0@@",
        "AKIARX9HBDZOYOLXHNUI",
    ),
    _s(
        "yaml AWS secret access key",
        "yaml",
        "aws:\n  region: eu-west-1\n  aws_secret_access_key: @@0@@",
        "wJalr7XUtnFEMI4K7MDENGbPxRfiCY3EXAMPLEKq",
    ),
    _s(
        "yaml database password",
        "yaml",
        "database:\n  host: orders-db.internal\n  port: 5432\n  password: @@0@@",
        "Yd-1xAE-4oKFE-oHg2",
    ),
    _s(
        "yaml URL with a password as a mapping key",
        "yaml",
        "read_replicas:\n"
        '  "postgres://reporting:@@0@@@pg-replica.internal/reports": {enabled: true}',
        "Mk-Key-Pw-51OYqa",
    ),
    _s(
        "yaml ?token= query string in a file value",
        "yaml",
        "reports_url: https://reports.example.com/export?format=csv&token=@@0@@",
        "Tok-TiEX-pW0n9-nBf",
    ),
    _s(
        "yaml ?api_key= query string in a file value",
        "yaml",
        'geocoder: "https://maps.example.com/geocode?api_key=@@0@@&region=eu"',
        "Gk-ZuV8pcy6C9kWdZD",
    ),
    _s(
        "yaml Authorization: Bearer inside a value",
        "yaml",
        'proxy:\n  extra_header: "Authorization: Bearer @@0@@"',
        "Brr-VmAJhg0m05t9OYC",
    ),
    _s(
        "yaml mongodb+srv URL password",
        "yaml",
        "mongo: mongodb+srv://catalog:@@0@@@cluster0.ab1cd.mongodb.net/catalog?retryWrites=true",
        "Mg-IWGw-uS4Pd-GPy",
    ),
    _s(
        "yaml S3 presigned URL (X-Amz-Signature, X-Amz-Credential)",
        "yaml",
        f'download: "{PRESIGNED}"',
        "3c2c3a4a2fea71c7b92e7e141f37a083f6be1c7df4cb5a7838275b1d4c5e2efc",
        "AKIAIAPLE7N6PMUFADRJ",
    ),
    _s(
        "yaml Azure SAS URL sig=",
        "yaml",
        f'backup_container: "{SAS}"',
        "Qrm8tTAgT1a3ZIjSYqO9h1olq0Rzs3srPRvXJw1oWzM%3D",
    ),
    _s(
        "yaml libpq DSN with password= under dsn",
        "yaml",
        'analytics:\n  dsn: "host=warehouse.internal port=5432 user=etl password=@@0@@"',
        "Dsn-Pw-2pjS-cIZRk",
    ),
    _s(
        "yaml URL password containing @ and :",
        "yaml",
        "mailer_url: smtp://mailer:@@0@@@smtp.example.com:587",
        "M@il:Pw-5521-Zq8k",
    ),
    _s(
        "yaml Kubernetes env list {name: DB_PASSWORD, value: X}",
        "yaml",
        "container:\n  env:\n    - name: DB_PASSWORD\n      value: @@0@@\n"
        "    - name: LOG_LEVEL\n      value: info",
        "K8s-Env-Pw-6Tr3-Lq",
    ),
    _s(
        "yaml container args [--api-key, X]",
        "yaml",
        'worker:\n  args: ["--queue", "orders", "--api-key", "@@0@@"]',
        "Args-Ak-9Vb2-Xn5m-Q",
    ),
    # ------------------------------------------------------------------ JSON file
    _s(
        "json ADO.NET connection string under reporting_db",
        "json",
        {"reporting_db": "Server=sql.internal;Database=reports;User Id=app;Password=@@0@@;"},
        "Ado-34Mh-JWL7n-iyB",
    ),
    _s(
        "json JDBC URL with password query parameter",
        "json",
        {"jdbc": "jdbc:postgresql://db/app?user=app&password=@@0@@"},
        "Jdbc-QEZD-mh5uO-LL",
    ),
    _s(
        "json GitLab glpat- token",
        "json",
        {"ci": {"gitlab": "@@0@@"}},
        "glpat-niFDlX0JiY0y3fNlMah6",
    ),
    _s(
        "json Google API key AIza",
        "json",
        {"maps": {"browser": "@@0@@"}},
        "AIzaebVoCR2av8ZdZvil2D5-7SbS_RYsMxsilbs",
    ),
    _s(
        "json SendGrid SG. key",
        "json",
        {"mail": {"provider": "sendgrid", "sendgrid": "@@0@@"}},
        "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",
    ),
    _s(
        "json Slack bot token xoxb-",
        "json",
        {"chatops": {"bot": "@@0@@"}},
        "xoxb-902427154138-1810072611549-7L8g3EuXc8J34yHbKQfvyFhp",
    ),
    _s(
        "json password inside a list of objects",
        "json",
        {"upstreams": [{"name": "billing", "password": "@@0@@"}]},
        "Lst-oKUP-ny47J-YQk",
    ),
    _s(
        "json numeric secret (pin_secret)", "json", {"atm": {"pin_secret": "@@int:0@@"}}, "83920417"
    ),
    _s(
        "json HTTP Basic credentials under legacy_api.header",
        "json",
        {"legacy_api": {"header": "Basic @@0@@"}},
        "cmVwb3J0aW5nOkJhc2ljLVB3LTgxMjMta1F6",  # reporting:Basic-Pw-8123-kQz
        production=("cmVwb3J0aW5nOkJhc2ljLVB3LTkyMzQta1F6",),  # reporting:Basic-Pw-9234-kQz
    ),
    _s(
        "json URL with a password as an object key",
        "json",
        {"pools": {"postgres://etl:@@0@@@warehouse.internal/dw": {"size": 4}}},
        "Mk2-Obj-Key-7Tq9z",
    ),
    # ------------------------------------------------------------------ INI
    _s(
        "ini [database] password",
        "ini",
        "[database]\nhost = orders-db.internal\npassword = @@0@@",
        "Ini-Pw-5kQ2-Lz8a",
    ),
    _s(
        "ini [smtp] pass",
        "ini",
        "[smtp]\nhost = smtp.example.com\nuser = mailer\npass = @@0@@",
        "Ini-Sm-bleD-Eyof2",
    ),
    _s(
        "ini redis URL password",
        "ini",
        "[cache]\nurl = redis://default:@@0@@@cache.internal:6379/2",
        "Ini-Rd-wZVM-vFqd7",
    ),
    _s(
        "ini [ldap] bind_pw",
        "ini",
        "[ldap]\nbind_dn = cn=svc-web,dc=example,dc=com\nbind_pw = @@0@@",
        "Ldap-2yVL-P4tGR-x",
    ),
    _s(
        "ini [oauth] client_secret",
        "ini",
        "[oauth]\nclient_id = web-portal\nclient_secret = @@0@@",
        "Oa-Afdr-eZL38-ZvF",
    ),
    _s(
        "ini AWS credentials file (aws_access_key_id, aws_secret_access_key)",
        "ini",
        "[default]\naws_access_key_id = @@0@@\naws_secret_access_key = @@1@@\nregion = eu-west-1",
        "AKIAQ3ZC7X2P9LMN4TRS",
        "Zr8Kq2Wm5Yt7Xc3Vb9Nh1Lj4Pd6Fs0Ga2Eu8Io5k",
    ),
    # ------------------------------------------------------------------ Java .properties
    _s(
        "properties spring.datasource.password",
        "properties",
        "spring.datasource.password=@@0@@",
        "Sp-Pw-9Wq4-Rt2m",
    ),
    _s(
        "properties JDBC MySQL URL with password query parameter",
        "properties",
        "spring.datasource.url=jdbc:mysql://db.internal:3306/shop?user=shop&password=@@0@@",
        "Jm-QLde-ZsAa1-Ys",
    ),
    _s(
        "properties key-store-pass",
        "properties",
        "server.ssl.key-store-pass=@@0@@",
        "Ks-cT8M-47nTE-esW",
    ),
    _s(
        "properties jwt signing-key",
        "properties",
        "app.jwt.signing-key=@@0@@",
        "0xnugLdlP+xfV3iddw2zqNuz6e23HKOy",
    ),
    _s(
        "properties rediss URL with empty user",
        "properties",
        "spring.redis.url=rediss://:@@0@@@cache.internal:6380",
        "Rs-Ys2F-P2uOz-yFl",
    ),
    _s(
        "properties EC private key PEM with \\n escapes under tls.bundle",
        "properties",
        "tls.bundle=-----BEGIN EC PRIVATE KEY-----\\n@@esc:0@@\\n-----END EC PRIVATE KEY-----",
        EC_KEY_BODY,
    ),
    # ------------------------------------------------------------------ TOML
    _s(
        "toml [database] passwd",
        "toml",
        '[database]\nuser = "app"\npasswd = "@@0@@"',
        "Tm-8uQ1-Rz5cW-oH3",
    ),
    _s(
        "toml [s3] secret_access_key",
        "toml",
        '[s3]\naccess_key_id_ref = "uploads"\nsecret_access_key = "@@0@@"',
        "Lk9pQ2vX7sT4mN8bR1cY6wZ3hJ5fD0gA2eU7iO4q",
    ),
    _s(
        "toml [webhooks] hmac_key",
        "toml",
        '[webhooks]\nhmac_key = "@@0@@"',
        "82ac91a84797b5b5ddee1ce0eea22e2a11cc79c3d783ced34e811d217a0e45cb",
    ),
    _s(
        "toml npmrc _authToken inside a value",
        "toml",
        '[registry]\nnpmrc = "//registry.npmjs.org/:_authToken=@@0@@"',
        "npm_Od8r6XlJVjpoDRo84kWeeKU0eioz7XyWiXI5",
    ),
    _s(
        "toml list of Stripe keys under integrations.keys",
        "toml",
        '[integrations]\nkeys = ["@@0@@", "@@1@@"]',
        "sk_live_Wq3Rt8Yp1Lm6Nz4Xc9Vb2Hj7",
        "rk_live_Dk5Fg2Hs8Jq1Lw4Ez7Rt0Yu3",
    ),
    # ------------------------------------------------------------------ command: key_value
    _s("key_value PGPASSWORD", "key_value", "PGPASSWORD=@@0@@", "Kv-PSI6-1c8JO-DHg"),
    _s("key_value REDIS_PASS (colon)", "key_value", "REDIS_PASS: @@0@@", "Kv-yosQ-0qVKp-k8c"),
    _s(
        "key_value LICENSE_KEY",
        "key_value",
        "LICENSE_KEY=@@0@@",
        "LK-4F7Q-9XZ2-M3P8-T6W1",
    ),
    _s(
        "key_value quoted DATABASE_URL password",
        "key_value",
        'DATABASE_URL="postgresql://app:@@0@@@db.internal:5432/app"',
        "Kv-zkul-QC7Hk-OIZ",
    ),
    # ------------------------------------------------------------------ command: json
    _s(
        "json_command nested db.password",
        "json_command",
        {"db": {"host": "db.internal", "password": "@@0@@"}},
        "Cj-bHBl-cD2bm-PAe",
    ),
    _s(
        "json_command Slack webhook URL under alerts.webhook",
        "json_command",
        {"alerts": {"webhook": "https://hooks.slack.com/services/T0LNWYYB6A/B0ZQY80WSZ2/@@0@@"}},
        "81BhCxyrtUe0PEhGS20J0b3S",
    ),
    _s(
        "json_command GitHub token as a git URL password in a list",
        "json_command",
        {"mirrors": ["https://x-access-token:@@0@@@github.com/shop/web.git"]},
        "ghp_4QvG5BSVSGX9yN0YoShNiCZ2FVQRapKQddQP",
    ),
    _s(
        "json_command AWS access key id under backup.id",
        "json_command",
        {"backup": {"id": "@@0@@", "region": "eu-west-1"}},
        "AKIA6QZ2K4NKI51NDOT0",
    ),
    # ------------------------------------------------------------------ command: lines
    _s("lines DB_PASS=", "lines", "DB_PASS=@@0@@", "Ln-xNby-wa867-vfK"),
    _s("lines export API_TOKEN=", "lines", "export API_TOKEN=@@0@@", "Ln-X55k-dVQSB-4U6"),
    _s(
        "lines git URL with password",
        "lines",
        "https://deploy:@@0@@@git.internal/shop.git",
        "Ln-Ga0C-yDrzk-Srp",
    ),
    _s(
        "lines --password= flag",
        "lines",
        "mysqldump --user=backup --password=@@0@@ shop",
        "Ln-69aC-51yF5-xyS",
    ),
    _s(
        "lines netrc machine login password",
        "lines",
        "machine api.example.com login deploy password @@0@@",
        "Nrc-4Hw8-Jq2z-Vt6",
    ),
    # ------------------------------------------------------------------ http: JSON body
    _s(
        "http_body ?token= query string",
        "http_body",
        {"callback": "https://idp.example.com/cb?next=%2Fhome&token=@@0@@"},
        "Ht-oT7S-fmh0M-c5n",
    ),
    _s(
        "http_body ?api_key= query string",
        "http_body",
        {"search_endpoint": "https://search.example.com/v1/query?api_key=@@0@@&lang=en"},
        "Ha-Wv3k-82mQp-9Wx",
    ),
    _s(
        "http_body nested credentials",
        "http_body",
        {"smtp": {"user": "mailer", "credentials": {"pass": "@@0@@"}}},
        "Hc-Nf6r-Jt2yB-4bN",
    ),
    _s(
        "http_body Stripe key under billing.stripe",
        "http_body",
        {"billing": {"stripe": "@@0@@"}},
        "sk_live_9xKq2LmPz7RtVb4NcW8yHs3D",
    ),
    _s(
        "http_body URL password",
        "http_body",
        {"ldap_url": "ldaps://cn=reader:@@0@@@ldap.internal:636"},
        "Hl-8gUe-Xw4Pd-o1L",
    ),
    _s(
        "http_body header list {name: X-Api-Key, value: X}",
        "http_body",
        {
            "upstream_headers": [
                {"name": "X-Api-Key", "value": "@@0@@"},
                {"name": "Accept", "value": "application/json"},
            ]
        },
        "Xak-7Pm3-Rw9c-Lt2v",
    ),
    # ------------------------------------------------------------------ http: the source's config
    _s("http_config access_token in the source URL", "http_config", "url", "Hq-7Yt2-Kp9w-Lm4x"),
    _s("http_config Authorization header", "http_config", "header", "Hb-Zx81-Qw5e-Rt6y-Ui7o"),
    _s(
        "http_fail user:password and ?token= in a failing http source's URL",
        "http_fail",
        "url",
        "Hf-Pw-3Kd7-Wq1x",
        "Hf-Tok-8Zn2-Lc5v",
    ),
    _s("command_env token in a command source's env:", "command_env", "env", "Ce-5Rt8-Yu2i-Op4a"),
    # ------------------------------------------------------------------ push
    _s("push DB_PASS attribute", "push", {"DB_PASS": "@@0@@"}, "Pu-Qz81-Xk4m-Wp2r"),
    _s(
        "push mysql URL password",
        "push",
        {"dsn": "mysql://root:@@0@@@db.internal:3306/shop"},
        "Pu-My-3Hq7-Vb2n",
    ),
    _s(
        "push OpenSSH private key under ssh.deploy_key",
        "push",
        {
            "ssh": {
                "deploy_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n@@0@@\n"
                "-----END OPENSSH PRIVATE KEY-----\n"
            }
        },
        OPENSSH_KEY_BODY,
    ),
    _s(
        "push GitHub token as the URL user",
        "push",
        {"git": {"remote": "https://@@0@@@github.com/shop/infra.git"}},
        "ghp_Tz8Lq2Wm5Rk9Xv3Nb7Hc1Jd6Fg4Ys0Ae2Pu7",
    ),
    _s(
        "push_error password in a failed source's error",
        "push_error",
        "inventory agent: login failed for svc-fleet with password @@0@@: access denied",
        "Pe-Lw93-Vc8x-Nq1z",
    ),
    _s(
        "push_key URL with password in a resource key",
        "push_key",
        "https://ci:@@0@@@git.internal/shop/infra.git",
        "Pk-Key-6Yh3-Mn8b",
    ),
    # ------------------------------------------------------------------ a failing command's stderr
    _s(
        "stderr password 'X'",
        "stderr",
        "FATAL: authentication failed for user app with password '@@0@@'",
        "Se-Qt4p-Wd8k-Zm2n",
    ),
    _s(
        "stderr using key X",
        "stderr",
        "vault: unseal failed using key @@0@@",
        "7Hq2Lm9Xv4Rt8Kc1QzWb",
    ),
    _s(
        "stderr password=X",
        "stderr",
        "mysql: login rejected: user=app password=@@0@@",
        "Se-Mx7r-Lp3v-Ty9b",
    ),
    _s(
        "stderr URL password",
        "stderr",
        "redis: cannot connect to redis://:@@0@@@cache.internal:6379/0",
        "Se-Rc5n-Hv2q-Kw8j",
    ),
    _s(
        "stderr Authorization: Bearer",
        "stderr",
        "curl: (22) 401 Unauthorized (sent Authorization: Bearer @@0@@)",
        "Se-Bt6w-Jn4m-Ps1c",
    ),
    _s(
        "stderr ?token= in a URL",
        "stderr",
        "GET https://vault.internal/v1/sys/health?token=@@0@@ answered 403",
        "Se-Qs3e-Fg7h-Dk5l",
    ),
    _s(
        "stderr JSON password",
        "stderr",
        '{"error": "bad credentials", "password": "@@0@@"}',
        "Se-Js9a-Wz2x-Cv6b",
    ),
    # ------------------------------------------------------------------ files that do not parse
    _s(
        "broken_yaml secret on the line that does not parse",
        "broken_yaml",
        'db:\n  host: orders-db.internal\n  password: "@@0@@\n  pool: [1, 2\n',
        "By-Br0ken-Pw-7731x",
    ),
    _s(
        "broken_json secret next to the error",
        "broken_json",
        '{"db": {"password": "@@0@@", "host": }}',
        "Bj-Br0ken-Pw-5520y",
    ),
    _s(
        "broken_ini secret on a line before any section",
        "broken_ini",
        "password = @@0@@\n[database]\nhost = orders-db.internal",
        "Bi-Br0ken-Pw-3318z",
    ),
    # ------------------------------------------------------------------ alerts settings
    _s(
        "alerts_config Slack webhook URL token",
        "alerts_config",
        "slack",
        "Al-SlackHook-4Tq8Wm2Zx6Rb",
    ),
    _s("alerts_config webhook signing key", "alerts_config", "signing", "Al-Sign-7Yp3Kd9Lv5Nc"),
]

# Neighbouring data that is no secret: it must reach the database and `export`.
NEIGHBOURS = (
    "orders-db.internal",
    "cache.internal",
    "mq.internal",
    "shop-uploads",
    "o12345.ingest.sentry.io",
    "hooks.slack.com",
    "warehouse.internal",
    "pg-replica.internal",
    "reports.example.com",
    "cluster0.ab1cd.mongodb.net",
    "smtp.example.com",
    "registry.npmjs.org",
    "git.internal",
    "idp.example.com",
    "github.com/shop/infra.git",
)


def by_shape(shape: str) -> Secret:
    return next(s for s in POSITIVE if s.shape == shape)


# --------------------------------------------------------------------------- negative corpus

CERT_BODY_STAGING = _pem_body(51, "MIIDazCCAlOgAwIBAgIUT3", 880)
CERT_BODY_PRODUCTION = _pem_body(52, "MIIDazCCAlOgAwIBAgIUa9", 880)


def _cert(body: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


@dataclass(frozen=True)
class Plain:
    """A value that is no secret: it must stay as written, and differences must show."""

    name: str
    source: str  # env, yaml, json, ini, properties, toml
    path: tuple[str, ...]  # where it sits in the resource's attributes
    staging: Any
    production: Any
    # what `diff` shows when normalization rewrites the value (an ARN's account id)
    shown: tuple[Any, Any] | None = None
    differs: bool = True  # False: the same in both (UUIDs normalize to {id} across envs)

    @property
    def diff_path(self) -> str:
        return ".".join(self.path)

    def value(self, env: str) -> Any:
        return self.production if env == "production" else self.staging


def _p(name: str, source: str, path: str, staging: Any, production: Any, **kw: Any) -> Plain:
    return Plain(name, source, tuple(path.split("|")), staging, production, **kw)


NEGATIVE: list[Plain] = [
    _p("version", "yaml", "app_version", "1.27.3", "1.27.4"),
    _p("release candidate tag", "yaml", "release", "v2.4.0-rc1", "v2.4.0-rc2"),
    _p("hostname", "yaml", "api_host", "api-blue.svc.example.com", "api-green.svc.example.com"),
    _p("port (int)", "yaml", "port", 8443, 9443),
    _p(
        "image digest sha256:",
        "yaml",
        "image_digest",
        "sha256:5111e8f7eb1e59b4285476950dd064456381f110583b8aa984bc8c92797010fe",
        "sha256:deb047d059bececd65baa0a1a9d6159e3975a6584d26005896a95af0a098d6ec",
    ),
    _p(
        "image ref with digest",
        "yaml",
        "image",
        "registry.example.com/shop/web@sha256:f5c3dbfca7f00bda67bac4ad2b67f743465a829012c65103bde9eb94c4962597",
        "registry.example.com/shop/web@sha256:71007f5ef86405eeb8e45e35cd6d59ab94f2ce1f159e2288aaf983f3456fd8db",
    ),
    _p(
        "git SHA (40 hex) under commit",
        "yaml",
        "commit",
        "d6339acd8062ed5a9f7928f4462cc8834d7feeab",
        "48af221e04ebabf202cf10814dba54fa85a7d342",
    ),
    _p(
        "UUID under request_namespace",
        "yaml",
        "request_namespace",
        "3f1c9a2e-7b4d-4e8f-9a61-2c5d8e0b7f34",
        "3f1c9a2e-7b4d-4e8f-9a61-2c5d8e0b7f34",
        differs=False,
    ),
    _p(
        "md5 checksum",
        "yaml",
        "checksums|md5",
        "a832a5e1c51903ba27a42eaf2808f0b7",
        "7585e9724a624f57645480ef83c0c811",
    ),
    _p(
        "sha1 checksum",
        "yaml",
        "checksums|sha1",
        "c966c5df432f9f154f8ef6b30b32fd69e5fb4982",
        "9beea6c1c4fc77933424307508b7ba416d178023",
    ),
    _p(
        "sha256 checksum",
        "yaml",
        "checksums|sha256",
        "62a09ff74f6e32c80ae350da16833044ce51318b429ae517d589886d9e0a8a6b",
        "fe7cc4036d731d6e703637d6cf105f03eb5d21c83d1d917d81113efd8a30f1cb",
    ),
    _p("feature flag (bool)", "yaml", "features|new_checkout", False, True),
    _p("feature flag (string)", "yaml", "features|checkout_flow", "variant-b", "variant-c"),
    _p(
        "public certificate fingerprint (colon hex)",
        "yaml",
        "cert_fingerprint",
        "51:F2:B7:23:05:50:45:C6:DD:41:9F:86:1B:90:B3:DF:3A:D1:62:4D:54:86:2D:FA:33:3C:99:0B:29:C3:DC:A8",
        "D9:72:A3:EA:D1:19:D6:C4:41:0D:6E:65:FF:65:1B:D5:E4:B2:2A:C8:2B:E1:B5:97:AF:E6:FE:1E:C9:9E:89:9A",
    ),
    _p(
        "ARN",
        "yaml",
        "iam_role",
        "arn:aws:iam::123456789012:role/web",
        "arn:aws:iam::123456789012:role/web-v2",
        shown=("arn:aws:iam::{account}:role/web", "arn:aws:iam::{account}:role/web-v2"),
    ),
    _p(
        "public PEM certificate block under tls.cert",
        "yaml",
        "tls|cert",
        _cert(CERT_BODY_STAGING),
        _cert(CERT_BODY_PRODUCTION),
    ),
    _p("semver range", "yaml", "engines|node", ">=18.17.0 <21", "^20.11.1"),
    _p("cron expression", "yaml", "backup_schedule", "*/15 * * * *", "0 3 * * 1"),
    _p("CIDR", "yaml", "allowed_cidr", "10.40.0.0/16", "10.41.0.0/16"),
    _p("email under author", "yaml", "author", "ops-team@example.com", "sre-oncall@example.com"),
    _p("text under passage", "yaml", "passage", "The quick brown fox 42", "The lazy dog 43"),
    _p("value under compass", "yaml", "compass", "north-by-northwest-7", "south-by-southeast-9"),
    _p("value under keyboard", "yaml", "keyboard", "us-intl-3", "de-nodeadkeys-4"),
    _p("bypass_cache (bool)", "yaml", "bypass_cache", True, False),
    _p("kms_key_id", "yaml", "kms_key_id", "alias/shop-data-7", "alias/shop-data-8"),
    _p("password_min_length (int)", "yaml", "password_min_length", 12, 14),
    _p("token_ttl (int)", "yaml", "token_ttl", 3600, 7200),
    _p("max_tokens (int)", "yaml", "llm|max_tokens", 4096, 8192),
    _p("passenger_limit (int)", "yaml", "passenger_limit", 180, 220),
    _p("oauth_enabled (bool)", "yaml", "oauth_enabled", True, False),
    _p(
        "authority URL",
        "yaml",
        "authority",
        "https://login.example.com/tenant-7",
        "https://login.example.com/tenant-8",
    ),
    _p(
        "public_key (ssh-ed25519)",
        "yaml",
        "public_key",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq7Wn4mXy2kLp9Rt3Vb8Nc5Jd1Fg6Hs0Ae7Qz4Xw2Ty"
        " deploy@example.com",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm2Pq8Lk5Wn3Rt7Vb1Xc9Jd4Fg0Hs6Ae2Qz8Yw5Ut"
        " deploy@example.com",
    ),
    _p("LOG_LEVEL (.env)", "env", "LOG_LEVEL", "info", "warn"),
    _p("WORKERS (.env)", "env", "WORKERS", "4", "8"),
    _p("TOKEN_AUDIENCE (.env)", "env", "TOKEN_AUDIENCE", "shop-web", "shop-api"),
    _p(
        "git SHA (.env GIT_SHA)",
        "env",
        "GIT_SHA",
        "5b7e1c0d9a8f6e4d3c2b1a09f8e7d6c5b4a39281",
        "6c8f2d1e0b9a7f5e4d3c2b1a0f9e8d7c6b5a4930",
    ),
    _p("hostname (.ini)", "ini", "server|hostname", "web-a.example.net", "web-b.example.net"),
    _p(
        "sha256 checksum (.ini)",
        "ini",
        "artifact|sha256",
        "7318a18167fff8f1feb6d91b7a30a9c5586f5207af32e18194b48751b6481c05",
        "a4e9c1b7d3f5082e6a9c4b1d7e3f50a28c6e4b1d9f7a3c5e0b2d8f6a4c1e9b7d",
    ),
    _p("port (.properties)", "properties", "server.port", "8080", "8081"),
    _p(
        "keystore type (.properties)",
        "properties",
        "server.ssl.key-store-type",
        "PKCS12",
        "JKS",
    ),
    _p("toolchain version (.toml)", "toml", "build|rust_version", "1.79.0", "1.80.1"),
    _p("IP address (.toml)", "toml", "network|gateway", "192.0.2.10", "192.0.2.11"),
    _p("timezone (.json)", "json", "timezone", "Europe/Paris", "America/Chicago"),
    _p("semver (.json)", "json", "sdk|version", "v3.14.2", "v3.15.0"),
    _p("cron (.json)", "json", "jobs|reindex", "0 */6 * * *", "30 2 * * *"),
]


def _nest(items: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for path, value in items:
        node = document
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return document


def render_plain(source: str, env: str, plains: list[Plain] | None = None) -> str:
    """The file of `source`'s format that holds every plain value of that format."""
    items = [(p.path, p.value(env)) for p in plains or NEGATIVE if p.source == source]
    if source in ("yaml", "json"):
        import yaml

        document = _nest(items)
        if source == "json":
            return json.dumps(document, indent=2) + "\n"
        return yaml.safe_dump(document, sort_keys=False, width=1000)
    if source == "env":
        return "".join(f"{path[0]}={json.dumps(value)}\n" for path, value in items)
    if source == "properties":
        return "".join(f"{path[0]}={value}\n" for path, value in items)
    if source in ("ini", "toml"):
        sections: dict[str, list[str]] = {}
        for path, value in items:
            text = json.dumps(value) if source == "toml" else str(value)
            sections.setdefault(path[0], []).append(f"{path[1]} = {text}")
        return "".join(
            f"[{name}]\n" + "\n".join(lines) + "\n\n" for name, lines in sections.items()
        )
    raise ValueError(source)
