"""The `command` source: output parsers by tables, and real subprocesses for running and failing."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from collectors.base import CollectorError, FetchContext, Resource
from collectors.commands import (
    CommandOptions,
    CommandSource,
    ParseError,
    parse_dpkg,
    parse_json,
    parse_key_value,
    parse_lines,
    parse_npm_ls,
    parse_pip_freeze,
    parse_pip_json,
    parse_rpm,
    version_sort_key,
)

SECRET = "hunter2-s3cr3t"


def options(**values: Any) -> CommandOptions:
    opts = CommandSource.Options.model_validate({"type": "command", **values})
    assert isinstance(opts, CommandOptions)
    return opts


def collect(tmp_path: Path, **values: Any) -> list[Resource]:
    ctx = FetchContext(environment="staging", base_dir=tmp_path)
    return CommandSource().collect(options(**values), ctx)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# --- parsers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Django==4.2.1\nrequests==2.31.0\n",
            {"django": {"version": "4.2.1"}, "requests": {"version": "2.31.0"}},
        ),
        ("Foo_Bar.baz==1.0\n", {"foo-bar-baz": {"version": "1.0"}}),
        ("weird===1.0-local\n", {"weird": {"version": "1.0-local"}}),
        (
            "mylib @ file:///src/mylib\n",
            {"mylib": {"url": "file:///src/mylib"}},
        ),
        (
            "-e git+https://git.example.com/app.git@abc123#egg=My_App\n",
            {"my-app": {"editable": "git+https://git.example.com/app.git@abc123#egg=My_App"}},
        ),
        (
            "# Editable install with no version control (envparity==0.1.0)\n-e /work/main\n",
            {"envparity": {"version": "0.1.0", "editable": "/work/main"}},
        ),
        ("-e /somewhere/unnamed\n", {}),
        (
            "# comment\n\n## pip freeze header\n-i https://pypi.org/simple\nsix==1.16.0\n",
            {"six": {"version": "1.16.0"}},
        ),
        (
            "pkg==1.9\nPKG==1.10\n",
            {"pkg": {"version": "1.10", "other_versions": ["1.9"]}},
        ),
        ("pkg==1.0\npkg==1.0\n", {"pkg": {"version": "1.0"}}),
        ("", {}),
    ],
)
def test_pip_freeze(text: str, expected: dict[str, Any]) -> None:
    assert parse_pip_freeze(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[{"name": "Django", "version": "4.2.1"},'
            ' {"name": "zope.interface", "version": "6.0"}]',
            {"django": {"version": "4.2.1"}, "zope-interface": {"version": "6.0"}},
        ),
        (
            '[{"name": "app", "version": "0.1", "editable_project_location": "/src/app"}]',
            {"app": {"version": "0.1", "editable_project_location": "/src/app"}},
        ),
        ("[]", {}),
    ],
)
def test_pip_json(text: str, expected: dict[str, Any]) -> None:
    assert parse_pip_json(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bash\t5.2.15-2+b2\n", {"bash": {"version": "5.2.15-2+b2"}}),
        ("libc6:amd64\t2.36-9\n", {"libc6": {"version": "2.36-9", "arch": "amd64"}}),
        (
            "libc6:amd64\t2.36-9\nlibc6:i386\t2.36-9\n",
            {"libc6": {"version": "2.36-9", "arch": ["amd64", "i386"]}},
        ),
        ("tzdata\t2024a-0\tall\n", {"tzdata": {"version": "2024a-0", "arch": "all"}}),
        (
            "libssl3\t3.0.11-1\tamd64\nlibssl3\t3.0.11-1\tarm64\n",
            {"libssl3": {"version": "3.0.11-1", "arch": ["amd64", "arm64"]}},
        ),
        ("removed-pkg\t\nvim\t2:9.0.1378-2\n", {"vim": {"version": "2:9.0.1378-2"}}),
        ("", {}),
    ],
)
def test_dpkg(text: str, expected: dict[str, Any]) -> None:
    assert parse_dpkg(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "openssl-libs-3.0.7-24.el9.x86_64\n",
            {"openssl-libs": {"version": "3.0.7", "release": "24.el9", "arch": "x86_64"}},
        ),
        (
            "tzdata-2024a-1.el9.noarch\n",
            {"tzdata": {"version": "2024a", "release": "1.el9", "arch": "noarch"}},
        ),
        (
            "gpg-pubkey-fd431d51-4ae0493b\n",
            {"gpg-pubkey": {"version": "fd431d51", "release": "4ae0493b"}},
        ),
        ("bash-5.1.8-6.el9\n", {"bash": {"version": "5.1.8", "release": "6.el9"}}),
        (
            "bash 5.1.8-6.el9 x86_64\n",
            {"bash": {"version": "5.1.8", "release": "6.el9", "arch": "x86_64"}},
        ),
        ("bash\t5.1.8\n", {"bash": {"version": "5.1.8"}}),
        ("gpg-pubkey 1-2 (none)\n", {"gpg-pubkey": {"version": "1", "release": "2"}}),
        (
            "glibc-2.34-60.el9.x86_64\nglibc-2.34-60.el9.i686\n",
            {"glibc": {"version": "2.34", "release": "60.el9", "arch": ["i686", "x86_64"]}},
        ),
        (
            "kernel-5.14.0-427.el9.x86_64\nkernel-5.14.0-362.el9.x86_64\nkernel-5.14.0-70.el9.x86_64\n",
            {
                "kernel": {
                    "version": "5.14.0",
                    "release": "427.el9",
                    "arch": "x86_64",
                    "other_versions": ["5.14.0-70.el9", "5.14.0-362.el9"],
                }
            },
        ),
    ],
)
def test_rpm(text: str, expected: dict[str, Any]) -> None:
    assert parse_rpm(text) == expected


NPM_TREE = """
{
  "name": "web", "version": "1.0.0",
  "dependencies": {
    "express": {
      "version": "4.18.2",
      "dependencies": {
        "debug": {"version": "2.6.9", "dependencies": {"ms": {"version": "2.0.0"}}},
        "ms": {"version": "2.1.3"}
      }
    },
    "debug": {"version": "4.3.4", "dependencies": {"ms": {"version": "2.1.2"}}},
    "left-pad": {"required": "^1.3.0", "missing": true}
  }
}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            NPM_TREE,
            {
                "express": {"version": "4.18.2"},
                "debug": {"version": "4.3.4", "other_versions": ["2.6.9"]},
                "ms": {"version": "2.1.3", "other_versions": ["2.0.0", "2.1.2"]},
            },
        ),
        ('{"name": "empty", "version": "1.0.0"}', {}),
    ],
)
def test_npm_ls(text: str, expected: dict[str, Any]) -> None:
    assert parse_npm_ls(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": {"b": [1, 2]}}', {"a": {"b": [1, 2]}}),
        ("[1, 2]", {"value": [1, 2]}),
        ('"3.4.1"\n', {"value": "3.4.1"}),
        ("NaN", {"value": "nan"}),
    ],
)
def test_json(text: str, expected: dict[str, Any]) -> None:
    assert parse_json(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1\nb: 2\n", {"a": "1", "b": "2"}),
        ("url = http://x:80/y\n", {"url": "http://x:80/y"}),
        ("time: 12:30\n", {"time": "12:30"}),
        (
            "  # comment\n\nname = \"quoted value\"\nother='x'\n",
            {"name": "quoted value", "other": "x"},
        ),
        ('half="open\n', {"half": '"open'}),
        ("empty=\n", {"empty": ""}),
        ("a=1\na=2\n", {"a": "2"}),
    ],
)
def test_key_value(text: str, expected: dict[str, Any]) -> None:
    assert parse_key_value(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("b\na\n  b  \n\n", ["a", "b"]),
        ("", []),
    ],
)
def test_lines(text: str, expected: list[str]) -> None:
    assert parse_lines(text) == expected


