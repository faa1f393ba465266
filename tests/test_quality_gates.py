"""Strict mode (tests/quality_gates.py): a newcomer without the source documents gets a green
run that says how many quality gates were skipped and why; under CRLM_KG_STRICT=1 (CI) the
same skips fail the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

GATES = '''
import pytest


@pytest.mark.quality_gate(needs="seeds")
def test_quotes_are_verbatim():
    pass


@pytest.mark.quality_gate
def test_gate_that_skips_itself():
    pytest.skip("no reasoner here")


def test_an_ordinary_skip():
    pytest.skip("not a quality gate")


def test_ordinary():
    pass
'''


def _pytest(args: list[str], tmp_path: Path, *, strict: bool | None, seeds: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CRLM_KG_SEEDS=str(seeds))
    env.pop("CRLM_KG_STRICT", None)
    if strict is not None:
        env["CRLM_KG_STRICT"] = "1" if strict else "0"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture()
def gates(tmp_path) -> Path:
    path = tmp_path / "test_gates.py"
    path.write_text(GATES)
    return path


def _own(gates: Path) -> list[str]:
    # only the plugin: the file is outside tests/, so tests/conftest.py is not loaded
    return ["-p", "tests.quality_gates", "--rootdir", str(gates.parent), "-c", os.devnull, str(gates)]


@pytest.mark.slow
def test_without_strict_skipped_gates_pass_and_are_counted(gates, tmp_path):
    missing = tmp_path / "no-seeds"
    proc = _pytest(_own(gates), tmp_path, strict=None, seeds=missing)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f"1 quality gate skipped: source documents not found at {missing}" in proc.stdout
    assert "1 quality gate skipped: no reasoner here" in proc.stdout
    assert "quality gate skipped: not a quality gate" not in proc.stdout  # an ordinary skip is not counted
    assert "1 passed, 3 skipped" in proc.stdout


@pytest.mark.slow
def test_strict_turns_every_skipped_gate_into_a_failure(gates, tmp_path):
    proc = _pytest(_own(gates), tmp_path, strict=True, seeds=tmp_path / "no-seeds")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "quality gate skipped under CRLM_KG_STRICT=1: source documents not found at" in proc.stdout
    assert "quality gate skipped under CRLM_KG_STRICT=1: no reasoner here" in proc.stdout
    assert "1 passed, 1 skipped" in proc.stdout  # the ordinary skip stays a skip


@pytest.mark.slow
def test_strict_with_the_documents_fails_only_the_gate_that_skipped(gates, tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "000.txt").write_text("a source document")
    proc = _pytest(_own(gates), tmp_path, strict=True, seeds=seeds)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "source documents not found" not in proc.stdout
    assert "2 passed, 1 skipped" in proc.stdout and "no reasoner here" in proc.stdout


@pytest.mark.slow
def test_the_suite_s_seed_checks_are_gates(tmp_path):
    """On the real suite: the provenance checks skip without the documents, and fail under strict."""
    missing = tmp_path / "no-seeds"
    args = ["tests/test_evidence_data.py", "-q", "-k", "quote or spot_check"]
    newcomer = _pytest(args, tmp_path, strict=False, seeds=missing)
    assert newcomer.returncode == 0, newcomer.stdout[-3000:]
    assert f"quality gates skipped: source documents not found at {missing}" in newcomer.stdout
    ci = _pytest([*args, "-x"], tmp_path, strict=True, seeds=missing)
    assert ci.returncode == 1, ci.stdout[-3000:]
    assert "quality gate skipped under CRLM_KG_STRICT=1" in ci.stdout
