"""Patient records: parsing, RDF conversion and SHACL validation.

A client sends a patient as the JSON of the contract (/work/shared/patient-contract.md),
as JSON-LD, or as Turtle. The JSON becomes RDF through the project's JSON-LD
context (``validation/patient-context.jsonld``), which is the one place that
maps a JSON field to an ontology property and a coded value to an ontology
individual; this module reads every mapping it needs from that file. The RDF
is validated with the SHACL shapes of ``validation/patient-shapes.ttl``.

The JSON is checked here only for what JSON-LD cannot express or would
silently drop: the document structure, fields outside the contract, the
``id`` (checked before any IRI is built from it) and JSON values whose JSON
type the context's coercion would hide (``"65"`` for an integer). Such a
value is not dropped: it goes into the RDF as the plain literal it is, so the
SHACL datatype or value-set constraint reports it with its message. Every
range, value set, cardinality and cross-field rule lives in the shapes.

A batch of records is one data graph and one pyshacl run; each violation is
traced back to its record through its focus node.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import re
import threading
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import rdflib
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SH

from . import paths
from .gates import GateResult
from .store import IRI

CONTEXT_FILE = paths.VALIDATION_DIR / "patient-context.jsonld"
SHAPES_FILE = paths.VALIDATION_DIR / "patient-shapes.ttl"
PATIENT_BASE = "https://w3id.org/crlm-kg/patient/"
#: The IRI under which the context is published; a JSON-LD document that names it
#: gets the local copy (remote contexts are never fetched).
CONTEXT_IRI = "https://w3id.org/crlm-kg/context/patient.jsonld"
#: Focus nodes of records whose ``id`` is missing or invalid: the rest of such a
#: record is still validated, and its violations are traced back by index.
ANONYMOUS_BASE = "urn:crlm-kg:record:"
ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_RECORDS = 100_000
MAX_DEPTH = 32

JSON_TYPES = {"application/json", "text/json"}
JSONLD_TYPES = {"application/ld+json"}
TURTLE_TYPES = {"text/turtle", "application/x-turtle", "application/turtle"}

_XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_INTEGER = URIRef(_XSD + "integer")
XSD_DECIMAL = URIRef(_XSD + "decimal")
_RULE_PRIORITY = {"structure": 0, "json": 0, "type": 1, "datatype": 2, "in": 2, "nodeKind": 2}
_VALUE_RULES = {"minInclusive", "maxInclusive", "minExclusive", "maxExclusive"}
_SCALAR_RULES = {"datatype", "in"}


# --------------------------------------------------------------------------- the context


@dataclass(frozen=True)
class FieldSpec:
    """One field of the contract as the JSON-LD context defines it."""

    path: str  # JSON path, e.g. "liverMetastases.count"
    term: str  # the JSON key, e.g. "count"
    nest: str | None  # the enclosing object, e.g. "liverMetastases"
    property: str  # the ontology property IRI
    kind: str  # "integer", "decimal", "boolean" or "code"
    codes: dict[str, str]  # code -> individual IRI (kind "code")
    multiple: bool  # a JSON list (e.g. extrahepaticSites)

    @property
    def code_for(self) -> dict[str, str]:
        return {iri: code for code, iri in self.codes.items()}


@dataclass(frozen=True)
class ContractContext:
    context: dict
    fields: dict[str, FieldSpec]  # by JSON path, in contract order
    nests: tuple[str, ...]
    by_property: dict[str, FieldSpec]
    patient_class: str
    type_term: str


def _expand(value: str, prefixes: dict[str, str]) -> str:
    if ":" in value:
        prefix, local = value.split(":", 1)
        if prefix in prefixes and not local.startswith("//"):
            return prefixes[prefix] + local
    return value


@lru_cache(maxsize=1)
def contract() -> ContractContext:
    """The field -> IRI mapping, read from the JSON-LD context file."""
    context = json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))["@context"]
    prefixes = {k: v for k, v in context.items() if isinstance(v, str) and v.endswith(("#", "/"))}
    nests = tuple(k for k, v in context.items() if v == "@nest")
    type_term = next(k for k, v in context.items() if v == "@type")
    patient_term = next(k for k, v in context.items() if isinstance(v, str) and _expand(v, prefixes).endswith("#Patient"))
    fields: dict[str, FieldSpec] = {}
    for term, definition in context.items():
        if not isinstance(definition, dict) or "@id" not in definition:
            continue
        nest = definition.get("@nest")
        kind_type = definition.get("@type")
        codes: dict[str, str] = {}
        if kind_type == "@vocab":
            kind = "code"
            codes = {code: _expand(iri, prefixes) for code, iri in definition.get("@context", {}).items() if not code.startswith("@")}
        else:
            kind = _expand(kind_type, prefixes).removeprefix(_XSD)
        path = f"{nest}.{term}" if nest else term
        fields[path] = FieldSpec(
            path=path,
            term=term,
            nest=nest,
            property=_expand(definition["@id"], prefixes),
            kind=kind,
            codes=codes,
            multiple=definition.get("@container") in ("@set", "@list"),
        )
    return ContractContext(
        context=context,
        fields=fields,
        nests=nests,
        by_property={spec.property: spec for spec in fields.values()},
        patient_class=_expand(context[patient_term], prefixes),
        type_term=patient_term,
    )


def json_path_for(property_iri: str) -> str | None:
    """The JSON path (e.g. ``liverMetastases.count``) of an ontology property, or None."""
    spec = contract().by_property.get(str(property_iri))
    return spec.path if spec else None


def field_spec(path: str) -> FieldSpec | None:
    return contract().fields.get(path)


@lru_cache(maxsize=1)
def shapes_graph() -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(SHAPES_FILE, format="turtle")
    return graph


# --------------------------------------------------------------------------- results


@dataclass
class Violation:
    record: str | int  # the record's id, or its index in the document when it has no valid id
    index: int | None  # position in the document (None: the document itself)
    field: str  # JSON path of the field, e.g. "liverMetastases.count"
    rule: str  # short machine name: "minInclusive", "in", "consistency:synchronous-dfi", ...
    message: str
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"record": self.record, "index": self.index, "field": self.field, "rule": self.rule, "message": self.message, "value": self.value}


@dataclass
class ValidationReport:
    conforms: bool
    violations: list[Violation] = field(default_factory=list)
    records: int = 0
    format: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "conforms": self.conforms,
            "records": self.records,
            "format": self.format,
            "violationCount": len(self.violations),
            "violations": [v.to_json() for v in self.violations],
        }

    def to_text(self) -> str:
        if self.conforms:
            return f"valid: {self.records} patient record{'s' if self.records != 1 else ''} conform{'' if self.records != 1 else 's'} to the patient contract"
        lines = []
        for v in self.violations:
            where = f"record {v.record}" if isinstance(v.record, int) else str(v.record)
            lines.append(f"{where}: {v.field} [{v.rule}] {v.message}")
        return "\n".join(lines)


@dataclass
class PatientRecord:
    id: str | None
    index: int
    node: URIRef
    fields: dict[str, Any]
    _graph: rdflib.Graph | None = field(default=None, repr=False)
    _source: rdflib.Graph | None = field(default=None, repr=False)

    @property
    def graph(self) -> rdflib.Graph:
        """The record's own triples (a graph of one patient)."""
        if self._graph is None:
            graph = rdflib.Graph()
            graph.bind("crlm", paths.CRLM)
            if self._source is not None:
                for triple in self._source.triples((self.node, None, None)):
                    graph.add(triple)
            self._graph = graph
        return self._graph

    def facts(self) -> list[tuple[str, Any]]:
        """(property IRI, value) pairs; coded values are ``store.IRI``, others int/float/bool/str."""
        out = []
        for _, p, o in self.graph.triples((self.node, None, None)):
            if p == RDF.type:
                continue
            out.append((str(p), _python_value(o)))
        order = {spec.property: i for i, spec in enumerate(contract().fields.values())}
        out.sort(key=lambda f: (order.get(f[0], len(order)), str(f[1])))
        return out

    def get(self, path: str, default: Any = None) -> Any:
        return self.fields.get(path, default)


