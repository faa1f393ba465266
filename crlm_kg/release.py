"""``crlm-kg release``: the files a researcher downloads, loads into a triple store, opens in
Protégé and cites.

Everything is built from the repository graph (``EmbeddedStore.from_repository``), so the
dump's fingerprint is the data version the service reports. The files, flat in one folder:

* ``crlm-kg-<version>.nq.gz``: every quad in its named graph (ontology, evidence);
* ``crlm.ttl`` / ``crlm.owl``: the ontology in Turtle and RDF/XML;
* ``crlm-kg-merged.owl``: ontology and evidence in one OWL ontology (RDF/XML), for Protégé
  and HermiT when one file is wanted;
* ``crlm-kg-data.owl`` + ``catalog-v001.xml``: the evidence alone, ``owl:imports`` the
  ontology, which the catalog (Protégé reads it from the opened file's folder) maps to ``crlm.owl``;
* ``patient-context.jsonld``, ``patient-shapes.ttl``, ``evidence-shapes.ttl``;
* ``void.ttl``: a VoID/DCAT description with counts, licence, version and the graph's hash;
* ``ontology-diff.md`` (with ``--previous``): terms added, changed, obsoleted since the previous ontology;
* ``SHA256SUMS``: the checksum of every other file (``sha256sum -c SHA256SUMS``).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pyoxigraph as ox
import rdflib
from rdflib.namespace import DCAT, DCTERMS, OWL, RDF, RDFS, VOID, XSD

from . import __version__, paths
from .graphs import to_rdflib
from .ontology_terms import diff_markdown, ontology_diff
from .store import EmbeddedStore

SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")
DCAT_VERSION = rdflib.URIRef(str(DCAT) + "version")  # DCAT 3; rdflib's namespace predates it
CC_BY = rdflib.URIRef("https://creativecommons.org/licenses/by/4.0/")
BASE = "https://w3id.org/crlm-kg/"
MERGED_IRI = BASE + "merged"
DATA_IRI = BASE + "data"
CATALOG = "catalog-v001.xml"
CHECKSUMS = "SHA256SUMS"
MEDIA_TYPES = {".gz": "application/n-quads+gzip", ".ttl": "text/turtle", ".owl": "application/rdf+xml",
               ".jsonld": "application/ld+json", ".xml": "application/xml"}
COPIED = [(paths.VALIDATION_DIR / "patient-context.jsonld", "patient-context.jsonld"),
          (paths.VALIDATION_DIR / "patient-shapes.ttl", "patient-shapes.ttl"),
          (paths.VALIDATION_DIR / "evidence-shapes.ttl", "evidence-shapes.ttl")]


def dump_name(version: str = __version__) -> str:
    return f"crlm-kg-{version}.nq.gz"


def release_iri(version: str = __version__) -> rdflib.URIRef:
    return rdflib.URIRef(f"{BASE}release/{version}")


def build_release(out: Path, store: EmbeddedStore | None = None, previous: str | Path | None = None) -> list[Path]:
    """Write every release file into ``out`` (created; files of the same names replaced) and return them.

    ``previous`` (a crlm.ttl file or a git tag/ref of this repository) adds ``ontology-diff.md``."""
    store = store if store is not None else EmbeddedStore.from_repository()
    out.mkdir(parents=True, exist_ok=True)
    quads = list(ox.parse(store.dump(), format=ox.RdfFormat.N_QUADS))
    ontology = to_rdflib(q for q in quads if q.graph_name == ox.NamedNode(paths.GRAPH_ONTOLOGY))
    evidence = to_rdflib(q for q in quads if q.graph_name == ox.NamedNode(paths.GRAPH_EVIDENCE))

    written = [_write_dump(out / dump_name(), store.dump())]
    shutil.copyfile(paths.ONTOLOGY_TTL, out / "crlm.ttl")
    written.append(out / "crlm.ttl")
    written.append(_serialize(ontology, out / "crlm.owl"))
    written.append(_serialize(merged_ontology(ontology, evidence), out / "crlm-kg-merged.owl"))
    written.append(_serialize(data_ontology(evidence), out / "crlm-kg-data.owl"))
    written.append(write_catalog(out / CATALOG, ontology))
    for source, name in COPIED:
        shutil.copyfile(source, out / name)
        written.append(out / name)
    if previous is not None:
        written.append(write_ontology_diff(out / "ontology-diff.md", previous_ontology(previous), ontology, str(previous)))
    fingerprint = store.fingerprint()
    # the dump is what the store serves: with the RDFS entailments of graph/inferred when the store holds them
    graphs = (paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE) + tuple(g for g in (paths.GRAPH_INFERRED,) if any(q.graph_name.value == g for q in quads))
    counts = {g: sum(1 for q in quads if q.graph_name == ox.NamedNode(g)) for g in graphs}
    written.append(_serialize(void_description(fingerprint, counts, written), out / "void.ttl", "turtle"))
    written.append(write_checksums(out, written))
    return written


def previous_ontology(previous: str | Path) -> rdflib.Graph:
    """The ontology of an earlier version: a Turtle file, or ``ontology/crlm.ttl`` at a git tag/ref."""
    if Path(previous).is_file():
        return rdflib.Graph().parse(Path(previous), format="turtle")
    relative = paths.ONTOLOGY_TTL.relative_to(paths.ROOT).as_posix()
    proc = subprocess.run(["git", "show", f"{previous}:{relative}"], cwd=paths.ROOT, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise ValueError(f"previous ontology {previous!r}: neither a file nor a git ref ({proc.stderr.decode(errors='replace').strip()})")
    return rdflib.Graph().parse(data=proc.stdout, format="turtle")


def write_ontology_diff(target: Path, old: rdflib.Graph, new: rdflib.Graph, old_name: str) -> Path:
    target.write_text(diff_markdown(ontology_diff(old, new), new, old_name, __version__), encoding="utf-8")
    return target


def _write_dump(target: Path, nquads: bytes) -> Path:
    # sorted lines and mtime 0: the same graph gives the same bytes, so the file's checksum is stable too
    lines = sorted(line for line in nquads.splitlines() if line.strip())
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(b"\n".join(lines) + b"\n")
    return target


def _serialize(graph: rdflib.Graph, target: Path, format: str = "xml") -> Path:
    graph.serialize(target, format=format, encoding="utf-8")
    return target


def _ontology_iri(graph: rdflib.Graph) -> rdflib.URIRef:
    return rdflib.URIRef(paths.ONTOLOGY_IRI) if (rdflib.URIRef(paths.ONTOLOGY_IRI), RDF.type, OWL.Ontology) in graph \
        else next(graph.subjects(RDF.type, OWL.Ontology))


def _declare_individuals(graph: rdflib.Graph, evidence: rdflib.Graph) -> None:
    """OWL 2 DL wants individuals declared: every typed IRI node of the evidence is an owl:NamedIndividual."""
    for subject, cls in evidence.subject_objects(RDF.type):
        if isinstance(subject, rdflib.URIRef) and cls != OWL.NamedIndividual:
            graph.add((subject, RDF.type, OWL.NamedIndividual))


def merged_ontology(ontology: rdflib.Graph, evidence: rdflib.Graph) -> rdflib.Graph:
    """Ontology and evidence as one OWL ontology of its own IRI (the ontology's header, renamed)."""
    source = _ontology_iri(ontology)
    merged_iri = rdflib.URIRef(MERGED_IRI)
    graph = rdflib.Graph()
    for s, p, o in ontology:
        if s == source:
            if p == OWL.versionIRI:
                graph.add((merged_iri, p, rdflib.URIRef(f"{MERGED_IRI}/{__version__}")))
            elif p == DCTERMS.title:
                graph.add((merged_iri, p, rdflib.Literal(f"{o} with its curated evidence", lang=o.language)))
            elif p != OWL.versionInfo:
                graph.add((merged_iri, p, o))
        else:
            graph.add((s, p, o))
    graph.add((merged_iri, OWL.versionInfo, rdflib.Literal(__version__)))
    graph.add((merged_iri, RDFS.comment, rdflib.Literal(
        f"crlm-kg release {__version__}: the ontology {source} and the curated evidence in one file.", lang="en")))
    graph += evidence
    _declare_individuals(graph, evidence)
    _bind(graph)
    return graph


def data_ontology(evidence: rdflib.Graph) -> rdflib.Graph:
    """The evidence as an OWL ontology that imports the ontology (resolved through the catalog)."""
    graph = rdflib.Graph()
    iri = rdflib.URIRef(DATA_IRI)
    graph.add((iri, RDF.type, OWL.Ontology))
    graph.add((iri, OWL.versionIRI, rdflib.URIRef(f"{DATA_IRI}/{__version__}")))
    graph.add((iri, OWL.versionInfo, rdflib.Literal(__version__)))
    graph.add((iri, OWL.imports, rdflib.URIRef(paths.ONTOLOGY_IRI)))
    graph.add((iri, DCTERMS.title, rdflib.Literal("crlm-kg curated evidence", lang="en")))
    graph.add((iri, DCTERMS.license, CC_BY))
    graph += evidence
    _declare_individuals(graph, evidence)
    _bind(graph)
    return graph


def write_catalog(target: Path, ontology: rdflib.Graph) -> Path:
    """An OASIS XML catalog, as Protégé writes and reads it: the ontology's IRI and version IRI → ``crlm.owl``."""
    source = _ontology_iri(ontology)
    names = [str(source)] + [str(v) for v in ontology.objects(source, OWL.versionIRI)]
    entries = "\n".join(f'    <uri id="crlm-kg release {__version__}" name={quoteattr(n)} uri="crlm.owl"/>' for n in names)
    target.write_text('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
                      '<catalog prefer="public" xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">\n'
                      f"{entries}\n</catalog>\n", encoding="utf-8")
    return target


def void_description(fingerprint: dict, graph_counts: dict[str, int], files: list[Path]) -> rdflib.Graph:
    """VoID + DCAT: the dataset, its two graphs as subsets with their triple counts, and one distribution per file."""
    g = rdflib.Graph()
    g.bind("void", VOID)
    g.bind("dcat", DCAT)
    g.bind("dcterms", DCTERMS)
    g.bind("spdx", SPDX)
    dataset = release_iri()
    version = f"{__version__}+sha256.{fingerprint['sha256'][:16]}"
    for kind in (VOID.Dataset, DCAT.Dataset):
        g.add((dataset, RDF.type, kind))
    g.add((dataset, DCTERMS.title, rdflib.Literal(f"crlm-kg {__version__}: knowledge graph of the clinical evidence for colorectal liver metastases", lang="en")))
    g.add((dataset, DCTERMS.license, CC_BY))
    g.add((dataset, DCAT_VERSION, rdflib.Literal(__version__)))
    g.add((dataset, OWL.versionInfo, rdflib.Literal(version)))
    g.add((dataset, DCTERMS.identifier, rdflib.Literal(version)))
    g.add((dataset, DCTERMS.conformsTo, rdflib.URIRef(paths.ONTOLOGY_IRI)))
    g.add((dataset, VOID.vocabulary, rdflib.URIRef(paths.CRLM)))
    g.add((dataset, VOID.uriSpace, rdflib.Literal(paths.CRLMD)))
    g.add((dataset, VOID.triples, rdflib.Literal(fingerprint["triples"], datatype=XSD.integer)))
    g.add((dataset, VOID.dataDump, rdflib.URIRef(f"{release_iri()}/{dump_name()}")))
    checksum = rdflib.BNode()
    g.add((dataset, SPDX.checksum, checksum))
    g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
    g.add((checksum, SPDX.checksumValue, rdflib.Literal(fingerprint["sha256"])))
    g.add((checksum, RDFS.comment, rdflib.Literal(
        "SHA-256 of the canonical N-Quads of the whole graph (blank nodes canonicalised, lines sorted): "
        "the hash of the data version, the same whatever file or store holds the graph", lang="en")))
    for graph_iri, count in graph_counts.items():
        subset = rdflib.URIRef(graph_iri)
        g.add((dataset, VOID.subset, subset))
        g.add((subset, RDF.type, VOID.Dataset))
        g.add((subset, VOID.triples, rdflib.Literal(count, datatype=XSD.integer)))
    for path in files:
        dist = rdflib.URIRef(f"{release_iri()}/{path.name}")
        g.add((dataset, DCAT.distribution, dist))
        g.add((dist, RDF.type, DCAT.Distribution))
        g.add((dist, DCAT.downloadURL, dist))
        g.add((dist, DCAT.mediaType, rdflib.Literal(MEDIA_TYPES.get(path.suffix, "application/octet-stream"))))
        g.add((dist, DCAT.byteSize, rdflib.Literal(path.stat().st_size, datatype=XSD.integer)))
        g.add((dist, DCTERMS.license, CC_BY))
        file_sum = rdflib.BNode()
        g.add((dist, SPDX.checksum, file_sum))
        g.add((file_sum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        g.add((file_sum, SPDX.checksumValue, rdflib.Literal(sha256_file(path))))
    return g


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(out: Path, files: list[Path]) -> Path:
    """``sha256sum`` format (two spaces, binary-safe names), so ``sha256sum -c SHA256SUMS`` checks the folder."""
    target = out / CHECKSUMS
    target.write_text("".join(f"{sha256_file(p)}  {p.name}\n" for p in sorted(files)), encoding="utf-8")
    return target


def _bind(graph: rdflib.Graph) -> None:
    for prefix, iri in paths.PREFIXES.items():
        graph.bind(prefix, iri)
