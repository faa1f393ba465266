"""`crlm-kg check` runs every quality gate and its exit status says whether all passed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crlm_kg import paths


@pytest.mark.slow
def test_check_runs_every_gate_and_passes():
    proc = subprocess.run([sys.executable, "-m", "crlm_kg.cli", "check"], capture_output=True, text=True, timeout=600)
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    for gate in ("rdflib parse", "quality report", "HermiT", "OWL API", "evidence shapes (SHACL)", "quotes match seeds",
                 "links resolve", "patient shapes well-formed"):
        assert f"] {gate}:" in out, f"gate {gate!r} did not run"
    assert "provenance share 100.0 %" in out
    if shutil.which("java") and Path("/usr/share/java/owlapi-distribution.jar").exists():
        assert proc.returncode == 0, out[-3000:]
        assert "FAIL" not in out


def test_quality_gate_fails_on_a_duplicate_label(tmp_path):
    """The QC gate reads the ontology under CRLM_KG_HOME and reports a duplicated label by name."""
    home = tmp_path / "home"
    for folder in ("ontology", "data", "validation", "queries", "tools"):
        shutil.copytree(paths.ROOT / folder, home / folder, ignore=shutil.ignore_patterns("docs", "crlm.owl"))
    broken = (home / "ontology" / "crlm.ttl").read_text().replace(
        'rdfs:label "two-stage hepatectomy"@en', 'rdfs:label "ALPPS"@en', 1)
    (home / "ontology" / "crlm.ttl").write_text(broken)
    env = dict(__import__("os").environ, CRLM_KG_HOME=str(home), CRLM_KG_SEEDS=str(paths.SEEDS_DIR))
    proc = subprocess.run([sys.executable, "-c", "from crlm_kg.ontology import load_graph, quality_report; r = quality_report(load_graph()); print(r.ok); print(r.problems)"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.stdout.splitlines()[0] == "False"
    assert "duplicate label 'alpps'" in proc.stdout