def _python_value(node: Any) -> Any:
    if isinstance(node, URIRef):
        return IRI(str(node))
    if isinstance(node, Literal):
        value = node.toPython() if not getattr(node, "ill_typed", False) else str(node)
        if isinstance(value, bool):
            return value
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() and "." not in str(node) else float(value)
        if isinstance(value, (int, float, str)):
            return value
        return str(node)
    return str(node)


# --------------------------------------------------------------------------- parsing


class _DataGraph(rdflib.Graph):
    """The data graph of a batch. pyshacl runs a SHACL-SPARQL constraint once per focus
    node with the same query text and ``$this`` as an initial binding; rdflib would parse
    that text every time (≈ 14 ms), so the parsed query is cached."""

    def query(self, query_object, *args, **kwargs):
        if isinstance(query_object, str):
            query_object = _prepared(query_object)
        return super().query(query_object, *args, **kwargs)


_PARSE_LOCK = threading.Lock()


@lru_cache(maxsize=512)
def _prepared(text: str):
    from rdflib.plugins.sparql import prepareQuery

    # rdflib's SPARQL parser is pyparsing, which is not thread-safe: two threads parsing
    # at once corrupt its shared parse actions for the life of the process
    with _PARSE_LOCK:
        return prepareQuery(text)


def warm_up() -> None:
    """Parse the shapes and prepare every query validation uses, before the server accepts
    connections: the first requests then never race to build them."""
    shapes_graph()
    contract()
    validate_records([{"id": "warm-up", "age": 60, "liverMetastases": {"count": 1, "timing": "metachronous"}}])


