"""Each remote dialect's rewrites on plain query strings (no server needed)."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from crlm_kg.settings import Settings
from crlm_kg.store import DIALECTS, RemoteStore, SparqlDialect, VirtuosoDialect, dialect_named, open_store

ORDERED_DISTINCT = """SELECT DISTINCT ?study ?time WHERE {
  ?study a crlm:Study . OPTIONAL { ?study crlm:timePoint ?time }
} ORDER BY ?study ?time LIMIT 10"""

BOOLEANS = """SELECT ?x (?n > 3 AS ?big) (EXISTS { ?x a crlm:Study } AS ?isStudy) (COUNT(?y) AS ?n2)
WHERE { ?x crlm:n ?n BIND(IF(?n > 3, true, false) AS ?flag) BIND(?n + 1 AS ?next) BIND(?flag && ?big AS ?both) }"""

QUERIES = [ORDERED_DISTINCT, BOOLEANS, "ASK { ?s ?p ?o }", "SELECT * WHERE { ?s ?p ?o } ORDER BY ?s",
           'SELECT DISTINCT ?s WHERE { ?s ?p "} ORDER BY ?x" } ORDER BY ?s']


@pytest.mark.parametrize("query", QUERIES)
def test_the_standard_dialect_sends_every_query_as_written(query):
    dialect = SparqlDialect()
    assert dialect.rewrite_select(query) == query
    assert dialect.boolean_variables(query) == frozenset()


def test_virtuoso_orders_a_distinct_query_outside_the_distinct():
    rewritten = VirtuosoDialect().rewrite_select(ORDERED_DISTINCT)
    assert rewritten != ORDERED_DISTINCT
    assert rewritten.startswith("SELECT * WHERE {\n{\nSELECT DISTINCT ?study ?time WHERE {")
    assert rewritten.rstrip().endswith("ORDER BY ?study ?time LIMIT 10")
    # the DISTINCT subquery itself carries no ORDER BY any more
    inner = rewritten[: rewritten.rindex("}")]
    assert "ORDER BY" not in inner


def test_virtuosos_rewrite_gives_the_same_rows_in_the_same_order():
    """On a standard engine (Oxigraph) the rewritten query answers exactly as the original."""
    store = ox.Store()
    data = "".join(f"<http://e/s{i}> a <http://e/Study> ; <http://e/timePoint> {t} .\n" for i in (3, 1, 2) for t in (12, 6))
    store.load(data + "<http://e/s0> a <http://e/Study> .\n", format=ox.RdfFormat.TURTLE)
    prefix = "PREFIX crlm: <http://e/>\n"

    def rows(query):
        return [[str(s[v]) for v in ("study", "time")] for s in store.query(prefix + query)]

    assert rows(VirtuosoDialect().rewrite_select(ORDERED_DISTINCT)) == rows(ORDERED_DISTINCT)
    assert len(rows(ORDERED_DISTINCT)) == 7


@pytest.mark.parametrize("query", [
    "SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s",  # no DISTINCT: nothing to work around
    "SELECT DISTINCT ?s WHERE { ?s ?p ?o }",  # no ORDER BY
    "SELECT DISTINCT ?s WHERE { ?s ?p ?o } ORDER BY ?o",  # ordered by a variable it does not project
    'SELECT DISTINCT ?s WHERE { ?s ?p "x } ORDER BY ?s" }',  # the ORDER BY is inside a string literal
])
def test_virtuoso_leaves_other_queries_alone(query):
    assert VirtuosoDialect().rewrite_select(query) == query


def test_virtuoso_reads_boolean_expressions_from_the_query_form():
    assert VirtuosoDialect().boolean_variables(BOOLEANS) == {"big", "isStudy", "flag", "both"}


def test_virtuoso_ignores_look_alikes_in_strings_iris_and_comments():
    query = '''SELECT ?label WHERE {
      BIND("a > b AS ?fake)" AS ?label)   # (?x > 1 AS ?comment)
      BIND(<http://example.org/a?x=1&y=2> AS ?iri)
    }'''
    assert VirtuosoDialect().boolean_variables(query) == frozenset()


def test_dialects_are_chosen_by_name_and_unknown_names_are_refused():
    assert set(DIALECTS) == {"standard", "virtuoso"}
    assert isinstance(dialect_named("virtuoso"), VirtuosoDialect)
    assert type(dialect_named("standard")) is SparqlDialect
    with pytest.raises(ValueError, match="unknown SPARQL dialect"):
        dialect_named("blazegraph")


@pytest.mark.parametrize("name, dialect_type", [("standard", SparqlDialect), ("virtuoso", VirtuosoDialect)])
def test_open_store_applies_the_dialect_setting(name, dialect_type):
    store = open_store(Settings(sparql_url="http://127.0.0.1:9/sparql", graph="http://a, http://b", sparql_dialect=name))
    try:
        assert isinstance(store, RemoteStore) and type(store.dialect) is dialect_type
        assert store.capabilities.dialect == name and store.capabilities.dataset_graphs == ("http://a", "http://b")
        assert store.capabilities.endpoint == "http://127.0.0.1:9/sparql" and not store.capabilities.in_process
    finally:
        store.close()


def test_the_dialect_setting_rejects_unknown_values():
    with pytest.raises(ValueError):
        Settings(sparql_dialect="blazegraph")
