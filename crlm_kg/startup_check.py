"""The structural check ``crlm-kg serve`` runs before it serves: the evidence shapes' core
constraints as SPARQL on the store already loaded.

pyshacl over the whole graph (``curation.check_evidence_shapes``) took 10 s at today's size, 88 s
at 10× and did not finish in 300 s at 100× (9.6 GB): it is the gate of ``crlm-kg check`` and CI.
At start-up, each property constraint of ``validation/evidence-shapes.ttl`` that has a direct
SPARQL form (sh:minCount, sh:maxCount, sh:datatype, sh:class, sh:in, the numeric bounds) and each
SHACL-SPARQL constraint runs as one query over every target at once, on Oxigraph. The logical
combinations (sh:or, sh:and, sh:xone, sh:not) are left to ``crlm-kg check``. Values that RDFS
entailment added (the graph ``paths.GRAPH_INFERRED``) are not counted, as pyshacl does not see them.

Class checks are MINUS, not FILTER NOT EXISTS: the instances of the class are found once rather than
once per value.

A violation stops start-up with the first offending file and line, as the full check does.

On a store read from disk (``store/persisted.py``, whose directory is named by a digest of every data file),
a pass is recorded beside it under a digest of the shapes and of this check's code: the same data checked
by the same shapes and code pass again without running the 84 queries (17 s at 100x the evidence); any
change to either is checked afresh.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import rdflib
from rdflib.collection import Collection
from rdflib.namespace import RDF, SH

from . import curation, paths
from .curation import SHAPES, ShapesViolation, _locate, _short

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
SUBCLASS = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
_BOUNDS = {SH.minInclusive: ">=", SH.maxInclusive: "<=", SH.minExclusive: ">", SH.maxExclusive: "<"}


def _stated(subject: str, predicate: str, obj: str, n: int) -> str:
    """A triple pattern that matches stated triples only (not RDFS entailments)."""
    return f"GRAPH ?g{n} {{ {subject} <{predicate}> {obj} }} FILTER(?g{n} != <{paths.GRAPH_INFERRED}>)"


def _instance(var: str, classes: list[str], n: int) -> str:
    """An instance of one of ``classes`` (a class and its subclasses, read once from the store: one
    lookup per type is far faster than the path rdf:type/rdfs:subClassOf* per node, 0.01 s against 5 s
    at 10× the evidence, and needs no entailment)."""
    return f"{var} <{RDF_TYPE}> ?t{n} . VALUES ?t{n} {{ {' '.join(f'<{c}>' for c in classes)} }}"


def _term(node: Any) -> str:
    if isinstance(node, rdflib.URIRef):
        return f"<{node}>"
    return node.n3()


def _targets(g: rdflib.Graph, shape: Any, subclasses) -> list[str]:
    targets = [_instance("?this", subclasses(c), 90 + i) for i, c in enumerate(g.objects(shape, SH.targetClass))]
    targets += [_stated("?this", str(p), "?any", 80 + i) for i, p in enumerate(g.objects(shape, SH.targetSubjectsOf))]
    targets += [_stated("?any", str(p), "?this", 70 + i) for i, p in enumerate(g.objects(shape, SH.targetObjectsOf))]
    return targets


def compile_checks(store, shapes: rdflib.Graph | None = None) -> list[tuple[str, str]]:
    """(SPARQL query answering ?this for every violating focus node, message) for each constraint compiled."""
    g = shapes if shapes is not None else rdflib.Graph().parse(SHAPES, format="turtle")

    def subclasses(cls) -> list[str]:
        rows = store.select(f"SELECT DISTINCT ?c WHERE {{ ?c <{SUBCLASS}>* <{cls}> }}")
        return sorted({str(r["c"]) for r in rows} | {str(cls)})

    prefixes = "".join(f"PREFIX {g.value(d, SH.prefix)}: <{g.value(d, SH.namespace)}>\n" for d in g.objects(None, SH.declare))
    checks: list[tuple[str, str]] = []
    for shape in set(g.subjects(RDF.type, SH.NodeShape)):
        targets = _targets(g, shape, subclasses)
        if not targets:
            continue
        target = " UNION ".join(f"{{ {t} }}" for t in targets)
        shape_message = str(g.value(shape, SH.message) or f"violates {shape}")

        def add(where: str, message: str, having: str = "") -> None:
            checks.append((f"SELECT DISTINCT ?this WHERE {{ {{ {target} }} {where} }}{having}", message))

        if (cls := g.value(shape, SH["class"])) is not None:
            add(f"MINUS {{ {_instance('?this', subclasses(cls), 1)} }}", shape_message)
        for constraint in g.objects(shape, SH.sparql):
            select = str(g.value(constraint, SH.select)).replace("$this", "?this")
            checks.append((f"{prefixes}SELECT DISTINCT ?this WHERE {{ {{ {target} }} {{ {select} }} }}",
                           str(g.value(constraint, SH.message) or shape_message)))
        for prop in g.objects(shape, SH.property):
            path = g.value(prop, SH.path)
            if not isinstance(path, rdflib.URIRef):
                continue
            message = str(g.value(prop, SH.message) or shape_message)
            value = _stated("?this", str(path), "?v", 2)
            for bound_kind, comparison in (("min", "<"), ("max", ">")):
                bound = g.value(prop, SH.minCount if bound_kind == "min" else SH.maxCount)
                if bound is not None:
                    checks.append((f"SELECT ?this WHERE {{ {{ {target} }} OPTIONAL {{ {value} }} }} GROUP BY ?this "
                                   f"HAVING (COUNT(DISTINCT ?v) {comparison} {int(bound)})", message))
            if (datatype := g.value(prop, SH.datatype)) is not None:
                add(f"{value} FILTER(!isLiteral(?v) || datatype(?v) != <{datatype}>)", message)
            if (cls := g.value(prop, SH["class"])) is not None:
                add(f"{value} MINUS {{ {_instance('?v', subclasses(cls), 3)} }}", message)
            if (allowed := g.value(prop, SH["in"])) is not None:
                add(f"{value} FILTER(?v NOT IN ({', '.join(_term(t) for t in Collection(g, allowed))}))", message)
            for predicate, op in _BOUNDS.items():
                if (bound := g.value(prop, predicate)) is not None:
                    add(f"{value} FILTER(!COALESCE(?v {op} {_term(bound)}, false))", message)
    return checks


def check_store(store) -> None:
    """Run the compiled checks on ``store``; raise ``ShapesViolation`` naming the first offending file and line."""
    problems = sorted({f"{_short(row['this'])}: {message}" for query, message in compile_checks(store) for row in store.select(query)})
    if not problems:
        return
    files = paths.evidence_files()
    located = [(problem, *_locate(problem.split(": ", 1)[0], files)) for problem in problems]
    problem, path, line = next(((p, f, n) for p, f, n in located if f is not None), (problems[0], paths.DATA_DIR, None))
    more = f" (and {len(problems) - 1} more violation{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    raise ShapesViolation(path, f"violates {paths.VALIDATION_DIR.name}/evidence-shapes.ttl: {problem}{more}", line, problems)


def _pass_marker(store) -> Path | None:
    """Where a pass of this check on this on-disk store is recorded (None: the store is in memory)."""
    path = store.capabilities.on_disk
    if path is None:
        return None
    digest = hashlib.sha256()
    for source in (SHAPES, Path(__file__), Path(curation.__file__)):
        digest.update(hashlib.sha256(Path(source).read_bytes()).digest())
    return Path(path).parent / f"startup-check-{digest.hexdigest()[:32]}.passed"


def check_store_once(store) -> None:
    """``check_store``, skipped when the same data passed it under the same shapes and code before."""
    marker = _pass_marker(store)
    if marker is not None and marker.is_file():
        return
    check_store(store)
    if marker is not None:
        try:
            marker.write_text("passed\n")
        except OSError as exc:  # a read-only store directory: checked again next time
            logging.getLogger(__name__).warning("cannot record the start-up check's pass beside the store (%s)", exc)