class _Problems:
    """Violations found before SHACL runs (structure, unknown fields, ids)."""

    def __init__(self) -> None:
        self.items: list[Violation] = []

    def add(self, index: int | None, record: str | int | None, field_: str, rule: str, message: str, value: Any = None) -> None:
        self.items.append(Violation(record if record is not None else (index if index is not None else "document"), index, field_, rule, message, _jsonable(value)))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _shown(value: Any) -> str:
    text = json.dumps(_jsonable(value), ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def detect_format(data: bytes, filename: str | None = None, content_type: str | None = None) -> str:
    """"json", "jsonld" or "turtle": from the content type, else the file suffix, else the content."""
    media = _media_type(content_type)
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


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, iteratively (never recursing past ``limit``)."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _load_json(data: bytes, problems: _Problems) -> Any:
    try:
        text = data.decode("utf-8-sig") if isinstance(data, (bytes, bytearray)) else str(data)
    except UnicodeDecodeError as exc:
        problems.add(None, "document", "(document)", "encoding", f"the document is not valid UTF-8 (byte {exc.start}): send the record as UTF-8 JSON")
        return None

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"the key {key!r} appears twice in one object")
            out[key] = value
        return out

    try:
        return json.loads(text, parse_constant=reject_constant, object_pairs_hook=no_duplicates)
    except RecursionError:
        problems.add(None, "document", "(document)", "json", f"the JSON is nested too deeply (a patient record has at most {MAX_DEPTH} levels)")
    except json.JSONDecodeError as exc:
        problems.add(None, "document", "(document)", "json", f"the document is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
    except ValueError as exc:
        problems.add(None, "document", "(document)", "json", f"the document is not valid JSON: {exc}")
    return None


def _record_label(record: Any, index: int) -> tuple[str | None, str | int]:
    """(valid id or None, how violations name the record)."""
    if isinstance(record, dict):
        rid = record.get("id", record.get("@id"))
        if isinstance(rid, str) and ID_PATTERN.fullmatch(rid):
            return rid, rid
    return None, index


def _wrap(spec: FieldSpec, value: Any) -> Any:
    """The JSON-LD value of one scalar: as sent when its JSON type fits the field,
    else a plain value object, so that the RDF keeps the JSON type and SHACL reports it."""
    kind = spec.kind
    if kind == "code":
        fits = isinstance(value, str) and value in spec.codes
    elif kind == "integer":
        fits = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "decimal":
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "boolean":
        fits = isinstance(value, bool)
    else:
        fits = False
    if fits:
        if kind == "decimal":  # an xsd:decimal lexical form (no exponent), whatever Python made of the number
            return {"@value": format(Decimal(repr(value)) if isinstance(value, float) else Decimal(value), "f"), "@type": _XSD + "decimal"}
        return value
    return {"@value": value}


def _convert_record(record: Any, index: int, problems: _Problems, allow_context: bool) -> tuple[dict | None, str | None, dict[str, Any]]:
    """(JSON-LD node object, id, fields) of one contract record; problems found go to ``problems``."""
    ctx = contract()
    rid, label = _record_label(record, index)
    if not isinstance(record, dict):
        problems.add(index, label, "(record)", "type", f"a patient record must be a JSON object; got {type(record).__name__ if not isinstance(record, list) else 'a list'}: {_shown(record)}", record)
        return None, None, {}
    for key in record:
        if not isinstance(key, str):
            problems.add(index, label, _key_text(key), "type", f"field names must be strings; got {key!r}", None)
    node: dict[str, Any] = {}
    fields: dict[str, Any] = {}

    # the identifier, checked before any IRI is built
    raw_id = record.get("id")
    if "id" not in record:
        problems.add(index, label, "id", "required", "id is required: a string of 1–64 characters (letters, digits, '.', '_' or '-')")
    elif not isinstance(raw_id, str) or not ID_PATTERN.fullmatch(raw_id):
        problems.add(index, label, "id", "pattern", f"id must be a string of 1–64 characters, each a letter, a digit, '.', '_' or '-'; got {_shown(raw_id)}", raw_id)
    node["@id"] = PATIENT_BASE + rid if rid else f"{ANONYMOUS_BASE}{index}"
    if rid:
        fields["id"] = rid
    node["@type"] = ctx.type_term

    def add_field(spec: FieldSpec, value: Any) -> None:
        if value is None:  # null = not given
            return
        if spec.multiple:
            if not isinstance(value, list):
                problems.add(index, label, spec.path, "type", f"{spec.path} must be a list (e.g. [\"{next(iter(spec.codes), '')}\"]); got {_shown(value)}", value)
                return
            items = value
        else:
            items = value if isinstance(value, list) else [value]
        bad = [v for v in items if isinstance(v, (dict, list))]
        if bad:
            what = "an object" if isinstance(bad[0], dict) else "a nested list"
            problems.add(index, label, spec.path, "type", f"{spec.path} must be a single value, not {what}; got {_shown(value)}", value)
            return
        fields[spec.path] = value
        wrapped = [_wrap(spec, v) for v in items]
        target = node.setdefault(spec.nest, {}) if spec.nest else node
        target[spec.term] = wrapped if (spec.multiple or isinstance(value, list)) else wrapped[0]

    for key, value in record.items():
        if not isinstance(key, str) or key == "id":
            continue
        if key in ("@context",) and allow_context:
            continue
        if key in ("@type", "type") and allow_context and value in (ctx.type_term, "crlm:" + ctx.type_term, ctx.patient_class):
            continue
        if key in ctx.nests:
            if value is None:
                continue
            if not isinstance(value, dict):
                members = ", ".join(s.term for s in ctx.fields.values() if s.nest == key)
                problems.add(index, label, key, "type", f"{key} must be an object with the fields {members}; got {_shown(value)}", value)
                continue
            for sub, subvalue in value.items():
                spec = ctx.fields.get(f"{key}.{sub}")
                if spec is None:
                    where = f"{key}.{_key_text(sub)}"
                    problems.add(index, label, where, "unknown-field", f"field {where} is not part of the patient contract{_hint(sub)}", subvalue)
                    continue
                add_field(spec, subvalue)
            continue
        spec = ctx.fields.get(key)
        if spec is None:
            where = _key_text(key)
            problems.add(index, label, where, "unknown-field", f"field {where} is not part of the patient contract{_hint(key)}", value)
            continue
        add_field(spec, value)
    return node, rid, fields


def _key_text(key: Any) -> str:
    """A JSON key as it appears in a field path: quoted when empty or unusual."""
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_@$-]+", key) else json.dumps(key, ensure_ascii=False)[:80]


