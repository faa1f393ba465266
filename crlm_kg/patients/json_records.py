"""Contract JSON records into JSON-LD: structure, unknown fields and ids checked before RDF is built.

The JSON is checked here only for what JSON-LD cannot express or would silently drop: the
document structure, fields outside the contract, the ``id`` (checked before any IRI is built
from it) and JSON values whose JSON type the context's coercion would hide (``"65"`` for an
integer). Such a value is not dropped: it goes into the RDF as the plain literal it is, so the
SHACL datatype or value-set constraint reports it with its message.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from rdflib import URIRef

from .contract import ANONYMOUS_BASE, FieldSpec, ID_PATTERN, MAX_DEPTH, PATIENT_BASE, XSD, contract
from .limits import DEFAULT_LIMITS, Limits, TooMuchWork, too_many_keys, too_many_records
from .rdf import DataGraph, quiet_rdflib
from .report import Batch, PatientRecord, Problems, shown

#: digits of an integer a field could hold; a longer one is reported, never converted
#: (Python refuses to convert past 4300 digits, and nothing clinical has 40)
MAX_INTEGER_DIGITS = 40


class MalformedNumber(str):
    """A JSON number no field can hold (infinite as a double, like ``1e309``, or longer than
    ``MAX_INTEGER_DIGITS`` digits), kept as its text so that the field is named in the report."""


class MalformedString(str):
    """A JSON string with a lone surrogate (``"\\ud800"``): not Unicode text, so it could be
    neither stored nor answered. Kept with the surrogate written as its escape."""


def _parse_float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else MalformedNumber(text)


def _parse_int(text: str) -> Any:
    return int(text) if len(text.lstrip("-")) <= MAX_INTEGER_DIGITS else MalformedNumber(text)


def _clean(value: Any) -> Any:
    """A string with its lone surrogates escaped (a ``MalformedString``); lists cleaned item by item.
    Objects are cleaned by the JSON object hook as they are built."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return MalformedString(value.encode("utf-8", "backslashreplace").decode("utf-8"))
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def json_depth(value: Any, limit: int) -> int:
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


#: a key's end: every key of a JSON document is followed by this (so is the rare string
#: value holding a quote and a colon, which only makes the count an upper bound)
_KEY_END = re.compile(rb'"[ \t\r\n]*:')


