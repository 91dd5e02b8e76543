"""The `file` source: formats, globs, keys and errors that name the file but never its content."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from collectors.base import CollectorError, FetchContext, Resource
from collectors.files import FileOptions, FileSource, detect_format, parse


def collect(tmp_path: Path, **options: Any) -> list[Resource]:
    source = FileSource()
    opts = FileSource.Options.model_validate({"type": "file", **options})
    assert isinstance(opts, FileOptions)
    return source.collect(opts, FetchContext(environment="staging", base_dir=tmp_path))


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "app.yaml",
            "db:\n  host: db.internal\n  port: 5432\nfeatures: [a, b]\n",
            {"db": {"host": "db.internal", "port": 5432}, "features": ["a", "b"]},
        ),
        ("app.yml", "released: 2024-05-01\n", {"released": "2024-05-01"}),
        (
            "app.yaml",
            "at: 2024-05-01 10:30:00\non: true\n2: two\nnan: .nan\n",
            {"at": "2024-05-01T10:30:00", "true": True, "2": "two", "nan": "nan"},
        ),
        ("app.yaml", "blob: !!binary aGVsbG8=\n", {"blob": "aGVsbG8="}),
        ("list.yaml", "- a\n- b\n", {"value": ["a", "b"]}),
        ("scalar.yaml", "just text\n", {"value": "just text"}),
        ("empty.yaml", "", {}),
        ("many.yaml", "a: 1\n---\nb: 2\n", {"documents": [{"a": 1}, {"b": 2}]}),
        (
            "app.json",
            '{"replicas": 3, "tags": {"team": "core"}}',
            {"replicas": 3, "tags": {"team": "core"}},
        ),
        ("list.json", "[1, 2]", {"value": [1, 2]}),
        (
            "pyproject.toml",
            '[tool]\nname = "x"\nwhen = 1979-05-27T07:32:00Z\nday = 1979-05-27\n',
            {"tool": {"name": "x", "when": "1979-05-27T07:32:00+00:00", "day": "1979-05-27"}},
        ),
        (
            "app.ini",
            "[DEFAULT]\nlevel = info\n[server]\nPort = 80\npath = %(home)s/x\n",
            {"DEFAULT": {"level": "info"}, "server": {"Port": "80", "path": "%(home)s/x"}},
        ),
        ("my.cnf.conf", "[mysqld]\nskip-name-resolve\n", {"mysqld": {"skip-name-resolve": None}}),
        ("setup.cfg", "[metadata]\nname = x\n", {"metadata": {"name": "x"}}),
        (
            ".env",
            'export A=1\nB="two words"\n# comment\nC=${A}\nD\n',
            {"A": "1", "B": "two words", "C": "${A}", "D": None},
        ),
        (".env.production", "A=1\n", {"A": "1"}),
        ("prod.env", "A=1\n", {"A": "1"}),
        (
            "app.properties",
            "# c\nurl = jdbc:x\nmulti = a\\\n  b\nuni=\\u00e9\n",
            {"url": "jdbc:x", "multi": "ab", "uni": "é"},
        ),
    ],
)
def test_each_format_becomes_the_files_attributes(
    tmp_path: Path, name: str, text: str, expected: dict[str, Any]
) -> None:
    write(tmp_path, name, text)

    [resource] = collect(tmp_path, path=name)

    assert resource.attributes == expected
    assert resource.key == name
    assert (resource.category, resource.resource_type) == ("config", "file")
    json.dumps(resource.attributes, allow_nan=False)  # storable as strict JSON


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.YAML", "yaml"),
        ("dir.d/a.yml", "yaml"),
        ("a.json", "json"),
        ("a.toml", "toml"),
        ("a.ini", "ini"),
        ("a.cfg", "ini"),
        ("nginx.conf", "ini"),
        (".env", "env"),
        (".env.local", "env"),
        ("deploy/.env.staging", "env"),
        ("staging.env", "env"),
        ("a.properties", "properties"),
        ("Makefile", None),
        ("a.txt", None),
    ],
)
def test_auto_format_goes_by_the_name(name: str, expected: str | None) -> None:
    assert detect_format(name) == expected


def test_format_option_overrides_the_extension(tmp_path: Path) -> None:
    write(tmp_path, "settings.txt", "a: 1\n")

    [resource] = collect(tmp_path, path="settings.txt", format="yaml", resource_type="settings")

    assert resource.attributes == {"a": 1}
    assert resource.resource_type == "settings"


def test_unknown_extension_asks_for_a_format(tmp_path: Path) -> None:
    write(tmp_path, "settings.txt", "a: 1\n")

    with pytest.raises(CollectorError, match=r"settings\.txt.*set `format:`"):
        collect(tmp_path, path="settings.txt")


def test_key_is_the_path_as_written_with_posix_separators(tmp_path: Path) -> None:
    write(tmp_path, "deploy/staging/app.yaml", "a: 1\n")

    [resource] = collect(tmp_path, path="./deploy//staging/app.yaml")

    assert resource.key == "deploy/staging/app.yaml"


def test_glob_gives_one_resource_per_file_keyed_relative_to_the_config(tmp_path: Path) -> None:
    write(tmp_path, "deploy/staging/app.yaml", "env: staging\n")
    write(tmp_path, "deploy/production/app.yaml", "env: production\n")
    write(tmp_path, "deploy/production/other.json", "{}")

    resources = collect(tmp_path, path="deploy/*/app.yaml")

    assert [(r.key, r.attributes) for r in resources] == [
        ("deploy/production/app.yaml", {"env": "production"}),
        ("deploy/staging/app.yaml", {"env": "staging"}),
    ]


def test_recursive_glob_detects_each_files_format_and_skips_folders(tmp_path: Path) -> None:
    write(tmp_path, "conf/a.json", '{"a": 1}')
    write(tmp_path, "conf/sub/b.toml", "b = 2\n")
    (tmp_path / "conf" / "dir.json").mkdir()

    resources = collect(tmp_path, path="conf/**/*.*")

    assert {r.key: r.attributes for r in resources} == {
        "conf/a.json": {"a": 1},
        "conf/sub/b.toml": {"b": 2},
    }


def test_glob_outside_the_config_folder_keys_by_absolute_path(tmp_path: Path) -> None:
    base = tmp_path / "config"
    base.mkdir()
    shared = write(tmp_path, "shared/common.yaml", "a: 1\n")

    [resource] = collect(base, path="../shared/*.yaml")

    assert resource.key == shared.as_posix()


def test_absolute_glob_inside_the_config_folder_keys_relatively(tmp_path: Path) -> None:
    write(tmp_path, "deploy/app.json", "{}")

    [resource] = collect(tmp_path, path=f"{tmp_path}/deploy/*.json")

    assert resource.key == "deploy/app.json"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match=r"^file not found: deploy/staging/app\.yaml$"):
        collect(tmp_path, path="deploy/staging/app.yaml")


def test_glob_matching_nothing_is_named(tmp_path: Path) -> None:
    write(tmp_path, "deploy/staging/other.yaml", "a: 1\n")

    with pytest.raises(CollectorError, match=r"^no file matches deploy/\*/x\.yaml$"):
        collect(tmp_path, path="deploy/*/x.yaml")


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()

    with pytest.raises(CollectorError, match="deploy is a directory"):
        collect(tmp_path, path="deploy", format="yaml")


def test_binary_file_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "blob.json").write_bytes(b'{"a": "\xff"}')

    with pytest.raises(CollectorError, match=r"cannot read blob\.json: not UTF-8"):
        collect(tmp_path, path="blob.json")


SECRET = "hunter2-s3cr3t"


@pytest.mark.parametrize(
    ("fmt", "text", "reason"),
    [
        ("yaml", f"db:\n  password: {SECRET}\n  host: [x\n", r"at line \d+, column \d+"),
        (
            "yaml",
            f"password: {SECRET}: more\n",
            "mapping values are not allowed (here|in this context) at line 1",
        ),
        (
            "json",
            f'{{"password": "{SECRET}",\n  oops}}',
            "Expecting property name.*line 2, column 3",
        ),
        ("toml", f'password = "{SECRET}"\nbroken =\n', "line 2"),
        ("ini", f"password = {SECRET}\n", "before any \\[section\\] header at line 1"),
        ("ini", f"[a]\nx = {SECRET}\n[a]\n", "section \\[a\\] appears twice at line 3"),
        (
            "ini",
            f"[a]\nx = {SECRET}\nx = 2\n",
            "key 'x' appears twice in section \\[a\\] at line 3",
        ),
        ("env", f'A=1\nPASSWORD="{SECRET}\n', "line\\(s\\) 2"),
        ("properties", f"password={SECRET}\\u12\n", "invalid \\\\u escape"),
    ],
)
def test_parse_errors_name_file_and_line_but_never_the_content(
    tmp_path: Path, fmt: str, text: str, reason: str
) -> None:
    name = f"deploy/staging/app.{fmt}"
    write(tmp_path, name, text)

    with pytest.raises(CollectorError) as caught:
        collect(tmp_path, path=name)

    message = str(caught.value)
    assert message.startswith(f"cannot parse {name} as {fmt}: ")
    assert SECRET not in message
    assert "\n" not in message
    assert re.search(reason, message), message


def test_parse_is_pure_and_names_the_given_file() -> None:
    assert parse("a = 1\n", "toml", "x.toml") == {"a": 1}
    with pytest.raises(CollectorError, match=r"^cannot parse x\.json as json: "):
        parse("{", "json", "x.json")