def _hint(key: str) -> str:
    ctx = contract()
    matches = [s.path for s in ctx.fields.values() if s.term == key or s.term.lower() == key.lower() or s.path.lower() == key.lower()]
    return f" (did you mean {matches[0]}?)" if matches else ""


@dataclass
class _Batch:
    graph: rdflib.Graph
    records: list[PatientRecord]
    problems: _Problems
    format: str
    count: int


_QUIET = contextvars.ContextVar("crlm_kg_quiet_rdflib", default=0)


class _QuietFilter(logging.Filter):
    """Drops rdflib.term's records while the current thread/task is inside ``_quiet_rdflib``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _QUIET.get() == 0


def _install_quiet_filter() -> None:
    logger = logging.getLogger("rdflib.term")
    if not any(isinstance(f, _QuietFilter) for f in logger.filters):
        logger.addFilter(_QuietFilter())


def _quiet_rdflib():
    """rdflib logs a traceback for each ill-typed literal, quoting the patient's value; those
    are reported by SHACL instead. Per thread (a context variable read by a logger filter),
    not by changing the logger's level: with concurrent requests, saving and restoring a
    shared level let one request's exit un-silence another that was still parsing."""
    _install_quiet_filter()

    class _Quiet:
        def __enter__(self):
            self.token = _QUIET.set(_QUIET.get() + 1)
            self.warnings = warnings.catch_warnings()
            self.warnings.__enter__()
            warnings.simplefilter("ignore", DeprecationWarning)  # rdflib's JSON-LD parser uses ConjunctiveGraph

        def __exit__(self, *exc):
            self.warnings.__exit__(*exc)
            _QUIET.reset(self.token)

    return _Quiet()


