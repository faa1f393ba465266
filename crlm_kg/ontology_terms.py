"""The ontology's upper level, cross-references and versions, read from an rdflib graph.

Issue 18: an ontologist expects one recognisable upper level (BFO through the OBO
ontologies), followed cross-references, and obsolete terms handled the OBO way.
This module holds the rules and the measurements; ``crlm_kg.ontology`` runs them
as gates, ``crlm-kg stats`` prints the coverage, the release writes the diff.
It only reads graphs, so the release (a lower layer than the ontology gates) can use it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import rdflib
from rdflib.namespace import OWL, RDF, RDFS, SKOS

from . import paths
from .gates import GateResult

OBO = rdflib.Namespace("http://purl.obolibrary.org/obo/")
OBO_IN_OWL = rdflib.Namespace("http://www.geneontology.org/formats/oboInOwl#")
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
CRLM = rdflib.Namespace(paths.CRLM)
TERM_REPLACED_BY = OBO.IAO_0100001
MAPPING_VERIFIED_AT = CRLM.mappingVerifiedAt

# The documented upper level (README, section "Open it in Protégé"): the one class that
# may sit at the root of the asserted hierarchy. Obsolete classes sit at the root too, by
# OBO practice, and are not counted.
UPPER_LEVEL_ROOTS = frozenset({OBO.BFO_0000001})
MAX_ROOTS = 8

XREF_PROPERTIES = (SKOS.exactMatch, SKOS.closeMatch, SKOS.broadMatch, SKOS.narrowMatch, OBO_IN_OWL.hasDbXref)

# The branches whose mapping coverage `crlm-kg stats` prints (issue 18 names them).
MAPPED_BRANCHES = {
    "drug": CRLM.Drug,
    "disease": CRLM.Disease,
    "study design": CRLM.Study,
    "statistic": CRLM.Comparison,
    "endpoint": CRLM.Endpoint,
    "treatment": CRLM.Treatment,
}


def is_obsolete(graph: rdflib.Graph, term: rdflib.term.Node) -> bool:
    return any(value.toPython() is True for value in graph.objects(term, OWL.deprecated) if isinstance(value, rdflib.Literal))


def named_classes(graph: rdflib.Graph) -> set[rdflib.URIRef]:
    return {c for c in graph.subjects(RDF.type, OWL.Class) if isinstance(c, rdflib.URIRef)}


def named_parents(graph: rdflib.Graph, cls: rdflib.URIRef) -> set[rdflib.URIRef]:
    return {p for p in graph.objects(cls, RDFS.subClassOf) if isinstance(p, rdflib.URIRef) and p != OWL.Thing}


def root_classes(graph: rdflib.Graph) -> set[rdflib.URIRef]:
    """Classes without a named superclass, obsolete ones left out (as Protégé shows them under owl:Thing)."""
    return {c for c in named_classes(graph) if not named_parents(graph, c) and not is_obsolete(graph, c)}


def declared_prefixes(graph: rdflib.Graph) -> dict[str, str]:
    """The xref prefixes declared on the ontology header with ``sh:declare`` (prefix → namespace)."""
    onto = rdflib.URIRef(paths.ONTOLOGY_IRI)
    declared = {}
    for declaration in graph.objects(onto, SH.declare):
        prefix, namespace = graph.value(declaration, SH.prefix), graph.value(declaration, SH.namespace)
        if prefix is not None and namespace is not None:
            declared[str(prefix)] = str(namespace)
    return declared


@dataclass
class Xref:
    subject: rdflib.URIRef
    prop: rdflib.URIRef
    target: rdflib.term.Node
    verified_at: list[str] = field(default_factory=list)


def xrefs(graph: rdflib.Graph) -> list[Xref]:
    """Every cross-reference of a crlm term, with where it was verified (axiom annotations)."""
    verified: dict[tuple, list[str]] = defaultdict(list)
    for axiom in graph.subjects(RDF.type, OWL.Axiom):
        key = (graph.value(axiom, OWL.annotatedSource), graph.value(axiom, OWL.annotatedProperty), graph.value(axiom, OWL.annotatedTarget))
        verified[key] += [str(v) for v in graph.objects(axiom, MAPPING_VERIFIED_AT)]
    found = []
    for prop in XREF_PROPERTIES:
        for subject, target in graph.subject_objects(prop):
            if isinstance(subject, rdflib.URIRef) and str(subject).startswith(paths.CRLM):
                found.append(Xref(subject, prop, target, verified.get((subject, prop, target), [])))
    return sorted(found, key=lambda x: (str(x.subject), str(x.prop), str(x.target)))


def xref_prefix(target: rdflib.term.Node, declared: dict[str, str]) -> str | None:
    """The declared prefix an xref target belongs to, or None. IRIs match a namespace, CURIEs their prefix."""
    if isinstance(target, rdflib.URIRef):
        matches = [p for p, ns in declared.items() if str(target).startswith(ns) and len(str(target)) > len(ns)]
        return max(matches, key=lambda p: len(declared[p])) if matches else None
    prefix = str(target).split(":", 1)[0]
    return prefix if ":" in str(target) and prefix in declared else None


def upper_level_gate(graph: rdflib.Graph) -> GateResult:
    """Fails on a root outside the documented upper level, more than eight roots, an obsolete class
    with an active parent or without 'obsolete' label prefix, and an external superclass without a label."""
    problems: list[str] = []
    roots = root_classes(graph)
    if len(roots) > MAX_ROOTS:
        problems.append(f"{len(roots)} root classes (at most {MAX_ROOTS})")
    for root in sorted(roots - UPPER_LEVEL_ROOTS):
        problems.append(f"{graph.qname(root)}: root class outside the documented upper level")
    for cls in sorted(c for c in named_classes(graph) if is_obsolete(graph, c)):
        active = sorted(graph.qname(p) for p in named_parents(graph, cls) if not is_obsolete(graph, p))
        if active:
            problems.append(f"{graph.qname(cls)}: obsolete class with active parent {', '.join(active)}")
        if not any(str(label).startswith("obsolete ") for label in graph.objects(cls, RDFS.label)):
            problems.append(f"{graph.qname(cls)}: obsolete class whose label lacks the 'obsolete ' prefix")
    for cls in sorted(named_classes(graph)):
        if not str(cls).startswith(paths.CRLM) and graph.value(cls, RDFS.label) is None:
            problems.append(f"{cls}: external class referenced without its label")
    summary = f"{len(roots)} root class(es): {', '.join(sorted(str(graph.value(r, RDFS.label) or r) for r in roots))}"
    return GateResult("upper level", not problems, summary, problems)


def xref_gate(graph: rdflib.Graph) -> GateResult:
    """Fails on a cross-reference to an undeclared prefix or one without a verification record."""
    declared = declared_prefixes(graph)
    problems = []
    found = xrefs(graph)
    for xref in found:
        where = f"{graph.qname(xref.subject)} {graph.qname(xref.prop)} {xref.target}"
        if xref_prefix(xref.target, declared) is None:
            problems.append(f"{where}: prefix not declared on the ontology (sh:declare)")
        if not xref.verified_at:
            problems.append(f"{where}: no crlm:mappingVerifiedAt record")
    return GateResult("cross-references", not problems, f"{len(found)} cross-references, {len(declared)} declared prefixes", problems)


def mapping_coverage(graph: rdflib.Graph) -> dict[str, tuple[int, int]]:
    """Per branch: (classes with at least one cross-reference, classes), the branch root included."""
    mapped = {x.subject for x in xrefs(graph)}
    coverage = {}
    for name, top in MAPPED_BRANCHES.items():
        members = {c for c in graph.transitive_subjects(RDFS.subClassOf, top) if isinstance(c, rdflib.URIRef) and not is_obsolete(graph, c)}
        coverage[name] = (len(members & mapped), len(members))
    return coverage


# ------------------------------------------------------------------ diff between ontology versions

DIFF_FIELDS = {"label": RDFS.label, "definition": SKOS.definition, "parents": RDFS.subClassOf,
               "replaced by": TERM_REPLACED_BY, **{graph_prop.split("#")[-1]: graph_prop for graph_prop in XREF_PROPERTIES}}


def term_snapshot(graph: rdflib.Graph) -> dict[rdflib.URIRef, dict[str, tuple]]:
    """Each crlm term's compared fields (sorted values; blank-node superclasses summarised as a count)."""
    snapshot = {}
    for term in {s for s in graph.subjects(RDF.type, None) if isinstance(s, rdflib.URIRef) and str(s).startswith(paths.CRLM)}:
        if (term, RDF.type, OWL.NamedIndividual) in graph and (term, RDF.type, OWL.Class) not in graph:
            continue  # value-set individuals are data of the ontology, not terms of its vocabulary
        fields = {name: tuple(sorted(str(v) for v in graph.objects(term, prop) if not isinstance(v, rdflib.BNode)))
                  for name, prop in DIFF_FIELDS.items()}
        fields["axioms on anonymous classes"] = (sum(1 for v in graph.objects(term, RDFS.subClassOf) if isinstance(v, rdflib.BNode))
                                                 + sum(1 for _ in graph.objects(term, OWL.equivalentClass)),)
        fields["obsolete"] = (is_obsolete(graph, term),)
        snapshot[term] = fields
    return snapshot