def load_json(data: bytes, problems: Problems, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The parsed JSON, or None with the reason in ``problems``.

    A document with more keys than ``limits.keys_per_document`` is refused before it is parsed: counting costs a regular-expression
    scan (0.2 s for 20 MB), parsing five times that. While parsing, an object with more than
    ``limits.keys`` keys stops the parse there. Numbers no field can hold and strings with lone
    surrogates become ``MalformedNumber`` / ``MalformedString``, reported per field."""
    if isinstance(data, (bytes, bytearray)) and len(data) > limits.keys * 16:
        allowed = limits.keys_per_document
        keys = sum(1 for _ in zip(range(allowed + 1), _KEY_END.finditer(data)))
        if keys > allowed:
            problems.add(None, "document", "(document)", "maxKeys",
                         f"a document holds at most {allowed} keys (patient records of at most {limits.keys} fields); it has more")
            return None
    try:
        text = data.decode("utf-8-sig") if isinstance(data, (bytes, bytearray)) else str(data)
    except UnicodeDecodeError as exc:
        problems.add(None, "document", "(document)", "encoding", f"the document is not valid UTF-8 (byte {exc.start}): send the record as UTF-8 JSON")
        return None

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def checked_object(pairs: list[tuple[str, Any]]) -> dict:
        if len(pairs) > limits.keys:
            raise too_many_keys(limits.keys, len(pairs))
        out: dict = {}
        for key, value in pairs:
            key = _clean(key)
            if key in out:
                raise ValueError(f"the key {key!r} appears twice in one object")
            out[key] = _clean(value)
        return out

    try:
        return _clean(json.loads(text, parse_constant=reject_constant, parse_float=_parse_float, parse_int=_parse_int,
                                 object_pairs_hook=checked_object))
    except TooMuchWork as exc:
        problems.add(None, "document", "(document)", exc.rule, str(exc))
    except RecursionError:
        problems.add(None, "document", "(document)", "json", f"the JSON is nested too deeply (a patient record has at most {MAX_DEPTH} levels)")
    except json.JSONDecodeError as exc:
        problems.add(None, "document", "(document)", "json", f"the document is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
    except ValueError as exc:
        problems.add(None, "document", "(document)", "json", f"the document is not valid JSON: {exc}")
    return None


def record_label(record: Any, index: int) -> tuple[str | None, str | int]:
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
            return {"@value": format(Decimal(repr(value)) if isinstance(value, float) else Decimal(value), "f"), "@type": XSD + "decimal"}
        return value
    return {"@value": value}


def _convert_record(record: Any, index: int, problems: Problems, allow_context: bool) -> tuple[dict | None, str | None, dict[str, Any]]:
    """(JSON-LD node object, id, fields) of one contract record; problems found go to ``problems``."""
    ctx = contract()
    rid, label = record_label(record, index)
    if not isinstance(record, dict):
        problems.add(index, label, "(record)", "type", f"a patient record must be a JSON object; got {type(record).__name__ if not isinstance(record, list) else 'a list'}: {shown(record)}", record)
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
        problems.add(index, label, "id", "pattern", f"id must be a string of 1–64 characters, each a letter, a digit, '.', '_' or '-'; got {shown(raw_id)}", raw_id)
    node["@id"] = PATIENT_BASE + rid if rid else f"{ANONYMOUS_BASE}{index}"
    if rid:
        fields["id"] = rid
    node["@type"] = ctx.type_term

    def add_field(spec: FieldSpec, value: Any) -> None:
        if value is None:  # null = not given
            return
        if spec.multiple:
            if not isinstance(value, list):
                problems.add(index, label, spec.path, "type", f"{spec.path} must be a list (e.g. [\"{next(iter(spec.codes), '')}\"]); got {shown(value)}", value)
                return
            items = value
        else:
            items = value if isinstance(value, list) else [value]
        malformed = [v for v in items if isinstance(v, (MalformedNumber, MalformedString))]
        if malformed:
            if isinstance(malformed[0], MalformedNumber):
                problems.add(index, label, spec.path, "number", f"{spec.path} must be a finite number of at most {MAX_INTEGER_DIGITS} digits; got {shown(malformed[0])}", malformed[0])
            else:
                problems.add(index, label, spec.path, "string", f"{spec.path} holds a lone UTF-16 surrogate, which is not a character; got {shown(malformed[0])}", malformed[0])
            return
        bad = [v for v in items if isinstance(v, (dict, list))]
        if bad:
            what = "an object" if isinstance(bad[0], dict) else "a nested list"
            problems.add(index, label, spec.path, "type", f"{spec.path} must be a single value, not {what}; got {shown(value)}", value)
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
                problems.add(index, label, key, "type", f"{key} must be an object with the fields {members}; got {shown(value)}", value)
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


def count_keys(record: dict, limit: int) -> int:
    """Keys of a record, nested objects included; stops counting past ``limit``."""
    count, stack = 0, [record]
    while stack and count <= limit:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def json_batch(doc: Any, problems: Problems, fmt: str, limits: Limits = DEFAULT_LIMITS) -> Batch:
    ctx = contract()
    single = isinstance(doc, dict)
    items = [doc] if single else doc
    graph = DataGraph()
    if not isinstance(items, list):
        problems.add(None, "document", "(document)", "type", f"the document must be a patient record (a JSON object) or a list of them; got {shown(doc)}", doc)
        return Batch(graph, [], problems, fmt, 0)
    if len(items) > limits.records:  # before any record is converted
        exc = too_many_records(limits.records, len(items))
        problems.add(None, "document", "(document)", exc.rule, str(exc))
        return Batch(graph, [], problems, fmt, len(items))
    for index, item in enumerate(items):
        if isinstance(item, dict) and count_keys(item, limits.keys) > limits.keys:
            exc = too_many_keys(limits.keys, None)
            problems.add(index, record_label(item, index)[1], "(record)", exc.rule, str(exc))
            return Batch(graph, [], problems, fmt, len(items))
    if not items:
        problems.add(None, "document", "(document)", "minCount", "the list holds no patient record")
    nodes, records, seen = [], [], {}
    for index, item in enumerate(items):
        if isinstance(item, dict) and json_depth(item, MAX_DEPTH) > MAX_DEPTH:
            problems.add(index, record_label(item, index)[1], "(record)", "type", f"the record is nested too deeply (a patient record has at most {MAX_DEPTH} levels)")
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
        with quiet_rdflib():
            graph.parse(data=json.dumps(document), format="json-ld")
    for record in records:
        record._source = graph
    return Batch(graph, records, problems, fmt, len(items))