def _json_batch(doc: Any, problems: _Problems, fmt: str) -> _Batch:
    ctx = contract()
    single = isinstance(doc, dict)
    items = [doc] if single else doc
    graph = _DataGraph()
    if not isinstance(items, list):
        problems.add(None, "document", "(document)", "type", f"the document must be a patient record (a JSON object) or a list of them; got {_shown(doc)}", doc)
        return _Batch(graph, [], problems, fmt, 0)
    if len(items) > MAX_RECORDS:
        problems.add(None, "document", "(document)", "maxCount", f"a document holds at most {MAX_RECORDS} records; got {len(items)}")
        return _Batch(graph, [], problems, fmt, len(items))
    if not items:
        problems.add(None, "document", "(document)", "minCount", "the list holds no patient record")
    nodes, records, seen = [], [], {}
    for index, item in enumerate(items):
        if isinstance(item, dict) and _depth(item, MAX_DEPTH) > MAX_DEPTH:
            problems.add(index, _record_label(item, index)[1], "(record)", "type", f"the record is nested too deeply (a patient record has at most {MAX_DEPTH} levels)")
            continue
        node, rid, fields = _convert_record(item, index, problems, allow_context=True)
        if node is None:
            continue
        if rid is not None:
            if rid in seen:
                problems.add(index, rid, "id", "unique", f"id {rid} is used by more than one record in this document (records {seen[rid]} and {index})", rid)
                node["@id"] = f"{ANONYMOUS_BASE}{index}"
            else:
                seen[rid] = index
        nodes.append(node)
        records.append(PatientRecord(rid, index, URIRef(node["@id"]), fields))
    if nodes:
        document = {"@context": ctx.context, "@graph": nodes}
        with _quiet_rdflib():
            graph.parse(data=json.dumps(document), format="json-ld")
    for record in records:
        record._source = graph
    return _Batch(graph, records, problems, fmt, len(items))


def _has_foreign_context(value: Any) -> bool:
    """True when a JSON-LD document refers to a context other than the project's own."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if key in ("@context", "@import"):
                    if isinstance(sub, str) and sub != CONTEXT_IRI:
                        return True
                    if isinstance(sub, list) and any(isinstance(s, str) and s != CONTEXT_IRI for s in sub):
                        return True
                stack.append(sub)
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _only_own_context(doc: Any) -> bool:
    """True unless a record carries a JSON-LD context other than the project's (named by its IRI)."""
    items = doc if isinstance(doc, list) else [doc]
    return all(not isinstance(i, dict) or i.get("@context", CONTEXT_IRI) == CONTEXT_IRI for i in items)