@pytest.mark.parametrize(
    ("parser", "text", "reason"),
    [
        (parse_pip_freeze, f"ok==1\n{SECRET}\n", "line 2 is not `name==version`"),
        (parse_pip_json, f'{{"name": "{SECRET}"}}', "expected a JSON list"),
        (parse_pip_json, f'[{{"version": "{SECRET}"}}]', "item 0 is not an object with a name"),
        (parse_pip_json, f'[{{"name": "{SECRET}"', "line 1, column"),
        (parse_dpkg, f"a\t1\n{SECRET} x y z\n", "line 2 is not `name<TAB>version"),
        (parse_rpm, f"{SECRET}\n", "line 1 is not `name-version-release"),
        (parse_rpm, f"a b c {SECRET}\n", "line 1 is not `name version"),
        (parse_npm_ls, "", "the output is empty"),
        (parse_npm_ls, f'{{"dependencies": {{"x": "{SECRET}"}}}}', "at depth 1 is not an object"),
        (parse_key_value, f"a=1\n{SECRET}\n", "line 2 has no `=` or `:`"),
        (parse_key_value, f"={SECRET}\n", "line 1 has no key"),
        (parse_json, f'{{"token": "{SECRET}"\n', "delimiter at line 2, column 1"),
    ],
)
def test_parse_errors_say_where_but_never_quote_the_output(
    parser: Any, text: str, reason: str
) -> None:
    with pytest.raises(ParseError) as caught:
        parser(text)

    assert reason in str(caught.value)
    assert SECRET not in str(caught.value)


def test_version_sort_is_numeric_aware() -> None:
    versions = ["1.10", "1.9", "1.9.1", "2.0"]
    assert sorted(versions, key=version_sort_key) == ["1.9", "1.9.1", "1.10", "2.0"]


