"""The criteria audit: every criterion's source wording beside its machine encoding.

``crlm-kg audit-criteria`` writes ``docs/criteria-audit.md`` from the graph, so a
reviewer reads, for each trial's eligibility and each statement's population,
what the source says and what the evaluator will test — and the test suite
checks that the committed table is the one the graph gives today.
"""

from __future__ import annotations

from typing import Iterator

from ..store import Store
from .common import short
from .criteria import Criterion
from .structure import GraphStructure

HEADER = """# Criteria audit

Generated from the graph by `crlm-kg audit-criteria` (do not edit by hand; the
test suite checks that this file is current). One section per trial
(eligibility) and per evidence statement or recommendation (population); each
row is one criterion, in tree order: **group** is the all-of / any-of group it
belongs to, **source wording** the verbatim quote from **source**, **encoding**
what the evaluator tests (*wording only* means the record cannot express it:
it is screened by hand and never decides a verdict on its own).

Three-valued logic uses implied facts (`crlm_kg/evidence/derived.py`,
`IMPLICATIONS`): synchronous timing means DFI < 12 months; no extrahepatic
disease means no extrahepatic site; no prior systemic chemotherapy means no
prior agent, 0 cycles and no response to ask about.
"""


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") if text not in (None, "") else ""


def _encoding(criterion: Criterion) -> str:
    if not criterion.evaluable:
        return "*wording only*"
    return f"`{criterion.rule()}`"


def _rows(structure: GraphStructure, node: str, group: str, seen: frozenset[str]) -> Iterator[str]:
    if node in seen:
        return
    seen = seen | {node}
    if node in structure.groups:
        kind, members = structure.groups[node]
        label = f"{'all of' if kind == 'all' else 'any of'} {short(node)}"
        for member in members:
            yield from _rows(structure, member, label, seen)
        return
    criterion = structure.criteria.get(node)
    if criterion is None:
        yield f"| {_cell(short(node))} | {_cell(group)} | | | *missing criterion* | | |"
        return
    yield (f"| {_cell(short(criterion.iri))} | {_cell(group)} | {criterion.kind} | {_cell(criterion.quote)} | "
           f"{_encoding(criterion)} | {_cell(criterion.source)} | {_cell(criterion.note)} |")


def criteria_audit(store: Store) -> str:
    """The audit table as Markdown, in a stable order (trials, then statements, by label)."""
    structure = GraphStructure(store)
    lines = [HEADER]
    holders = sorted(structure.holders.values(), key=lambda h: (not h["isStudy"], h["label"].lower(), h["iri"]))
    for section, wanted in (("Trial eligibility", True), ("Statement and recommendation populations", False)):
        lines.append(f"\n## {section}\n")
        for holder in (h for h in holders if h["isStudy"] == wanted):
            lines.append(f"\n### {_cell(holder['label'])} (`{short(holder['iri'])}`)\n")
            lines.append("| criterion | group | kind | source wording | encoding | source | curation note |")
            lines.append("|---|---|---|---|---|---|---|")
            for root in holder["roots"]:
                lines.extend(_rows(structure, root, "", frozenset()))
    return "\n".join(lines) + "\n"