def _jsonld_graph_batch(doc: Any, problems: _Problems) -> _Batch:
    """A JSON-LD document with its own inline context: read as RDF, then like Turtle."""
    if _has_foreign_context(doc):
        problems.add(None, "document", "@context", "remote-context", f"remote JSON-LD contexts are not loaded; use {CONTEXT_IRI} or an inline context")
        return _Batch(rdflib.Graph(), [], problems, "jsonld", 0)
    own = contract().context

    def substitute(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: (own if k == "@context" and v == CONTEXT_IRI else substitute(v)) for k, v in item.items()}
        if isinstance(item, list):
            return [own if v == CONTEXT_IRI else substitute(v) for v in item]
        return item

    graph = _DataGraph()
    try:
        with _quiet_rdflib():
            graph.parse(data=json.dumps(substitute(doc)), format="json-ld", base=PATIENT_BASE)
    except RecursionError:
        problems.add(None, "document", "(document)", "json", "the JSON-LD is nested too deeply")
        return _Batch(graph, [], problems, "jsonld", 0)
    except Exception as exc:  # rdflib raises many types for bad JSON-LD
        problems.add(None, "document", "(document)", "jsonld", f"the document is not valid JSON-LD: {_short(exc)}")
        return _Batch(graph, [], problems, "jsonld", 0)
    return _graph_batch(graph, problems, "jsonld")


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _turtle_batch(data: bytes, problems: _Problems, sniffed: bool = False, json_error: str | None = None) -> _Batch:
    graph = _DataGraph()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(None, "document", "(document)", "encoding", f"the document is not valid UTF-8 (byte {exc.start})")
        return _Batch(graph, [], problems, "turtle", 0)
    try:
        with _quiet_rdflib():
            graph.parse(data=text, format="turtle", publicID=PATIENT_BASE)
    except Exception as exc:  # rdflib's parser errors have no common base class
        if sniffed:
            problems.add(None, "document", "(document)", "syntax", f"the document is neither JSON ({json_error}) nor Turtle ({_short(exc)})")
        else:
            problems.add(None, "document", "(document)", "turtle", f"the document is not valid Turtle: {_short(exc)}")
        return _Batch(graph, [], problems, "turtle", 0)
    return _graph_batch(graph, problems, "turtle")


def _graph_batch(graph: rdflib.Graph, problems: _Problems, fmt: str) -> _Batch:
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
            values = [_field_value(spec, o) for o in graph.objects(subject, URIRef(spec.property))]
            if values:
                fields[spec.path] = values if (spec.multiple or len(values) > 1) else values[0]
        records.append(PatientRecord(rid, index, subject, fields, _source=graph))
    if not records:
        problems.add(None, "document", "(document)", "minCount", f"the document holds no patient record (a node of type {ctx.patient_class} or with a patient property)")
    return _Batch(graph, records, problems, fmt, len(records))


def _field_value(spec: FieldSpec | None, node: Any) -> Any:
    """A node of the data graph as the JSON value the client would have sent."""
    if isinstance(node, URIRef):
        if spec is not None and str(node) in spec.code_for:
            return spec.code_for[str(node)]
        return str(node)
    if isinstance(node, Literal):
        value = _python_value(node)
        return value.value if isinstance(value, IRI) else value
    return str(node)


