"""The layering holds: import contracts (``[tool.importlinter]`` in pyproject.toml) and the one
reader of the environment (:mod:`datamesh.endpoints`).

The contracts are checked on the code as it is, and on a copy with a violation planted, so a
contract that stopped covering what it names (a renamed package, a wrong module path) fails here
too instead of passing for nothing.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("datamesh", "mesh_assets", "resources", "sensors")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter over the packages under ``root`` (its pyproject.toml's contracts)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},  # the copy's packages, not the install's
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_contracts_are_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout, result.stdout


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    root.mkdir()
    for name in PACKAGES:
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


@pytest.mark.parametrize(
    ("module", "planted", "contract", "chain"),
    [
        (
            "datamesh/cdc/topics.py",
            "from datamesh.control import connectors as _planted  # noqa: F401\n",
            "import neither",
            "datamesh.cdc.topics -> datamesh.control.connectors",
        ),
        (
            "datamesh/cli.py",
            "import dagster as _planted  # noqa: F401\n",
            "imports no Dagster code",
            "datamesh.cli -> dagster",
        ),
        (  # a second door into the Dagster layer: only cli_entry is allowed
            "datamesh/cli.py",
            "import resources.flink as _planted  # noqa: F401\n",
            "imports no Dagster code",
            "datamesh.cli -> resources.flink",
        ),
        (  # a cycle: the declarations would depend on the connectors that depend on them
            "datamesh/specs/rules.py",
            "import datamesh.cdc.running as _planted  # noqa: F401\n",
            "no import cycles",
            ".specs -> .cdc",
        ),
        (  # a chain counts: flink -> a module of the CLI's
            "datamesh/flink/deploy.py",
            "import datamesh.cli as _planted  # noqa: F401\n",
            "import neither",
            "datamesh.flink.deploy -> datamesh.cli",
        ),
    ],
)
def test_a_planted_violation_breaks_its_contract(
    tmp_path: Path, module: str, planted: str, contract: str, chain: str
) -> None:
    root = _copy(tmp_path)
    target = root / module
    target.write_text(target.read_text() + "\n" + planted)
    result = _lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
    assert broken, result.stdout
    assert contract in result.stdout.split("Broken contracts")[-1], result.stdout
    assert chain in result.stdout, result.stdout


def _environment_reads(path: Path) -> list[str]:
    """``file:line`` of every read of the process environment in ``path``'s code."""
    names = ("environ", "getenv", "environb")
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        attribute = (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )
        imported = (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in names for alias in node.names)
        )
        if attribute or imported:
            found.append(f"{path}:{getattr(node, 'lineno', 0)}")
    return found


def test_the_environment_is_read_only_through_endpoints() -> None:
    files = [ROOT / "definitions.py", *(p for n in PACKAGES for p in (ROOT / n).rglob("*.py"))]
    readers = [
        hit
        for path in files
        if path != ROOT / "datamesh" / "endpoints.py"
        for hit in _environment_reads(path)
    ]
    assert readers == [], "read variables through datamesh.endpoints.setting(): " + ", ".join(
        readers
    )
    assert _environment_reads(ROOT / "datamesh" / "endpoints.py")  # the scan sees a reader


def test_the_environment_scan_sees_every_spelling(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nfrom os import getenv\n"
        "a = os.environ.get('X')\nb = os.getenv('Y')\nc = {**os.environ}\n"
    )
    lines = sorted(int(hit.rsplit(":", 1)[1]) for hit in _environment_reads(sample))
    assert lines == [2, 3, 4, 5]
