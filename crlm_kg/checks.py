"""``crlm-kg check``: every quality gate of the project in one place."""

from __future__ import annotations

from .ontology import GateResult, ontology_gates


def all_gates() -> list[GateResult]:
    results = ontology_gates()
    for gate in _optional_gates():
        try:
            results.extend(gate())
        except Exception as exc:  # a gate that crashes is a failed gate, not a crashed check
            results.append(GateResult(getattr(gate, "__name__", "gate"), False, f"error: {exc}", [repr(exc)]))
    return results


def _optional_gates():
    from . import curation

    yield curation.evidence_gates
    try:
        from . import patients
    except ImportError:
        return
    yield patients.shape_gates
    try:
        from api import protocol_tests
    except ImportError:
        return
    yield protocol_tests.protocol_gates
