"""``crlm-kg check``: every quality gate of the project in one place.

The W3C SPARQL protocol tests are not a gate here: they exercise the HTTP
service, which sits above the package, so they run in the test suite
(tests/test_w3c_protocol.py).
"""

from __future__ import annotations

from typing import Callable

from . import curation, ontology, patients
from .gates import GateResult

GATES: tuple[Callable[[], list[GateResult]], ...] = (ontology.ontology_gates, curation.evidence_gates, patients.shape_gates)


def all_gates() -> list[GateResult]:
    results: list[GateResult] = []
    for gate in GATES:
        try:
            results.extend(gate())
        except Exception as exc:  # a gate that crashes is a failed gate, not a crashed check
            results.append(GateResult(getattr(gate, "__name__", "gate"), False, f"error: {exc}", [repr(exc)]))
    return results
