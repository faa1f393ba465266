"""The package's layers only point down (pyproject.toml ``[tool.importlinter]``), checked by import-linter:
settings → paths, gates → RDF I/O (graphs) → store → domain → quality gates → api → cli."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed: pip install -e '.[test]'")


def lint(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=directory, capture_output=True, text=True, timeout=300)


def package_as_installed(target: Path) -> Path:
    """The package laid out as the wheel installs it (``api/`` becomes ``crlm_kg/api``,
    pyproject's package-dir), which is the tree import-linter can walk."""
    shutil.copytree(ROOT / "crlm_kg", target / "crlm_kg", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "api", target / "crlm_kg" / "api", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def test_layers_contract_is_kept(tmp_path):
    proc = lint(package_as_installed(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The check can fail: a copy of the code where the store imports the checks is refused."""
    package_as_installed(tmp_path)
    terms = tmp_path / "crlm_kg" / "store" / "terms.py"
    terms.write_text(terms.read_text(encoding="utf-8") + "\nfrom .. import checks  # an upward import\n", encoding="utf-8")
    proc = lint(tmp_path)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout and "crlm_kg.store.terms -> crlm_kg.checks" in proc.stdout


ROUTE_DECORATORS = tuple(f"@{owner}.{verb}(" for owner in ("app", "router") for verb in ("get", "post", "put", "delete", "api_route", "route"))


def test_every_module_is_under_500_lines_and_routes_live_on_routers():
    """One concern per module (issue 11): no module over 500 lines, and no route defined as a
    closure on the app (``@app.get`` inside a ``register()`` function) instead of an APIRouter."""
    too_long, closures = [], []
    for path in sorted((ROOT / "crlm_kg").rglob("*.py")) + sorted((ROOT / "api").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 500:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        closures += [f"{path.relative_to(ROOT)}: {line.strip()}" for line in text.splitlines()
                     if line.startswith((" ", "\t")) and line.strip().startswith(ROUTE_DECORATORS)]
    assert too_long == []
    assert closures == []
