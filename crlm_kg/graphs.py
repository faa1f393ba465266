"""Reading the repository's RDF files into quads, with errors that name file and line.

Everything that loads the ontology or the evidence goes through here, so a
broken file is reported the same way by ``crlm-kg check``, by the tests and
by ``crlm-kg serve`` (which refuses to start on a partial graph).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import pyoxigraph as ox
import rdflib

from . import paths


class DataFileError(Exception):
    """A repository file that cannot be loaded; the message names file and line."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        self.reason = message
        where = f"{self.path}" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {message}")


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Oxigraph's errors on one file, as a ``DataFileError`` that names file and line."""
    try:
        yield
    except SyntaxError as exc:
        raise DataFileError(path, str(exc.msg if hasattr(exc, "msg") else exc), exc.lineno) from None
    except OSError as exc:
        raise DataFileError(path, f"cannot read: {exc.strerror or exc}") from None


def parse_turtle(path: Path, graph: str) -> list[ox.Quad]:
    """Parse one Turtle file into quads of the named graph ``graph``."""
    target = ox.NamedNode(graph)
    with _reading(path):
        return [
            ox.Quad(t.subject, t.predicate, t.object, target)
            for t in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)
        ]


def ontology_quads() -> list[ox.Quad]:
    return parse_turtle(paths.ONTOLOGY_TTL, paths.GRAPH_ONTOLOGY)


def evidence_quads(files: Iterable[Path] | None = None) -> list[ox.Quad]:
    quads: list[ox.Quad] = []
    for path in files if files is not None else paths.evidence_files():
        quads.extend(parse_turtle(path, paths.GRAPH_EVIDENCE))
    return quads


def all_quads() -> list[ox.Quad]:
    """The ontology and the curated evidence, each in its own named graph."""
    return ontology_quads() + evidence_quads()


# --------------------------------------------------------------------------- inference

#: RDFS entailment as SPARQL CONSTRUCTs, in an order that reaches the fixpoint in one pass:
#: rdfs7 (a triple of a sub-property entails the triple of every super-property) first, then
#: rdfs9 (an instance of a class is an instance of every superclass) over its output. Only IRI
#: superclasses: OWL restrictions are blank nodes and no one asks for their instances. Domain and
#: range (rdfs2/3) are left out on purpose: they would type every node a property touches.
_RDFS_PREFIX = f"PREFIX rdfs: <{paths.PREFIXES['rdfs']}>\n"
RDFS_RULES = (
    """CONSTRUCT { ?s ?super ?o } WHERE {
  ?p rdfs:subPropertyOf+ ?super . FILTER(isIRI(?super) && ?super != ?p)
  ?s ?p ?o . FILTER NOT EXISTS { ?s ?super ?o } }""",
    """CONSTRUCT { ?x a ?super } WHERE {
  ?x a ?class . ?class rdfs:subClassOf+ ?super . FILTER(isIRI(?super) && ?super != ?class)
  FILTER NOT EXISTS { ?x a ?super } }""",
)


def rdfs_entailments(quads: Iterable[ox.Quad]) -> list[ox.Quad]:
    """The triples RDFS entails from ``quads`` that they do not already hold, in the named graph
    ``paths.GRAPH_INFERRED``: so a plain ``?s a crlm:RandomisedControlledTrial`` finds the phase-3
    trials too, and ``crlm:sampleSize`` the randomised counts. Pyoxigraph's SPARQL computes it
    in tens of milliseconds (owlrl takes seconds on the same graph)."""
    store = ox.Store()
    store.extend(quads)
    target = ox.NamedNode(paths.GRAPH_INFERRED)
    inferred: list[ox.Quad] = []
    for rule in RDFS_RULES:
        new = [ox.Quad(t.subject, t.predicate, t.object, target)
               for t in store.query(_RDFS_PREFIX + rule, use_default_graph_as_union=True)]
        store.extend(new)  # the next rule sees this one's conclusions
        inferred.extend(new)
    return list(dict.fromkeys(inferred))


def load_repository(store: ox.Store) -> None:
    """Load what ``repository_quads`` returns straight into ``store``: each file parsed by Oxigraph into its named
    graph, and the RDFS entailments added rule by rule, without a Python object per quad (at 100x the evidence,
    2.7 M quads as Python objects took minutes and gigabytes)."""
    files = [(paths.ONTOLOGY_TTL, paths.GRAPH_ONTOLOGY)] + [(path, paths.GRAPH_EVIDENCE) for path in paths.evidence_files()]
    for path, graph in files:
        with _reading(path):
            store.load(path=str(path), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(graph))
    target = ox.NamedNode(paths.GRAPH_INFERRED)
    for rule in RDFS_RULES:  # in order: the next rule sees this one's conclusions (as in rdfs_entailments)
        entailed = store.query(_RDFS_PREFIX + rule, use_default_graph_as_union=True)
        store.load(entailed.serialize(format=ox.RdfFormat.N_TRIPLES), format=ox.RdfFormat.N_TRIPLES, to_graph=target)


def repository_quads() -> list[ox.Quad]:
    """What the stores serve: the ontology, the evidence and their RDFS entailments, each in its named graph."""
    quads = all_quads()
    return quads + rdfs_entailments(quads)


def to_rdflib(quads: Iterable[ox.Quad]):
    """The same triples as an rdflib Graph (for pyshacl and owlready2 exports)."""
    graph = rdflib.Graph()
    data = ox.serialize([ox.Triple(q.subject, q.predicate, q.object) for q in quads], format=ox.RdfFormat.N_TRIPLES)
    graph.parse(data=data.decode("utf-8") if isinstance(data, bytes) else data, format="nt")
    for prefix, iri in paths.PREFIXES.items():
        graph.bind(prefix, iri)
    return graph


# --------------------------------------------------------------------------- integrity


_HASH_SLICE = 1 << 16  # sorted N-Quads lines hashed per slice (joining them all would be one more copy)


def fingerprint(quads: Iterable[ox.Quad]) -> dict:
    """Triple count and a canonical SHA-256 of a dataset (any iterable of quads, a
    ``pyoxigraph.Store`` included): blank nodes are canonicalised, then the N-Quads lines are
    sorted, so two loads of the same files give the same hash and any added, removed or changed
    quad changes it. Used to show that fuzzing and load leave the graph untouched."""
    dataset = ox.Dataset(quads)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    triples = len(dataset)
    data = ox.serialize(dataset, format=ox.RdfFormat.N_QUADS)
    del dataset  # each copy freed as soon as the next exists: at 100x the evidence each is a gigabyte or two
    lines = data.splitlines()
    del data
    lines.sort()
    # the SHA-256 of the sorted lines joined by newlines, fed in slices rather than joined into one more copy
    digest = hashlib.sha256()
    for start in range(0, len(lines), _HASH_SLICE):
        if start:
            digest.update(b"\n")
        digest.update(b"\n".join(lines[start:start + _HASH_SLICE]))
    return {"triples": triples, "sha256": digest.hexdigest()}

