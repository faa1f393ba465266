"""The SPARQL 1.1 Service Description answered by a bare ``GET /sparql``."""

from __future__ import annotations

import pyoxigraph as ox

from crlm_kg import paths

from .formats import GRAPH_TYPES

SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS = "http://www.w3.org/ns/formats/"
VOID = "http://rdfs.org/ns/void#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
FORMAT_IRIS = ["SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV", "Turtle", "N-Triples", "RDF_XML", "JSON-LD"]


XSD_INTEGER = ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")
INFERRED_NOTE = ("RDFS entailments of the ontology and evidence graphs, materialised at load and part of the default graph: "
                 "rdf:type through rdfs:subClassOf (rdfs9) and the triples of super-properties (rdfs7); no domain or range typing.")


def service_description(endpoint: str, store) -> list[ox.Triple]:
    sd = lambda name: ox.NamedNode(SD + name)  # noqa: E731
    service = ox.NamedNode(endpoint)
    triples = [
        ox.Triple(service, RDF_TYPE, sd("Service")),
        ox.Triple(service, sd("endpoint"), service),
        ox.Triple(service, sd("supportedLanguage"), sd("SPARQL11Query")),
        ox.Triple(service, sd("feature"), sd("UnionDefaultGraph")),
        ox.Triple(service, sd("feature"), sd("EmptyGraphs")),
        ox.Triple(service, ox.NamedNode("http://purl.org/dc/terms/title"), ox.Literal("crlm-kg SPARQL endpoint (read-only)")),
    ]
    triples += [ox.Triple(service, sd("resultFormat"), ox.NamedNode(FORMATS + f)) for f in FORMAT_IRIS]
    dataset, default = ox.BlankNode("dataset"), ox.BlankNode("default")
    triples += [
        ox.Triple(service, sd("defaultDataset"), dataset),
        ox.Triple(dataset, RDF_TYPE, sd("Dataset")),
        ox.Triple(dataset, sd("defaultGraph"), default),
        ox.Triple(default, RDF_TYPE, sd("Graph")),
    ]
    graphs = [paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED]
    counts: dict[str, int] = {}
    if store.capabilities.in_process:  # counting is cheap only where the data is held
        rows = store.select("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
        counts = {str(r["g"]): int(r["n"]) for r in rows}
        graphs = sorted(set(counts) | set(graphs))
        triples.append(ox.Triple(default, ox.NamedNode(VOID + "triples"), ox.Literal(str(store.triple_count()), datatype=XSD_INTEGER)))
    for i, graph in enumerate(graphs):
        named, g = ox.BlankNode(f"named{i}"), ox.BlankNode(f"graph{i}")
        triples += [
            ox.Triple(dataset, sd("namedGraph"), named),
            ox.Triple(named, RDF_TYPE, sd("NamedGraph")),
            ox.Triple(named, sd("name"), ox.NamedNode(graph)),
            ox.Triple(named, sd("graph"), g),
            ox.Triple(g, RDF_TYPE, sd("Graph")),
        ]
        if graph == paths.GRAPH_INFERRED:
            triples.append(ox.Triple(named, ox.NamedNode("http://purl.org/dc/terms/description"), ox.Literal(INFERRED_NOTE)))
        if graph in counts:
            triples.append(ox.Triple(g, ox.NamedNode(VOID + "triples"), ox.Literal(str(counts[graph]), datatype=XSD_INTEGER)))
    return triples



SD_PREFIXES = {"sd": SD, "formats": FORMATS, "void": VOID, "dcterms": "http://purl.org/dc/terms/"}


def serialize_description(endpoint: str, store, media: str) -> bytes:
    fmt = getattr(ox.RdfFormat, GRAPH_TYPES[media])
    kwargs = {"prefixes": SD_PREFIXES} if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML) else {}
    return ox.serialize(service_description(endpoint, store), format=fmt, **kwargs)
