"""An invariant over every registered source type: naming, home, options model, tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collectors import registry
from collectors.base import SourceOptions, SourceType, valid_type_name

TESTS = Path(__file__).resolve().parent
TYPES = registry.source_types()


def test_the_registry_finds_the_built_in_types() -> None:
    assert {"file", "command", "http"} <= set(TYPES)


@pytest.mark.parametrize("name", sorted(TYPES))
def test_source_type_contract(name: str) -> None:
    cls: type[SourceType[Any]] = TYPES[name]
    assert cls.type_name == name
    assert valid_type_name(name), "dotted lowercase words"
    assert cls.__module__.startswith("collectors."), "source types live in collectors/"
    assert issubclass(cls.Options, SourceOptions)
    assert cls.Options.model_config.get("extra") == "forbid", "a typo'd option must be an error"
    assert cls.summary, "a one-line summary for `envparity source-types`"
    assert cls.fetch is not SourceType.fetch, "fetch is implemented"
    assert cls.normalize is not SourceType.normalize, "normalize is implemented"
    module_file = cls.__module__.split(".")[-1]
    parts = cls.__module__.split(".")[1:-1]
    test_file = TESTS.joinpath(*parts, f"test_{module_file}.py")
    assert test_file.exists(), f"{cls.__module__} needs its test at {test_file}"
    # A config names its types: each is found by its module alone (see registry.get).
    assert cls.__module__ in registry.modules_for(name), registry.modules_for(name)


@pytest.mark.parametrize("name", sorted(n for n in TYPES if n.startswith("aws.")))
def test_aws_types_declare_their_iam_actions(name: str) -> None:
    """docs/aws.md's least-privilege policies come from these."""
    actions = getattr(TYPES[name], "iam_actions", ())
    assert actions, f"{name} lists the IAM actions it calls"
    for action in actions:
        service, _, operation = action.partition(":")
        assert service.islower()
        assert operation[:1].isupper(), action
        read_only = operation.startswith(("Describe", "List", "Get")) or action == "kms:Decrypt"
        assert read_only, f"{action} is not read-only"


def test_a_duplicate_type_name_is_an_error() -> None:
    existing = TYPES["file"]

    class Impostor(SourceType[SourceOptions]):
        type_name = "file"
        Options = SourceOptions

    with pytest.raises(registry.DuplicateSourceType, match="registered by both"):
        registry.register(Impostor)
    assert registry.get("file") is existing


def test_reading_an_aws_config_does_not_load_the_aws_sdk(tmp_path: Path) -> None:
    """`diff`, `gate` and `validate --offline` read the config; only a scan talks to AWS."""
    import subprocess
    import sys

    from app.demo import write_config

    config = write_config(tmp_path, "http://127.0.0.1:9")  # six AWS source types
    probe = (
        "import sys; from pathlib import Path; from app.config import load_config; "
        f"c = load_config(Path({str(config)!r}), environ={{}}); "
        "assert sum(len(e.sources) for e in c.environments.values()) == 18; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
