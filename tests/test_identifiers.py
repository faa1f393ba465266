"""DOIs, PubMed ids and registry ids: their forms, their IRIs beside them, the shapes that hold both,
and the record of where each identifier was verified (docs/references.md)."""

from __future__ import annotations

import re
from functools import cache

import pyshacl
import pytest
import rdflib

from crlm_kg import identifiers, paths
from crlm_kg.store import IRI

SHAPES = paths.VALIDATION_DIR / "evidence-shapes.ttl"
REFERENCES = paths.ROOT / "docs" / "references.md"
VERIFIED_HEADING = "## Identifiers verified on public pages"
IDENTIFIERS = """
SELECT ?node ?kind ?value ?iri WHERE {
  VALUES (?kind ?link) { (crlm:doi crlm:doiIRI) (crlm:pmid crlm:pubmedIRI) (crlm:registryId crlm:registryIRI) }
  ?node ?kind ?value .
  OPTIONAL { ?node ?link ?iri }
}"""


@pytest.mark.parametrize("literal,iri", [
    ("10.1016/S0140-6736(08)60455-9", "https://doi.org/10.1016/S0140-6736(08)60455-9"),
    ("10.1097/00000658-199909000-00004", "https://doi.org/10.1097/00000658-199909000-00004"),
])
def test_a_doi_links_to_doi_org(literal, iri):
    assert identifiers.doi_iri(literal) == iri


@pytest.mark.parametrize("literal,iri", [
    ("NCT00006479", "https://clinicaltrials.gov/study/NCT00006479"),
    ("ISRCTN22944367", "https://www.isrctn.com/ISRCTN22944367"),
    ("EudraCT 2007-007863-26", "https://www.clinicaltrialsregister.eu/ctr-search/search?query=eudract_number:2007-007863-26"),
    ("UMIN000010209", "https://trialsearch.who.int/Trial2.aspx?TrialID=JPRN-UMIN000010209"),
    ("jRCTs031180112", "https://jrct.niph.go.jp/latest-detail/jRCTs031180112"),
])
def test_a_registry_id_links_to_its_registry(literal, iri):
    assert identifiers.registry_iri(literal) == iri


def test_a_pmid_links_to_pubmed():
    assert identifiers.pubmed_iri("10615075") == "https://pubmed.ncbi.nlm.nih.gov/10615075/"


@pytest.mark.parametrize("build,literal", [
    (identifiers.doi_iri, "https://doi.org/10.1016/x"), (identifiers.doi_iri, "doi:10.1016/x"), (identifiers.doi_iri, "10.1016/a b"),
    (identifiers.pubmed_iri, "PMID 10615075"), (identifiers.pubmed_iri, "0123"),
    (identifiers.registry_iri, "NCT0000647"), (identifiers.registry_iri, "nct00006479"), (identifiers.registry_iri, "2007-007863-26"),
])
def test_a_malformed_identifier_gets_no_iri(build, literal):
    with pytest.raises(identifiers.BadIdentifier):
        build(literal)


def test_iri_lines_are_written_once_beside_their_literals():
    text = ('crlmd:S a crlm:Study ;\n    crlm:registryId "NCT00006479" , "UMIN000010209" ;\n    rdfs:label "S" .\n'
            'crlmd:P a crlm:JournalArticle ;\n    crlm:pmid "10615075" .\n')
    once = identifiers.with_iris(text)
    assert identifiers.with_iris(once) == once  # idempotent
    graph = rdflib.Graph().parse(data="@prefix crlm: <%s> . @prefix crlmd: <%s> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n%s"
                                 % (paths.CRLM, paths.CRLMD, once), format="turtle")
    crlm = rdflib.Namespace(paths.CRLM)
    assert set(graph.objects(rdflib.URIRef(paths.CRLMD + "S"), crlm.registryIRI)) == {
        rdflib.URIRef("https://clinicaltrials.gov/study/NCT00006479"), rdflib.URIRef("https://trialsearch.who.int/Trial2.aspx?TrialID=JPRN-UMIN000010209")}
    assert graph.value(rdflib.URIRef(paths.CRLMD + "P"), crlm.pubmedIRI) == rdflib.URIRef("https://pubmed.ncbi.nlm.nih.gov/10615075/")
    stale = once.replace("NCT00006479>", "NCT00006470>")
    assert identifiers.with_iris(stale) == once  # a stale IRI line is rewritten, not kept beside the new one


def test_the_curated_files_carry_their_iris():
    assert identifiers.stale_files() == []


def test_every_identifier_in_the_graph_has_its_iri(repo_store):
    rows = repo_store.select(IDENTIFIERS)
    kinds = {str(r["kind"]).rsplit("#", 1)[-1] for r in rows}
    assert kinds == {"doi", "pmid", "registryId"}
    expected: dict[tuple[str, str], set[str]] = {}
    found: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        kind = str(r["kind"]).rsplit("#", 1)[-1]
        expected.setdefault((str(r["node"]), kind), set()).add(identifiers.LINKS[kind][1](str(r["value"])))
        found.setdefault((str(r["node"]), kind), set())
        if "iri" in r:
            found[(str(r["node"]), kind)].add(r["iri"].value if isinstance(r["iri"], IRI) else str(r["iri"]))
    assert found == expected


