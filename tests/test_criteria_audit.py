"""docs/criteria-audit.md is the graph's criteria table, current (issue 10, point 3)."""

from __future__ import annotations

from crlm_kg import paths
from crlm_kg.evidence.audit import criteria_audit

AUDIT = paths.ROOT / "docs" / "criteria-audit.md"


def test_the_committed_audit_is_what_the_graph_gives(repo_store):
    assert AUDIT.read_text(encoding="utf-8") == criteria_audit(repo_store), \
        "docs/criteria-audit.md is stale: run `crlm-kg audit-criteria` and commit it"


def test_the_audit_shows_wording_beside_encoding(repo_store):
    text = criteria_audit(repo_store)
    # the 1999 adjuvant HAI trial's "after complete resection" is a resectability criterion, not a prior hepatectomy
    row = next(line for line in text.splitlines() if line.startswith("| Kemeny1999AdjuvantHAI_CritResected |"))
    cells = [cell.strip() for cell in row.split(" | ")]
    assert cells[3] == "after complete resection" and cells[4] == "`resectability is resectable`"
    # every trial and every statement with a population tree has a section
    assert text.count("\n### ") == len({line for line in text.splitlines() if line.startswith("### ")})
    assert "*wording only*" in text and "`excluded if " in text
