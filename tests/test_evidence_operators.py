"""The comparison operators: one table, from which the leaf query and the named queries' logic are generated."""

from __future__ import annotations

import pytest

from crlm_kg import paths
from crlm_kg.evidence import EvidenceLookup, operators
from evidence_helpers import by_id, record, store_with


def test_table_covers_exactly_the_ontology_operators(repo_store):
    rows = repo_store.select("SELECT ?op WHERE { ?op a crlm:ComparisonOperator }")
    in_ontology = {str(r["op"])[len(paths.CRLM):] for r in rows}
    assert in_ontology == set(operators.BY_NAME)


@pytest.mark.parametrize("name", sorted(operators.NAMED_QUERY_COMPARISONS))
def test_named_queries_use_the_generated_comparison(name):
    text = (paths.QUERIES_DIR / f"{name}.rq").read_text(encoding="utf-8")
    assert operators.generated_block(name) in text, "run: python -m crlm_kg.evidence.operators"


def test_unknown_operator_is_never_a_default_comparison():
    for name in operators.NAMED_QUERY_COMPARISONS:
        block = operators.generated_block(name)
        # the innermost alternative is an unbound variable, not a comparison
        assert block.count("IF(?op = crlm:") == len(operators.OPERATORS)
        assert operators.UNBOUND + "))))))" in block
    assert operators.holds("Approximately", 3, 3) is None
    assert operators.holds("LessThan", 3, 4) is True and operators.holds("LessThan", "a", 4) is None


def test_leaf_query_reads_an_unknown_operator_as_unknown(repo_store):
    extra = """
    crlmd:OpTrial a crlm:Phase2RandomisedTrial ; rdfs:label "Operator trial" ; crlm:hasEligibility crlmd:OpTrial_E .
    crlmd:OpTrial_E a crlm:AllOfGroup ; crlm:hasMember crlmd:OpTrial_Bogus , crlmd:OpTrial_NotEqual .
    crlmd:OpTrial_Bogus a crlm:InclusionCriterion ; crlm:characteristic crlm:age ; crlm:comparison crlm:Approximately ;
        crlm:thresholdValue 65 .
    crlmd:OpTrial_NotEqual a crlm:InclusionCriterion ; crlm:characteristic crlm:age ; crlm:comparison crlm:NotEqual ;
        crlm:thresholdValue 65 .
    """
    lookup = EvidenceLookup(store_with(extra, repo_store))
    trial = by_id(lookup.evaluate(record({"id": "op", "age": 70}))["trials"], "OpTrial")
    assert by_id(trial["criteria"], "OpTrial_Bogus")["status"] == "unknown"
    assert by_id(trial["criteria"], "OpTrial_NotEqual")["status"] == "met"  # 70 != 65
    assert trial["status"] == "undetermined"
    trial = by_id(lookup.evaluate(record({"id": "op", "age": 65}))["trials"], "OpTrial")
    assert by_id(trial["criteria"], "OpTrial_NotEqual")["status"] == "not-met"