# --- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "category", "resource_type", "key"),
    [
        (
            {"command": ["pip", "freeze"], "parser": "pip_freeze"},
            "packages",
            "package.pip",
            "pip freeze",
        ),
        (
            {"command": "pip list --format=json", "parser": "pip_json"},
            "packages",
            "package.pip",
            "pip list --format=json",
        ),
        (
            {"command": ["dpkg-query", "-W"], "parser": "dpkg"},
            "packages",
            "package.deb",
            "dpkg-query -W",
        ),
        ({"command": ["npm", "ls"], "parser": "npm_ls"}, "packages", "package.npm", "npm ls"),
        ({"command": ["rpm", "-qa"], "parser": "rpm"}, "packages", "package.rpm", "rpm -qa"),
        ({"command": ["x"], "parser": "json"}, "config", "command.json", "x"),
        (
            {"command": ["x"], "parser": "key_value", "name": "sysctl"},
            "config",
            "command.key_value",
            "sysctl",
        ),
        ({"command": ["x"], "parser": "lines"}, "config", "command.lines", "x"),
        (
            {
                "command": ["x"],
                "parser": "json",
                "name": "n",
                "key": "k",
                "category": "network",
                "resource_type": "t",
            },
            "network",
            "t",
            "k",
        ),
    ],
)
def test_defaults_follow_the_parser(
    values: dict[str, Any], category: str, resource_type: str, key: str
) -> None:
    opts = options(**values)

    assert (opts.effective_category, opts.effective_resource_type, opts.effective_key) == (
        category,
        resource_type,
        key,
    )


@pytest.mark.parametrize(
    "values",
    [
        {"command": [], "parser": "lines"},
        {"command": "  ", "parser": "lines"},
        {"command": ["x"], "parser": "yaml"},
        {"command": ["x"], "parser": "lines", "shell": True},
    ],
)
def test_invalid_options_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        options(**values)


# --- running real commands ----------------------------------------------------------------


def test_argv_command_output_becomes_resources(tmp_path: Path) -> None:
    resources = collect(
        tmp_path,
        command=python("print('Django==4.2.1'); print('six==1.16.0')"),
        parser="pip_freeze",
    )

    assert [(r.category, r.resource_type, r.key, r.attributes) for r in resources] == [
        ("packages", "package.pip", "django", {"version": "4.2.1"}),
        ("packages", "package.pip", "six", {"version": "1.16.0"}),
    ]


def test_shell_string_runs_through_sh_with_env_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "marker.txt").write_text("x")

    [resource] = collect(
        tmp_path,
        command='echo "region=$REGION"; ls | sed "s/^/file=/"',
        parser="key_value",
        env={"REGION": "eu-west-1"},
        cwd="sub",
        name="probe",
    )

    assert resource.key == "probe"
    assert resource.attributes == {"region": "eu-west-1", "file": "marker.txt"}


def test_default_cwd_is_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("")
    (tmp_path / "b.txt").write_text("")

    resources = collect(tmp_path, command=["ls"], parser="lines")

    assert [r.key for r in resources] == ["a.txt", "b.txt"]
    assert all(r.attributes == {} for r in resources)


def test_nonzero_exit_reports_status_and_stderr_tail(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(50): print(f'noise {i}', file=sys.stderr)\nsys.exit(3)"

    with pytest.raises(CollectorError) as caught:
        collect(tmp_path, command=python(code), parser="lines")

    message = str(caught.value)
    assert "exited with status 3: " in message
    assert "noise 49" in message
    assert "noise 29" not in message  # only the last 20 lines


def test_ok_status_accepts_other_exit_codes(tmp_path: Path) -> None:
    code = 'import sys; print(\'{"dependencies": {"a": {"version": "1.0.0"}}}\'); sys.exit(1)'

    [resource] = collect(tmp_path, command=python(code), parser="npm_ls", ok_status=[0, 1])

    assert (resource.key, resource.attributes) == ("a", {"version": "1.0.0"})


def test_shell_command_not_found_says_so(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match="exited with status 127 \\(command not found\\)"):
        collect(tmp_path, command="no-such-program-xyz --version", parser="lines")


def test_argv_command_not_found_names_the_program(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match=r"^command not found: no-such-program-xyz$"):
        collect(tmp_path, command=["no-such-program-xyz", "--version"], parser="lines")


def test_missing_working_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match="working folder not found: nowhere"):
        collect(tmp_path, command=["ls"], parser="lines", cwd="nowhere")


@pytest.mark.parametrize(
    "command",
    [
        python("import time; time.sleep(30)"),
        # The shell's child holds the output pipe: only killing the whole session ends the wait.
        "sleep 30; echo done",
    ],
)
def test_timeout_kills_the_command(tmp_path: Path, command: list[str] | str) -> None:
    started = time.monotonic()

    with pytest.raises(CollectorError, match=r"timed out after 0\.5s$"):
        collect(tmp_path, command=command, parser="lines", timeout=0.5)

    assert time.monotonic() - started < 10


def test_unparsable_output_names_command_and_parser(tmp_path: Path) -> None:
    command = python("print('token=' + 'x' * 3 + '-s3cr3t')")  # the output is not in the argv

    with pytest.raises(CollectorError) as caught:
        collect(tmp_path, command=command, parser="dpkg")

    message = str(caught.value)
    assert message.startswith(f"cannot parse the output of `{sys.executable} -c ")
    assert message.endswith("as dpkg: line 1 is not `name<TAB>version[<TAB>arch]`")
    assert "xxx-s3cr3t" not in message