def _parse(data: Any, filename: str | None, content_type: str | None) -> _Batch:
    problems = _Problems()
    if isinstance(data, (dict, list)):  # already-parsed JSON (the API may pass it)
        doc, fmt = data, "json"
    else:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        data = bytes(data or b"")
        fmt = detect_format(data, filename, content_type)
        if fmt == "turtle":
            return _turtle_batch(data, problems)
        doc = _load_json(data, problems)
        if problems.items:
            sniffed = not _media_type(content_type) and not (filename and Path(str(filename)).suffix)
            head = data.lstrip()[:1]
            if sniffed and head not in (b"{", b"[") and problems.items[0].rule == "json":
                json_error = problems.items[0].message.removeprefix("the document is not valid JSON: ")
                return _turtle_batch(data, _Problems(), sniffed=True, json_error=json_error)
            return _Batch(rdflib.Graph(), [], problems, fmt, 0)
    if _depth(doc, MAX_DEPTH + 2) > MAX_DEPTH + 1:
        problems.add(None, "document", "(document)", "json", f"the JSON is nested too deeply (a patient record has at most {MAX_DEPTH} levels)")
        return _Batch(rdflib.Graph(), [], problems, fmt, 0)
    if _only_own_context(doc):
        return _json_batch(doc, problems, fmt)
    return _jsonld_graph_batch(doc, problems)


# --------------------------------------------------------------------------- validation


def _rule_name(component: Any, constraint: Any, shapes: rdflib.Graph) -> str:
    if constraint is not None:
        label = shapes.value(constraint, RDFS.label)
        if label is not None:
            return str(label)
    name = str(component).rsplit("#", 1)[-1].removesuffix("ConstraintComponent")
    name = name[:1].lower() + name[1:]
    return {"closed": "unknown-field"}.get(name, name)  # the same rule as an unknown JSON key


def _run_shacl(graph: rdflib.Graph) -> rdflib.Graph:
    import pyshacl

    with _quiet_rdflib():
        conforms, results, _ = pyshacl.validate(
            graph,
            shacl_graph=shapes_graph(),
            inference="none",
            inplace=True,
            allow_infos=True,
            allow_warnings=True,
            meta_shacl=False,
        )
    return results


def _validate_batch(batch: _Batch) -> ValidationReport:
    violations = list(batch.problems.items)
    if len(batch.graph):
        shapes = shapes_graph()
        results = _run_shacl(batch.graph)
        by_node = {record.node: record for record in batch.records}
        for result in results.subjects(RDF.type, SH.ValidationResult):
            violations.append(_to_violation(results, result, by_node, shapes))
    violations = _tidy(violations)
    return ValidationReport(not violations, violations, batch.count, batch.format)


def _to_violation(results: rdflib.Graph, result: Any, by_node: dict, shapes: rdflib.Graph) -> Violation:
    focus = results.value(result, SH.focusNode)
    path = results.value(result, SH.resultPath)
    value_node = results.value(result, SH.value)
    component = results.value(result, SH.sourceConstraintComponent)
    constraint = results.value(result, SH.sourceConstraint)
    message = results.value(result, SH.resultMessage)
    record = by_node.get(focus)
    spec = contract().by_property.get(str(path)) if path is not None else None
    field_path = spec.path if spec else (str(path) if path is not None else "(record)")
    rule = _rule_name(component, constraint, shapes)
    if value_node is not None and rule not in ("maxCount",):
        value = _field_value(spec, value_node)
    elif record is not None and spec is not None:
        value = record.fields.get(spec.path)
    else:
        value = None
    text = str(message) if message is not None else f"{field_path} breaks the rule {rule}"
    text = re.sub(r"\{[$?]value\}", lambda _: _shown(value), text)
    text = re.sub(r"\{[$?]path\}", lambda _: field_path, text)
    if record is not None:
        label: str | int = record.id if record.id else record.index
        index = record.index
    else:
        label, index = str(focus), None
    return Violation(label, index, field_path, rule, text, _jsonable(value))


def _tidy(violations: list[Violation]) -> list[Violation]:
    """One violation per (record, field, rule, value); a value of the wrong type is not also out of range."""
    wrong_type = {(v.index, v.record, v.field, json.dumps(v.value, sort_keys=True)) for v in violations if v.rule in _SCALAR_RULES}
    seen, out = set(), []
    for v in violations:
        key_value = json.dumps(v.value, sort_keys=True)
        if v.rule in _VALUE_RULES and (v.index, v.record, v.field, key_value) in wrong_type:
            continue
        key = (v.index, v.record, v.field, v.rule, key_value)
        if key in seen:
            continue
        seen.add(key)
        out.append(v)
    order = {path: i for i, path in enumerate(["id", *contract().fields])}

    def sort_key(v: Violation):
        return (-1 if v.index is None else v.index, order.get(v.field, len(order)), _RULE_PRIORITY.get(v.rule, 5), v.rule)

    return sorted(out, key=sort_key)


