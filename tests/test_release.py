"""``crlm-kg release``: the dump reloads to the served graph's fingerprint (in pyoxigraph, and with
the same triple count in Virtuoso), the merged OWL file passes the OWL API and HermiT, the
imports + catalog pair resolves, the VoID/DCAT description states counts, licence, version and
hash, and SHA256SUMS checks every file."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, OWL, RDF, VOID

from crlm_kg import __version__, cli, ontology, paths
from crlm_kg.release import CATALOG, CC_BY, DATA_IRI, MERGED_IRI, SPDX, build_release, dump_name, release_iri
from crlm_kg.store import EmbeddedStore
from crlm_kg.versions import data_version

CATALOG_NS = "{urn:oasis:names:tc:entity:xmlns:xml:catalog}"


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "dist"
    assert cli.main(["release", "--out", str(out)]) == 0
    return out


def _dump_quads(dist: Path) -> list[ox.Quad]:
    return list(ox.parse(gzip.decompress((dist / dump_name()).read_bytes()), format=ox.RdfFormat.N_QUADS))


def _void(dist: Path) -> rdflib.Graph:
    return rdflib.Graph().parse(dist / "void.ttl", format="turtle")


def _checksums(dist: Path) -> dict[str, str]:
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in (dist / "SHA256SUMS").read_text().splitlines()}


def tiny_store() -> EmbeddedStore:
    onto, ev = ox.NamedNode(paths.GRAPH_ONTOLOGY), ox.NamedNode(paths.GRAPH_EVIDENCE)
    rdf_type = ox.NamedNode(str(RDF.type))
    return EmbeddedStore([
        ox.Quad(ox.NamedNode(paths.ONTOLOGY_IRI), rdf_type, ox.NamedNode(str(OWL.Ontology)), onto),
        ox.Quad(ox.NamedNode(paths.CRLM + "Study"), rdf_type, ox.NamedNode(str(OWL.Class)), onto),
        ox.Quad(ox.NamedNode(paths.CRLMD + "S1"), rdf_type, ox.NamedNode(paths.CRLM + "Study"), ev),
        ox.Quad(ox.NamedNode(paths.CRLMD + "S1"), ox.NamedNode(paths.PREFIXES["rdfs"] + "label"), ox.Literal("one study"), ev),
    ])


# ------------------------------------------------------------------ fast: a four-quad graph


def test_release_of_a_small_graph(tmp_path):
    store = tiny_store()
    written = build_release(tmp_path, store)
    assert {p.name for p in written} == {p.name for p in tmp_path.iterdir()}
    assert sorted(_checksums(tmp_path)) == sorted(p.name for p in written if p.name != "SHA256SUMS")
    assert EmbeddedStore(_dump_quads(tmp_path)).fingerprint() == store.fingerprint()
    void = _void(tmp_path)
    assert int(void.value(release_iri(), VOID.triples)) == 4
    assert int(void.value(rdflib.URIRef(paths.GRAPH_EVIDENCE), VOID.triples)) == 2
    merged = rdflib.Graph().parse(tmp_path / "crlm-kg-merged.owl", format="xml")
    assert (rdflib.URIRef(MERGED_IRI), RDF.type, OWL.Ontology) in merged
    assert (rdflib.URIRef(paths.CRLMD + "S1"), RDF.type, OWL.NamedIndividual) in merged  # declared for OWL 2 DL


def test_checksums_detect_a_changed_file(tmp_path):
    build_release(tmp_path, tiny_store())
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=tmp_path).returncode == 0
    with open(tmp_path / "patient-shapes.ttl", "a") as handle:
        handle.write("# changed\n")
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True).returncode != 0


# ------------------------------------------------------------------ slow: the repository's release


@pytest.mark.slow
def test_every_artifact_is_written_and_checksummed(dist):
    names = {p.name for p in dist.iterdir()}
    assert names == {dump_name(), "crlm.ttl", "crlm.owl", "crlm-kg-merged.owl", "crlm-kg-data.owl", CATALOG,
                     "patient-context.jsonld", "patient-shapes.ttl", "evidence-shapes.ttl", "void.ttl", "SHA256SUMS"}
    assert set(_checksums(dist)) == names - {"SHA256SUMS"}
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=dist).returncode == 0
    assert rdflib.Graph().parse(dist / "crlm.owl", format="xml").isomorphic(rdflib.Graph().parse(dist / "crlm.ttl", format="turtle"))


@pytest.mark.slow
def test_dump_loads_into_a_fresh_store_with_the_served_fingerprint(dist, repo_store):
    fresh = ox.Store()
    with gzip.open(dist / dump_name()) as stream:  # as a user would: pyoxigraph reads the decompressed stream
        fresh.load(stream, format=ox.RdfFormat.N_QUADS)
    reloaded = EmbeddedStore(fresh)
    assert reloaded.fingerprint() == repo_store.fingerprint()
    assert data_version(reloaded).label == data_version(repo_store).label
    assert {g.value for g in fresh.named_graphs()} == {paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED}


@pytest.mark.slow
def test_void_describes_counts_licence_version_and_hash(dist, repo_store):
    void, dataset = _void(dist), release_iri()
    fingerprint = repo_store.fingerprint()
    assert (dataset, RDF.type, VOID.Dataset) in void and (dataset, RDF.type, DCAT.Dataset) in void
    assert int(void.value(dataset, VOID.triples)) == fingerprint["triples"] == repo_store.triple_count()
    subsets = {str(s): int(void.value(s, VOID.triples)) for s in void.objects(dataset, VOID.subset)}
    assert set(subsets) == {paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED} and sum(subsets.values()) == fingerprint["triples"]
    assert void.value(dataset, DCTERMS.license) == CC_BY
    assert str(void.value(dataset, DCTERMS.identifier)) == data_version(repo_store).label
    assert str(void.value(void.value(dataset, SPDX.checksum), SPDX.checksumValue)) == fingerprint["sha256"]
    sums = _checksums(dist)
    for dist_iri in void.objects(dataset, DCAT.distribution):
        name = str(dist_iri).rsplit("/", 1)[1]
        assert str(void.value(void.value(dist_iri, SPDX.checksum), SPDX.checksumValue)) == sums[name]


@pytest.mark.slow
def test_imports_and_catalog_resolve_to_the_ontology(dist):
    data = rdflib.Graph().parse(dist / "crlm-kg-data.owl", format="xml")
    imported = set(data.objects(rdflib.URIRef(DATA_IRI), OWL.imports))
    assert imported == {rdflib.URIRef(paths.ONTOLOGY_IRI)}
    mapping = {e.get("name"): e.get("uri") for e in ET.parse(dist / CATALOG).getroot().iter(CATALOG_NS + "uri")}
    target = dist / mapping[paths.ONTOLOGY_IRI]
    onto = rdflib.Graph().parse(target, format="xml")
    assert (rdflib.URIRef(paths.ONTOLOGY_IRI), RDF.type, OWL.Ontology) in onto
    merged = rdflib.Graph().parse(dist / "crlm-kg-merged.owl", format="xml")
    headers = {rdflib.URIRef(DATA_IRI), rdflib.URIRef(paths.ONTOLOGY_IRI), rdflib.URIRef(MERGED_IRI)}
    def body(*graphs: rdflib.Graph) -> rdflib.Graph:
        out = rdflib.Graph()
        for g in graphs:
            for t in g:
                if t[0] not in headers:
                    out.add(t)
        return out

    assert isomorphic(body(data, onto), body(merged))  # the pair holds what the merged file holds


@pytest.mark.slow
def test_merged_file_loads_in_the_owl_api_without_dl_violations(dist):
    result = ontology.owlapi_gate(rdflib.Graph().parse(dist / "crlm-kg-merged.owl", format="xml"))
    if result.skipped:
        pytest.skip(result.summary)
    assert result.ok, result.problems[:20]
    assert result.summary.startswith("violations=0 unparsed=0")


@pytest.mark.slow
def test_hermit_classifies_the_merged_file(dist):
    try:
        consistent, inferred, message = ontology.hermit(rdflib.Graph().parse(dist / "crlm-kg-merged.owl", format="xml"))
    except RuntimeError as exc:
        pytest.skip(str(exc))
    assert consistent, message
    assert "Study" in inferred[paths.CRLMD + "EORTC40983"]  # classified through the hierarchy, not only as asserted


@pytest.mark.slow
@pytest.mark.virtuoso
def test_dump_loads_into_virtuoso_with_the_same_triple_count(dist, repo_store):
    from crlm_kg.store import RemoteStore, VirtuosoDialect
    from crlm_kg.virtuoso import VirtuosoError, running_virtuoso, virtuoso_available

    ok, reason = virtuoso_available()
    if not ok:
        pytest.skip(reason)
    placeholder = [ox.Quad(ox.NamedNode("urn:x:s"), ox.NamedNode("urn:x:p"), ox.Literal("o"), ox.NamedNode("urn:x:placeholder"))]
    try:
        manager = running_virtuoso(placeholder)
        v = manager.__enter__()
    except VirtuosoError as exc:
        pytest.skip(f"Virtuoso did not start: {exc}")
    try:
        load = v.directory / "release"
        load.mkdir()
        shutil.copyfile(dist / dump_name(), load / dump_name())
        # what the README tells a user to run: Virtuoso's bulk loader reads the gzipped N-Quads as they are
        v.isql(f"ld_dir('{load}', '*.nq.gz', 'urn:x:unused');\nrdf_loader_run();\ncheckpoint;")
        store = RemoteStore(v.sparql_url, graph=[paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED], dialect=VirtuosoDialect())
        try:
            assert store.triple_count() == repo_store.triple_count()
            for graph in (paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED):
                one = RemoteStore(v.sparql_url, graph=graph, dialect=VirtuosoDialect())
                expected = sum(1 for q in _dump_quads(dist) if q.graph_name.value == graph)
                assert one.triple_count() == expected
                one.close()
        finally:
            store.close()
    finally:
        manager.__exit__(None, None, None)
