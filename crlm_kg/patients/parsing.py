"""A document of patient records (JSON, JSON-LD or Turtle) into one data graph and its records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import rdflib
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF

from .contexts import ForeignContext, install_document_loader, local_contexts
from .contract import CONTEXT_IRI, ID_PATTERN, MAX_DEPTH, PATIENT_BASE, XSD_DECIMAL, XSD_INTEGER, contract
from .json_records import load_json, json_batch, json_depth
from .limits import DEFAULT_LIMITS, Limits, LimitedMemory, TooMuchWork, too_many_records
from .rdf import DataGraph, quiet_rdflib
from .report import Batch, PatientRecord, Problems, field_value

# rdflib's JSON-LD processor would fetch (or read from disk) any context it is given: from now
# on it can load only the project's own, from the local file (contexts.py)
install_document_loader()


JSON_TYPES = {"application/json", "text/json"}
JSONLD_TYPES = {"application/ld+json"}
TURTLE_TYPES = {"text/turtle", "application/x-turtle", "application/turtle"}
FHIR_TYPES = {"application/fhir+json"}


def media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def detect_format(data: bytes, filename: str | None = None, content_type: str | None = None) -> str:
    """"json", "jsonld", "turtle" or "fhir": from the content type, else the file suffix, else the content."""
    media = media_type(content_type)
    if media in FHIR_TYPES or (filename and str(filename).lower().endswith(".fhir.json")):
        return "fhir"
    if media in JSON_TYPES:
        return "json"
    if media in JSONLD_TYPES:
        return "jsonld"
    if media in TURTLE_TYPES:
        return "turtle"
    if filename:
        suffix = Path(str(filename)).suffix.lower()
        if suffix == ".json":
            return "json"
        if suffix in (".jsonld", ".json-ld"):
            return "jsonld"
        if suffix in (".ttl", ".turtle"):
            return "turtle"
    return "json"  # JSON first; when that fails, the content is tried as Turtle


def _only_own_context(doc: Any) -> bool:
    """True unless a record carries a JSON-LD context other than the project's (named by its IRI)."""
    items = doc if isinstance(doc, list) else [doc]
    return all(not isinstance(i, dict) or i.get("@context", CONTEXT_IRI) == CONTEXT_IRI for i in items)


def _top_level_nodes(doc: Any) -> int:
    """Nodes a JSON-LD document lists at its top (a list, or ``@graph``): an upper bound of its records
    that costs nothing to count."""
    items = doc if isinstance(doc, list) else [doc]
    count = 0
    for item in items:
        graph = item.get("@graph") if isinstance(item, dict) else None
        count += len(graph) if isinstance(graph, list) else 1
    return count


def limited_graph(limits: Limits) -> DataGraph:
    """A data graph whose store stops the parse at ``limits`` (see ``limits.LimitedMemory``)."""
    ctx = contract()
    properties = {URIRef(p) for p in ctx.by_property}
    return DataGraph(store=LimitedMemory(limits, URIRef(ctx.patient_class), properties))


def _parsed_into(graph: DataGraph, problems: Problems, fmt: str, parse_it) -> Batch | None:
    """Run ``parse_it()``; on a limit, the problem and an empty batch (None: parsed)."""
    try:
        parse_it()
    except TooMuchWork as exc:
        problems.add(None, "document", "(document)", exc.rule, str(exc))
        return Batch(rdflib.Graph(), [], problems, fmt, 0)
    finally:
        graph.store.done()
    return None


def _jsonld_graph_batch(doc: Any, problems: Problems, limits: Limits) -> Batch:
    """A JSON-LD document with its own inline context (every context reference already replaced by
    ``contexts.local_contexts``): read as RDF, then like Turtle."""
    nodes = _top_level_nodes(doc)
    if nodes > limits.records:
        exc = too_many_records(limits.records, nodes)
        problems.add(None, "document", "(document)", exc.rule, str(exc))
        return Batch(rdflib.Graph(), [], problems, "jsonld", nodes)
    graph = limited_graph(limits)
    try:
        with quiet_rdflib():
            refused = _parsed_into(graph, problems, "jsonld", lambda: graph.parse(data=json.dumps(doc), format="json-ld", base=PATIENT_BASE))
    except RecursionError:
        problems.add(None, "document", "(document)", "json", "the JSON-LD is nested too deeply")
        return Batch(graph, [], problems, "jsonld", 0)
    except Exception as exc:  # rdflib raises many types for bad JSON-LD
        problems.add(None, "document", "(document)", "jsonld", f"the document is not valid JSON-LD: {short_error(exc)}")
        return Batch(graph, [], problems, "jsonld", 0)
    return refused or _graph_batch(graph, problems, "jsonld")