def parse_and_validate(data: Any, filename: str | None = None, content_type: str | None = None) -> tuple[ValidationReport, list[PatientRecord]]:
    """Parse a document of one or more patient records and validate it as one batch.

    Never raises for bad input: every problem is a violation of the report."""
    try:
        batch = _parse(data, filename, content_type)
        report = _validate_batch(batch)
    except RecursionError:
        report = ValidationReport(False, [Violation("document", None, "(document)", "json", "the document is nested too deeply")], 0, None)
        return report, []
    return report, batch.records


def validate_document(data: Any, filename: str | None = None, content_type: str | None = None) -> ValidationReport:
    """Validate a document of patient records (JSON, JSON-LD or Turtle; one record or a list)."""
    return parse_and_validate(data, filename, content_type)[0]


def validate_records(records: Iterable[dict]) -> ValidationReport:
    """Validate already-parsed JSON records as one batch."""
    return parse_and_validate(list(records))[0]


# --------------------------------------------------------------------------- quality gates


EXAMPLES = paths.EXAMPLES_DIR / "patients"
INVALID_EXAMPLES = paths.EXAMPLES_DIR / "invalid"
_EXAMPLE_SUFFIXES = (".json", ".jsonld", ".ttl")


def _example_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in _EXAMPLE_SUFFIXES and not p.name.endswith(".expected.json"))


def shape_gates():
    """``crlm-kg check``: the shapes are well-formed SHACL and every example validates as expected."""
    import pyshacl

    results = []
    problems: list[str] = []
    try:
        shapes = shapes_graph()
        with _quiet_rdflib():
            conforms, _, text = pyshacl.validate(rdflib.Graph(), shacl_graph=shapes, meta_shacl=True, inference="none")
        if not conforms:
            problems.append(text.strip()[:2000])
        for s in set(shapes.subjects()):
            if isinstance(s, URIRef) and str(s).startswith(paths.CRLM):
                problems.append(f"{s}: the shapes graph says something about an ontology IRI")
    except Exception as exc:  # a shapes file that does not parse is a failed gate
        problems.append(f"{SHAPES_FILE.name}: {_short(exc)}")
    results.append(GateResult("patient shapes well-formed", not problems, f"{SHAPES_FILE.name}: meta-SHACL " + ("passed" if not problems else "failed"), problems))

    problems = []
    valid = _example_files(EXAMPLES)
    invalid = _example_files(INVALID_EXAMPLES)
    for path in valid:
        report = validate_document(path.read_bytes(), filename=path.name)
        if not report.conforms:
            problems.extend(f"{path.name}: {line}" for line in report.to_text().splitlines())
    for path in invalid:
        expected_file = path.with_name(path.stem + ".expected.json")
        if not expected_file.exists():
            problems.append(f"{path.name}: no {expected_file.name} stating the violations it must produce")
            continue
        expected = {(e["field"], e["rule"]) for e in json.loads(expected_file.read_text(encoding="utf-8"))}
        report = validate_document(path.read_bytes(), filename=path.name)
        got = {(v.field, v.rule) for v in report.violations}
        if report.conforms:
            problems.append(f"{path.name}: expected violations {sorted(expected)} but the record conforms")
        elif got != expected:
            problems.append(f"{path.name}: expected {sorted(expected)}, got {sorted(got)}")
    ok = not problems and bool(valid) and bool(invalid)
    if not valid or not invalid:
        problems.append(f"no examples found in {EXAMPLES} or {INVALID_EXAMPLES}")
    summary = f"{len(valid)} valid and {len(invalid)} invalid examples " + ("validate as expected" if ok else "do not all validate as expected")
    results.append(GateResult("patient examples", ok, summary, problems))
    return results