# --- the shapes -------------------------------------------------------------------------------------

PREFIXES = f"@prefix crlm: <{paths.CRLM}> .\n@prefix d: <{paths.CRLMD}> .\n"


@cache
def shapes() -> rdflib.Graph:
    return rdflib.Graph().parse(SHAPES, format="turtle")


def shape_messages(turtle: str) -> list[str]:
    data = rdflib.Graph().parse(data=PREFIXES + turtle, format="turtle")
    conforms, results, _ = pyshacl.validate(data, shacl_graph=shapes(), inference="none", advanced=True)
    messages = [str(m) for m in results.objects(None, rdflib.URIRef("http://www.w3.org/ns/shacl#resultMessage"))]
    assert conforms == (messages == []), messages
    return messages


def test_identifiers_with_their_iris_conform():
    assert shape_messages("""
        d:P crlm:doi "10.1093/annonc/mdu580" ; crlm:doiIRI <https://doi.org/10.1093/annonc/mdu580> ;
            crlm:pmid "10615075" ; crlm:pubmedIRI <https://pubmed.ncbi.nlm.nih.gov/10615075/> .
        d:S crlm:registryId "EudraCT 2007-007863-26" , "UMIN000010209" ;
            crlm:registryIRI <https://www.clinicaltrialsregister.eu/ctr-search/search?query=eudract_number:2007-007863-26> ,
                             <https://trialsearch.who.int/Trial2.aspx?TrialID=JPRN-UMIN000010209> .""") == []


@pytest.mark.parametrize("turtle,needle", [
    ('d:P crlm:doi "https://doi.org/10.1093/annonc/mdu580" ; crlm:doiIRI <https://doi.org/https://doi.org/10.1093/annonc/mdu580> .',
     "crlm:doi must be a DOI"),
    ('d:P crlm:doi "10.1093/annonc/mdu580" .', "has no crlm:doiIRI <https://doi.org/10.1093/annonc/mdu580>"),
    ('d:P crlm:doi "10.1093/annonc/mdu580" ; crlm:doiIRI <https://doi.org/10.1093/annonc/mdu581> .', "has no crlm:doiIRI"),
    ('d:P crlm:pmid 10615075 ; crlm:pubmedIRI <https://pubmed.ncbi.nlm.nih.gov/10615075/> .', "crlm:pmid must be"),
    ('d:P crlm:pmid "10615075" .', "has no crlm:pubmedIRI"),
    ('d:S crlm:registryId "NCT 00006479" .', "crlm:registryId must be"),
    ('d:S crlm:registryId "NCT00006479" .', "has no crlm:registryIRI <https://clinicaltrials.gov/study/NCT00006479>"),
    ('d:S crlm:registryId "ISRCTN22944367" ; crlm:registryIRI <https://clinicaltrials.gov/study/ISRCTN22944367> .', "has no crlm:registryIRI"),
    ('d:S crlm:registryIRI <https://clinicaltrials.gov/study/NCT00006479> .', "without the identifier literal"),
    ('d:S crlm:doiIRI "https://doi.org/10.1093/annonc/mdu580" .', "crlm:doiIRI is an IRI"),
])
def test_a_bad_or_unlinked_identifier_breaks_the_shapes(turtle, needle):
    messages = shape_messages(turtle)
    assert any(needle in m for m in messages), messages
    assert not any("{" in m for m in messages), messages


# --- the verification record ------------------------------------------------------------------------

def verified_rows() -> list[dict[str, str]]:
    """The rows of docs/references.md's table of identifiers verified on public pages."""
    text = REFERENCES.read_text(encoding="utf-8")
    assert VERIFIED_HEADING in text
    section = text.split(VERIFIED_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("node", "") and not set(cells[0]) <= {"-"}:
            rows.append(dict(zip(("node", "kind", "identifier", "verified_at"), cells)))
    return rows


def test_every_identifier_is_in_the_record_of_where_it_was_verified(repo_store):
    """An identifier from the checked table (top of references.md) or from the table of identifiers
    verified since, with the page that shows it; none in the graph is unaccounted for."""
    text = REFERENCES.read_text(encoding="utf-8")
    checked_table = text.split(VERIFIED_HEADING, 1)[0]
    recorded = {(r["node"], r["kind"], r["identifier"]) for r in verified_rows()}
    missing = []
    for r in repo_store.select(IDENTIFIERS):
        node, kind, value = str(r["node"]).removeprefix(paths.CRLMD), str(r["kind"]).rsplit("#", 1)[-1], str(r["value"])
        if value not in checked_table and (node, kind, value) not in recorded:
            missing.append((node, kind, value))
    assert missing == []


def test_each_recorded_verification_names_a_page_and_is_in_the_graph(repo_store):
    rows = verified_rows()
    assert rows, "the table of verified identifiers is empty"
    for row in rows:
        assert row["kind"] in identifiers.LINKS, row
        assert re.match(r"^https?://\S+$", row["verified_at"]), row
        assert repo_store.ask("ASK WHERE { ?node ?kind ?value }", {"node": IRI(paths.CRLMD + row["node"]), "kind": IRI(paths.CRLM + row["kind"]),
                                                              "value": row["identifier"]}), row

