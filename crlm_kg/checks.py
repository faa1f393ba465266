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
    yield _protocol_gates


def _protocol_gates() -> list[GateResult]:
    """The W3C protocol tests against the endpoint. Their harness is a test asset of the checkout
    (``tests/w3c_protocol_harness.py``), loaded by path: the package does not ship it or import it."""
    import importlib.util
    import sys

    from .settings import get_settings

    harness = get_settings().home / "tests" / "w3c_protocol_harness.py"
    if not harness.is_file():
        return [GateResult("W3C SPARQL protocol tests", True, f"skipped: {harness} is missing (not a checkout)", skipped=True)]
    spec = importlib.util.spec_from_file_location("crlm_kg_w3c_protocol_harness", harness)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module.protocol_gates()
