"""RDFS entailment is materialised into the inferred graph at load and answered by a plain query."""

from __future__ import annotations

import pyoxigraph as ox

from crlm_kg import paths
from crlm_kg.graphs import all_quads, rdfs_entailments
from crlm_kg.store import EmbeddedStore

O, D = paths.CRLM, paths.CRLMD
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
SUBCLASS = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#subClassOf")
SUBPROP = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#subPropertyOf")


def _count(store, query: str) -> int:
    return len({str(r["s"]) for r in store.select(query)})


def test_plain_type_query_finds_every_rct_through_the_subclass_closure(repo_store):
    plain = _count(repo_store, "SELECT DISTINCT ?s WHERE { ?s a crlm:RandomisedControlledTrial }")
    by_path = _count(repo_store, "SELECT DISTINCT ?s WHERE { ?s a/rdfs:subClassOf* crlm:RandomisedControlledTrial }")
    asserted = _count(repo_store, f"SELECT DISTINCT ?s WHERE {{ GRAPH <{paths.GRAPH_EVIDENCE}> {{ ?s a crlm:RandomisedControlledTrial }} }}")
    assert plain == by_path == 30
    assert asserted < plain  # most trials are typed only as a phase-2/3 subclass in the data
    assert repo_store.ask("ASK { crlmd:EORTC40983 a crlm:RandomisedControlledTrial , crlm:Study }")


def test_inferred_triples_live_in_their_own_graph_and_repeat_nothing(repo_store):
    assert paths.GRAPH_INFERRED in repo_store.capabilities.dataset_graphs
    duplicated = repo_store.ask(f"""ASK {{ GRAPH <{paths.GRAPH_INFERRED}> {{ ?s ?p ?o }}
        GRAPH ?g {{ ?s ?p ?o }} FILTER(?g != <{paths.GRAPH_INFERRED}>) }}""")
    assert not duplicated
    # the sub-property closure: randomised counts are sample sizes
    assert repo_store.ask("ASK { crlmd:EORTC40983 crlm:sampleSize 364 }")
    assert repo_store.ask(f"ASK {{ GRAPH <{paths.GRAPH_INFERRED}> {{ crlmd:EORTC40983 prov:wasDerivedFrom crlmd:Seed001 }} }}")


def test_entailment_rules_on_a_small_graph():
    ex = "http://example.org/"
    a, b, c, x = (ox.NamedNode(ex + n) for n in ("A", "B", "C", "x"))
    p, q, y = ox.NamedNode(ex + "p"), ox.NamedNode(ex + "q"), ox.NamedNode(ex + "y")
    g = ox.NamedNode(paths.GRAPH_EVIDENCE)
    quads = [ox.Quad(a, SUBCLASS, b, g), ox.Quad(b, SUBCLASS, c, g), ox.Quad(x, RDF_TYPE, a, g),
             ox.Quad(p, SUBPROP, q, g), ox.Quad(q, SUBPROP, RDF_TYPE, g), ox.Quad(y, p, a, g),
             ox.Quad(b, SUBCLASS, ox.BlankNode(), g)]
    inferred = {(t.subject, t.predicate, t.object) for t in rdfs_entailments(quads)}
    assert (x, RDF_TYPE, b) in inferred and (x, RDF_TYPE, c) in inferred
    assert (y, q, a) in inferred
    # q is a sub-property of rdf:type, so y is typed A, hence B and C: the rules reach the fixpoint
    assert {(y, RDF_TYPE, a), (y, RDF_TYPE, b), (y, RDF_TYPE, c)} <= inferred
    assert (x, RDF_TYPE, a) not in inferred  # asserted already
    assert all(isinstance(o, ox.NamedNode) for s, pr, o in inferred if pr == RDF_TYPE)  # no blank-node restrictions
    assert {q.graph_name.value for q in rdfs_entailments(quads)} == {paths.GRAPH_INFERRED}


def test_repository_store_is_asserted_plus_inferred():
    asserted = all_quads()
    store = EmbeddedStore.from_repository()
    assert store.triple_count() == len(set(asserted)) + len(rdfs_entailments(asserted))