@dataclass
class OntologyDiff:
    added: list[rdflib.URIRef]
    removed: list[rdflib.URIRef]
    obsoleted: list[rdflib.URIRef]
    changed: dict[rdflib.URIRef, list[str]]


def ontology_diff(old: rdflib.Graph, new: rdflib.Graph) -> OntologyDiff:
    before, after = term_snapshot(old), term_snapshot(new)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    obsoleted = sorted(t for t in set(after) & set(before) if after[t]["obsolete"] == (True,) and before[t]["obsolete"] != (True,))
    changed = {}
    for term in sorted(set(after) & set(before)):
        fields = [name for name in after[term] if name != "obsolete" and after[term][name] != before[term][name]]
        if fields and term not in obsoleted:
            changed[term] = fields
    return OntologyDiff(added, removed, obsoleted, changed)


def diff_markdown(diff: OntologyDiff, new: rdflib.Graph, old_name: str, new_name: str) -> str:
    def name(term):
        label = new.value(term, RDFS.label)
        return f"crlm:{str(term)[len(paths.CRLM):]}" + (f" ({label})" if label is not None else "")

    lines = [f"# Ontology changes from {old_name} to {new_name}", "",
             f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.obsoleted)} obsoleted, {len(diff.removed)} removed.", ""]
    for title, terms in (("Added", diff.added), ("Obsoleted", diff.obsoleted), ("Removed (should be empty: obsolete instead)", diff.removed)):
        lines += [f"## {title}", ""] + [f"- {name(t)}" for t in terms] + ([] if terms else ["(none)"]) + [""]
    lines += ["## Changed", ""] + [f"- {name(t)}: {', '.join(fields)}" for t, fields in diff.changed.items()] + ([] if diff.changed else ["(none)"])
    return "\n".join(lines) + "\n"
