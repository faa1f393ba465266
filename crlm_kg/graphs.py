"""Reading the repository's RDF files into quads, with errors that name file and line.

Everything that loads the ontology or the evidence goes through here, so a
broken file is reported the same way by ``crlm-kg check``, by the tests and
by ``crlm-kg serve`` (which refuses to start on a partial graph).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pyoxigraph as ox

from . import paths


class DataFileError(Exception):
    """A repository file that cannot be loaded; the message names file and line."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {message}")


def parse_turtle(path: Path, graph: str) -> list[ox.Quad]:
    """Parse one Turtle file into quads of the named graph ``graph``."""
    target = ox.NamedNode(graph)
    try:
        return [
            ox.Quad(t.subject, t.predicate, t.object, target)
            for t in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)
        ]
    except SyntaxError as exc:
        raise DataFileError(path, str(exc.msg if hasattr(exc, "msg") else exc), exc.lineno) from None
    except OSError as exc:
        raise DataFileError(path, f"cannot read: {exc.strerror or exc}") from None


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


def to_rdflib(quads: Iterable[ox.Quad]):
    """The same triples as an rdflib Graph (for pyshacl and owlready2 exports)."""
    import rdflib

    graph = rdflib.Graph()
    data = ox.serialize([ox.Triple(q.subject, q.predicate, q.object) for q in quads], format=ox.RdfFormat.N_TRIPLES)
    graph.parse(data=data.decode("utf-8") if isinstance(data, bytes) else data, format="nt")
    for prefix, iri in paths.PREFIXES.items():
        graph.bind(prefix, iri)
    return graph


# --------------------------------------------------------------------------- integrity


def graph_fingerprint(store) -> dict:
    """Triple count and a canonical SHA-256 of a loaded dataset (an ``EmbeddedStore`` or a
    ``pyoxigraph.Store``): blank nodes are canonicalised, then the N-Quads lines are sorted,
    so two loads of the same files give the same hash and any added, removed or changed
    quad changes it. Used to show that fuzzing and load leave the graph untouched."""
    import hashlib

    inner = getattr(store, "store", store)
    if not isinstance(inner, ox.Store):
        raise TypeError("graph_fingerprint needs an embedded (pyoxigraph) store")
    dataset = ox.Dataset(inner)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    lines = sorted(ox.serialize(dataset, format=ox.RdfFormat.N_QUADS).splitlines())
    return {"triples": len(inner), "sha256": hashlib.sha256(b"\n".join(lines)).hexdigest()}


# --------------------------------------------------------------------------- start-up validation


class ShapesViolation(DataFileError):
    """Curated evidence that breaks ``validation/evidence-shapes.ttl``; names the file and line of
    the first offending node (``problems`` holds every violation)."""

    def __init__(self, path: Path, message: str, line: int | None, problems: list[str]):
        super().__init__(path, message, line)
        self.problems = problems


def _locate(short: str, files: list[Path]) -> tuple[Path | None, int | None]:
    """The file and line where a focus node (``crlmd:Name``, ``crlm:Name`` or a full IRI) is first written."""
    import re

    iri = short
    for prefix, base in (("crlmd:", paths.CRLMD), ("crlm:", paths.CRLM)):
        if short.startswith(prefix):
            iri = base + short[len(prefix):]
            break
    local = iri[len(paths.CRLMD):] if iri.startswith(paths.CRLMD) else None
    patterns = [re.compile(re.escape(f"<{iri}>"))]
    if local:
        patterns.append(re.compile(r"(?<![\w:-])crlmd:" + re.escape(local) + r"(?![\w-])"))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if any(p.search(line) for p in patterns):
                return path, number
    return None, None


def check_evidence_shapes() -> None:
    """Validate the ontology and the evidence against the evidence shapes; raise
    ``ShapesViolation`` naming the file and line of the first violation. (3-5 s: pyshacl.)"""
    from .curation import shacl_report

    files = paths.evidence_files()
    conforms, problems = shacl_report(to_rdflib(ontology_quads() + evidence_quads(files)))
    if conforms:
        return
    problems = problems or ["the evidence does not conform to the evidence shapes"]
    located = [(problem, *_locate(problem.split(": ", 1)[0], files)) for problem in problems]
    first = next(((p, f, n) for p, f, n in located if f is not None), (problems[0], paths.DATA_DIR, None))
    problem, path, line = first
    more = f" (and {len(problems) - 1} more violation{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    raise ShapesViolation(path, f"violates {paths.VALIDATION_DIR.name}/evidence-shapes.ttl: {problem}{more}", line, problems)
