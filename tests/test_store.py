"""The Store protocol: every method callers need, on the embedded backend (tests/test_virtuoso.py
runs the same calls on a remote one)."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from crlm_kg import paths
from crlm_kg.store import IRI, EmbeddedStore, QueryError, Store

G1, G2 = ox.NamedNode("http://example.org/g1"), ox.NamedNode("http://example.org/g2")
A, B, P = ox.NamedNode("http://example.org/a"), ox.NamedNode("http://example.org/b"), ox.NamedNode("http://example.org/p")


@pytest.fixture()
def small() -> EmbeddedStore:
    return EmbeddedStore([
        ox.Quad(A, P, ox.Literal("1", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")), G1),
        ox.Quad(A, P, B, G1),
        ox.Quad(B, P, ox.BlankNode(), G2),
    ])


def test_embedded_store_implements_the_protocol(small):
    assert isinstance(small, Store)
    assert small.name == "embedded"
    caps = small.capabilities
    assert caps.in_process and caps.endpoint is None and caps.dialect == "standard"
    assert caps.dataset_graphs == (G1.value, G2.value)


def test_select_ask_and_construct_over_the_union_of_named_graphs(small):
    rows = small.select("SELECT ?o WHERE { ?s ?p ?o } ORDER BY ?o", {"s": IRI(A.value)})
    assert sorted(map(str, (r["o"] for r in rows))) == ["1", B.value]
    assert any(r["o"] == 1 for r in rows) and any(r["o"] == IRI(B.value) for r in rows)
    assert small.ask("ASK WHERE { ?s ?p ?o }", {"s": IRI(B.value)})
    assert not small.ask("ASK WHERE { ?s ?p ?o }", {"s": IRI("http://example.org/none")})
    triples = small.construct("CONSTRUCT { ?o ?p ?s } WHERE { ?s ?p ?o FILTER(isIRI(?o)) }")
    assert triples == [ox.Triple(B, P, A)]


def test_parameters_are_bound_in_the_where_clause_not_in_a_comment_or_string_naming_one(small):
    """The VALUES block goes after the first WHERE { that is query text: a comment (or a string) saying
    "WHERE {" before it once received the block and left the parameter unbound."""
    query = ('# e.g. SELECT ?o WHERE { ?s ?p ?o }\n'
             'SELECT ?o ("WHERE {" AS ?note) WHERE { ?s ?p ?o } ORDER BY ?o')
    rows = small.select(query, {"s": IRI(B.value)})
    assert len(rows) == 1 and rows[0]["note"] == "WHERE {" and not isinstance(rows[0]["o"], (int, IRI))


def test_methods_refuse_the_wrong_query_form(small):
    with pytest.raises(QueryError):
        small.select("ASK { ?s ?p ?o }")
    with pytest.raises(QueryError):
        small.ask("SELECT * WHERE { ?s ?p ?o }")
    with pytest.raises(QueryError):
        small.construct("SELECT * WHERE { ?s ?p ?o }")
    with pytest.raises(QueryError, match="syntax"):
        small.select("SELECT WHERE")


def test_dump_round_trips_and_fingerprint_is_canonical(small):
    copy = EmbeddedStore.from_nquads(small.dump())
    assert copy.triple_count() == small.triple_count() == 3
    assert copy.fingerprint() == small.fingerprint()  # fresh blank-node ids, same hash
    assert small.fingerprint()["triples"] == 3 and len(small.fingerprint()["sha256"]) == 64
    changed = EmbeddedStore([*ox.parse(small.dump(), format=ox.RdfFormat.N_QUADS), ox.Quad(B, P, A, G2)])
    assert changed.fingerprint() != small.fingerprint()
    moved = EmbeddedStore(ox.Quad(q.subject, q.predicate, q.object, G2) for q in ox.parse(small.dump(), format=ox.RdfFormat.N_QUADS))
    assert moved.fingerprint() != small.fingerprint()  # the graph a triple is in counts


def test_repository_store_holds_both_graphs(repo_store):
    assert set(repo_store.capabilities.dataset_graphs) == {paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED}
    assert repo_store.fingerprint()["triples"] == repo_store.triple_count() > 10000
