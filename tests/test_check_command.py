"""`crlm-kg check` runs every quality gate and its exit status says whether all passed."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from crlm_kg import paths


GATES = ("rdflib parse", "quality report", "HermiT", "OWL API", "evidence shapes (SHACL)", "quotes match seeds",
         "links resolve", "patient shapes well-formed")


@pytest.mark.slow
@pytest.mark.quality_gate(needs=("java", "seeds"))
def test_check_runs_every_gate_and_passes():
    """Each named gate ran and passed (a skipped gate prints [SKIP] and fails this test)."""
    proc = subprocess.run([sys.executable, "-m", "crlm_kg.cli", "check"], capture_output=True, text=True, timeout=600)
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    for gate in GATES:
        assert f"] {gate}:" in out, f"gate {gate!r} did not run"
        assert f"[PASS] {gate}:" in out, f"gate {gate!r} did not pass:\n" + next(line for line in out.splitlines() if f"] {gate}:" in line)
    assert "[SKIP]" not in out and "[FAIL]" not in out, out[-3000:]
    assert "provenance share 100.0 %" in out
    assert proc.returncode == 0, out[-3000:]


@pytest.mark.slow
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