def short_error(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _turtle_batch(data: bytes, problems: Problems, limits: Limits, sniffed: bool = False, json_error: str | None = None) -> Batch:
    graph = limited_graph(limits)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(None, "document", "(document)", "encoding", f"the document is not valid UTF-8 (byte {exc.start})")
        return Batch(graph, [], problems, "turtle", 0)
    try:
        with quiet_rdflib():
            refused = _parsed_into(graph, problems, "turtle", lambda: graph.parse(data=text, format="turtle", publicID=PATIENT_BASE))
        if refused:
            return refused
    except Exception as exc:  # rdflib's parser errors have no common base class
        if sniffed:
            problems.add(None, "document", "(document)", "syntax", f"the document is neither JSON ({json_error}) nor Turtle ({short_error(exc)})")
        else:
            problems.add(None, "document", "(document)", "turtle", f"the document is not valid Turtle: {short_error(exc)}")
        return Batch(graph, [], problems, "turtle", 0)
    return _graph_batch(graph, problems, "turtle")


def _graph_batch(graph: rdflib.Graph, problems: Problems, fmt: str) -> Batch:
    """Records of an RDF document: the crlm:Patient nodes and any subject of a contract property."""
    ctx = contract()
    patient_class = URIRef(ctx.patient_class)
    subjects: dict[Any, None] = {}
    for s in graph.subjects(RDF.type, patient_class):
        subjects[s] = None
    for prop in ctx.by_property:
        for s in graph.subjects(URIRef(prop), None):
            subjects[s] = None
    records = []
    for index, subject in enumerate(sorted(subjects, key=str)):
        text = str(subject)
        rid = text[len(PATIENT_BASE):] if isinstance(subject, URIRef) and text.startswith(PATIENT_BASE) else None
        if rid is None or not ID_PATTERN.fullmatch(rid):
            shown = "a blank node" if isinstance(subject, BNode) else f"<{text[:100]}>"
            problems.add(index, index, "id", "pattern", f"the patient must be the IRI {PATIENT_BASE}<id>, where id is 1–64 letters, digits, '.', '_' or '-'; got {shown}", text if isinstance(subject, URIRef) else None)
            rid = None
        graph.add((subject, RDF.type, patient_class))
        for spec in ctx.fields.values():
            if spec.kind == "decimal":
                prop = URIRef(spec.property)
                for o in list(graph.objects(subject, prop)):
                    if isinstance(o, Literal) and o.datatype == XSD_INTEGER:
                        graph.remove((subject, prop, o))
                        graph.add((subject, prop, Literal(str(o), datatype=XSD_DECIMAL)))
        fields: dict[str, Any] = {"id": rid} if rid else {}
        for spec in ctx.fields.values():
            values = [field_value(spec, o) for o in graph.objects(subject, URIRef(spec.property))]
            if values:
                fields[spec.path] = values if (spec.multiple or len(values) > 1) else values[0]
        records.append(PatientRecord(rid, index, subject, fields, _source=graph))
    if not records:
        problems.add(None, "document", "(document)", "minCount", f"the document holds no patient record (a node of type {ctx.patient_class} or with a patient property)")
    return Batch(graph, records, problems, fmt, len(records))



def parse(data: Any, filename: str | None, content_type: str | None, limits: Limits = DEFAULT_LIMITS) -> Batch:
    problems = Problems()
    if isinstance(data, (dict, list)):  # already-parsed JSON (the API may pass it)
        doc, fmt = data, "json"
    else:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        data = bytes(data or b"")
        fmt = detect_format(data, filename, content_type)
        if fmt == "turtle":
            return _turtle_batch(data, problems, limits)
        doc = load_json(data, problems, limits)
        if problems.items:
            sniffed = not media_type(content_type) and not (filename and Path(str(filename)).suffix)
            head = data.lstrip()[:1]
            if sniffed and head not in (b"{", b"[") and problems.items[0].rule == "json":
                json_error = problems.items[0].message.removeprefix("the document is not valid JSON: ")
                return _turtle_batch(data, Problems(), limits, sniffed=True, json_error=json_error)
            return Batch(rdflib.Graph(), [], problems, fmt, 0)
    if json_depth(doc, MAX_DEPTH + 2) > MAX_DEPTH + 1:
        problems.add(None, "document", "(document)", "json", f"the JSON is nested too deeply (a patient record has at most {MAX_DEPTH} levels)")
        return Batch(rdflib.Graph(), [], problems, fmt, 0)
    if fmt == "fhir" or (fmt == "json" and isinstance(doc, dict) and doc.get("resourceType") == "Bundle"):
        return _fhir_batch(doc, problems, limits)
    try:  # every context the document names, in any position, before anything could load one
        expanded = local_contexts(doc)
    except ForeignContext as exc:
        problems.add(None, "document", "(document)", "remote-context", str(exc))
        return Batch(rdflib.Graph(), [], problems, fmt, 0)
    if _only_own_context(doc):
        return json_batch(doc, problems, fmt, limits)
    return _jsonld_graph_batch(expanded, problems, limits)


def _fhir_batch(doc: Any, problems: Problems, limits: Limits) -> Batch:
    """A FHIR R4 mCODE bundle: mapped to contract records by crlm_kg.fhir, then validated as JSON."""
    from .. import fhir  # imported here: the FHIR models load only for FHIR documents

    mapping = fhir.records_from_bundle(doc)
    for error in mapping.errors:
        problems.add(None, "document", f"{error['resource']} {error['element']}", "fhir", error["message"])
    if mapping.errors:
        batch = Batch(rdflib.Graph(), [], problems, "fhir", 0)
    else:
        batch = json_batch(mapping.records, problems, "fhir", limits)
    batch.fhir_unmapped = mapping.unmapped
    return batch

