"""Validation of a whole cohort at thousands of records per second, with pyshacl's verdicts.

pyshacl validates about a hundred records per second, far too slow to screen a cohort of
ten thousand. Most records of a cohort are valid, so this module splits the work:

1. every record goes through the same JSON checks as ``json_records`` (structure, unknown
   fields, ids, JSON types); a record whose every value fits its field becomes its RDF terms
   directly (a code its individual, a number its typed literal: what the JSON-LD context makes
   of it);
2. the constraints of ``validation/patient-shapes.ttl`` are compiled once from the shapes
   graph: the core ones (datatype, in, ranges, counts, closed) are checked in Python on those
   terms, the SHACL-SPARQL ones run on Oxigraph over the whole cohort at once (a single record,
   a request's common case, takes the verdict kept for the values a query reads where there is one);
3. a record that breaks anything, or that step 1 could not turn into terms, is validated again
   by pyshacl (the reference), which writes its report: the fields, rules and messages of an
   invalid record are exactly those ``POST /patients/validate`` gives.

So the fast path only ever says "valid"; a shape it does not know how to compile (a new
constraint component) makes ``CompiledShapes`` refuse, and every record goes to pyshacl.
tests/test_screening.py checks that the fast verdicts equal pyshacl's on the examples and on
generated and mutated records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import pyoxigraph as ox
from rdflib import Literal as RdfLiteral, URIRef
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, SH
from rdflib.paths import AlternativePath, InvPath, MulPath, SequencePath
from rdflib.plugins.sparql import prepareQuery

from ..store import IRI
from .contract import ID_PATTERN, contract
from .contract import MAX_DEPTH
from .json_records import _convert_record, count_keys, json_depth, load_json, record_label
from .limits import DEFAULT_LIMITS, Limits, too_many_keys
from .parsing import detect_format
from .report import Problems, ValidationReport, Violation
from .validation import parse_and_validate, shapes_graph

XSD = "http://www.w3.org/2001/XMLSchema#"
_DATATYPE = {"integer": XSD + "integer", "decimal": XSD + "decimal", "boolean": XSD + "boolean"}
_SHAPE_KEYS = {RDF.type, RDFS.label, RDFS.comment, SH.name, SH.description, SH.message, SH.path, SH.property, SH.targetClass,
               SH.targetSubjectsOf, SH.closed, SH.ignoredProperties, SH.sparql, SH.maxCount, SH.minCount, SH.datatype, SH["in"],
               SH.minInclusive, SH.maxInclusive, SH.minExclusive, SH.maxExclusive, SH.declare}
_RANGES = {SH.minInclusive: lambda v, b: v >= b, SH.maxInclusive: lambda v, b: v <= b,
           SH.minExclusive: lambda v, b: v > b, SH.maxExclusive: lambda v, b: v < b}


class Unsupported(ValueError):
    """A shape uses a construct the compiler does not check: the cohort goes to pyshacl."""


@dataclass
class PropertyRule:
    path: str
    max_count: int | None = None
    min_count: int | None = None
    datatype: str | None = None
    allowed: frozenset | None = None  # terms of sh:in, as ("iri", value) / ("literal", value, datatype)
    ranges: list[tuple[Any, Any]] = field(default_factory=list)  # (comparison, bound)


@dataclass
class CompiledShapes:
    """The patient shapes as Python checks and SPARQL queries over the whole cohort."""

    properties: list[PropertyRule]
    closed: set[str] | None  # the properties a closed shape allows (None: not closed)
    queries: list[str]  # each returns ?this for every focus node that breaks one SHACL-SPARQL constraint
    # per query: the properties of its subjects-of targets when it has no class target (its focus nodes are the
    # subjects of one of them, so a cohort where no record has any cannot break it), else None (every record)
    query_targets: list[frozenset[str] | None] = field(default_factory=list)
    # per query: the properties its patterns read, every predicate a constant IRI (None: it may read any). On a store
    # holding one record, the query's verdict is a function of that record's values of these properties
    query_reads: list[frozenset[str] | None] = field(default_factory=list)
    # (query, the one record's values of the properties it reads) -> whether the record breaks it. Parsing the
    # queries cost a one-record request more than the rest of its validation; records share most of these values
    verdicts: dict[tuple, bool] = field(default_factory=dict, repr=False)

    def verdict_key(self, query: int, terms: dict[str, list[tuple[tuple, Any]]]) -> tuple | None:
        """What decides ``query``'s verdict on a store that holds only the record with ``terms``; None if unknown."""
        reads = self.query_reads[query]
        if reads is None:
            return None
        return (query, *(tuple(sorted(key for key, _ in terms.get(prop, ()))) for prop in sorted(reads)))

    @classmethod
    def from_shapes(cls, shapes=None) -> "CompiledShapes":
        g = shapes if shapes is not None else shapes_graph()
        prefixes = "".join(f"PREFIX {g.value(d, SH.prefix)}: <{g.value(d, SH.namespace)}>\n" for d in g.objects(None, SH.declare))
        properties: list[PropertyRule] = []
        queries: list[str] = []
        query_targets: list[frozenset[str] | None] = []
        closed: set[str] | None = None
        node_shapes = set(g.subjects(RDF.type, SH.NodeShape))
        property_shapes = set(g.subjects(RDF.type, SH.PropertyShape)) | set(g.objects(None, SH.property))
        for shape in node_shapes | property_shapes:
            for predicate in g.predicates(shape, None):
                if predicate not in _SHAPE_KEYS:
                    raise Unsupported(f"{shape}: {predicate}")
        for shape in node_shapes:
            targets = [("class", str(c)) for c in g.objects(shape, SH.targetClass)] + \
                      [("subjectsOf", str(p)) for p in g.objects(shape, SH.targetSubjectsOf)]
            if not targets:
                raise Unsupported(f"{shape}: a node shape without a class or subjects-of target")
            if g.value(shape, SH.closed) == RdfLiteral(True):
                ignored = Collection(g, g.value(shape, SH.ignoredProperties)) if g.value(shape, SH.ignoredProperties) else []
                closed = {str(p) for p in ignored} | {str(g.value(ps, SH.path)) for ps in g.objects(shape, SH.property)}
            for constraint in g.objects(shape, SH.sparql):
                queries.append(_sparql_check(g, constraint, targets, None, prefixes))
                query_targets.append(_subjects_of_only(targets))
        for shape in property_shapes:
            path = g.value(shape, SH.path)
            if not isinstance(path, URIRef):
                raise Unsupported(f"{shape}: a property path that is not one property")
            rule = PropertyRule(str(path))
            if (v := g.value(shape, SH.maxCount)) is not None:
                rule.max_count = int(v)
            if (v := g.value(shape, SH.minCount)) is not None:
                rule.min_count = int(v)
            if (v := g.value(shape, SH.datatype)) is not None:
                rule.datatype = str(v)
            if (v := g.value(shape, SH["in"])) is not None:
                rule.allowed = frozenset(_key(t) for t in Collection(g, v))
            for predicate, compare in _RANGES.items():
                if (v := g.value(shape, predicate)) is not None:
                    rule.ranges.append((compare, v.toPython()))
            properties.append(rule)
            for constraint in g.objects(shape, SH.sparql):
                owners = [("class", str(c)) for s in node_shapes if shape in set(g.objects(s, SH.property))
                          for c in g.objects(s, SH.targetClass)]
                owners += [("subjectsOf", str(p)) for s in node_shapes if shape in set(g.objects(s, SH.property))
                           for p in g.objects(s, SH.targetSubjectsOf)]
                queries.append(_sparql_check(g, constraint, owners, str(path), prefixes))
                query_targets.append(_subjects_of_only(owners))
        return cls(properties, closed, queries, query_targets, [_properties_read(q) for q in queries])

    def breaks_core(self, terms: dict[str, list[tuple[Any, Any]]]) -> bool:
        """Whether one record's terms (property -> [(key, Python value)]) break a core constraint."""
        if self.closed is not None and any(p not in self.closed for p in terms):
            return True
        for rule in self.properties:
            values = terms.get(rule.path, ())
            if rule.max_count is not None and len(values) > rule.max_count:
                return True
            if rule.min_count is not None and len(values) < rule.min_count:
                return True
            for key, value in values:
                if rule.datatype is not None and (key[0] != "literal" or key[2] != rule.datatype):
                    return True
                if rule.allowed is not None and key not in rule.allowed:
                    return True
                for compare, bound in rule.ranges:
                    if not _comparable(value, bound) or not compare(value, bound):
                        return True
        return False


def _comparable(value: Any, bound: Any) -> bool:
    numbers = (int, float, Decimal)
    return (isinstance(value, numbers) and not isinstance(value, bool) and isinstance(bound, numbers) and not isinstance(bound, bool)
            and not (isinstance(value, float) and math.isnan(value)))


def _key(term: Any) -> tuple:
    if isinstance(term, URIRef):
        return ("iri", str(term))
    if isinstance(term, RdfLiteral):
        return ("literal", str(term), str(term.datatype) if term.datatype else XSD + "string")
    raise Unsupported(f"sh:in member {term!r}")


def _subjects_of_only(targets: list[tuple[str, str]]) -> frozenset[str] | None:
    if any(kind == "class" for kind, _ in targets):
        return None
    return frozenset(t for _, t in targets)


def _sparql_check(g, constraint, targets: list[tuple[str, str]], path: str | None, prefixes: str) -> str:
    for predicate in g.predicates(constraint, None):
        if predicate not in (RDF.type, RDFS.label, SH.message, SH.prefixes, SH.select):
            raise Unsupported(f"SPARQL constraint with {predicate}")
    select = str(g.value(constraint, SH.select)).replace("$this", "?this")
    if "$" in select.replace("$PATH", ""):
        raise Unsupported("a SPARQL constraint with pre-bound variables other than $this and $PATH")
    if path is not None:
        select = select.replace("$PATH", f"<{path}>")
    elif "$PATH" in select:
        raise Unsupported("$PATH in a node shape's constraint")
    if not targets:
        raise Unsupported("a SPARQL constraint whose shape has no target")
    # The queries run on the cohort's own store, where every subject is typed with the patient class
    # (``_sparql_failures``): a class target there already covers the subjects-of targets, and a union of
    # 36 of them made each query 15 times slower.
    classes = [t for t in targets if t[0] == "class"]
    if classes:
        targets = classes
    target = " UNION ".join(f"{{ ?this a <{t}> }}" if kind == "class" else f"{{ ?this <{t}> [] }}" for kind, t in targets)
    return f"{prefixes}SELECT DISTINCT ?this WHERE {{ {{ {target} }} {{ {select} }} }}"


def _properties_read(query: str) -> frozenset[str] | None:
    """The predicates of every triple pattern and property path of ``query`` (in EXISTS and subqueries too), or
    None if one is a variable or a negated property set: such a pattern can match any property."""
    found: set[str] = set()
    unknown = False

    def predicate(p: Any) -> None:
        nonlocal unknown
        if isinstance(p, URIRef):
            found.add(str(p))
        elif isinstance(p, (SequencePath, AlternativePath)):
            for part in p.args:
                predicate(part)
        elif isinstance(p, InvPath):
            predicate(p.arg)
        elif isinstance(p, MulPath):
            predicate(p.path)
        else:
            unknown = True

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                if name == "triples":
                    for triple in value:
                        predicate(triple[1])
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(prepareQuery(query).algebra)
    return None if unknown else frozenset(found)


@lru_cache(maxsize=1)
def compiled_shapes() -> CompiledShapes | None:
    """The compiled patient shapes, or None when they use something the compiler does not check."""
    try:
        return CompiledShapes.from_shapes()
    except Unsupported:
        return None


@dataclass
class FastRecord:
    """A valid record as the evidence lookup reads it: its fields and its facts (like ``PatientRecord``)."""

    id: str | None
    index: int
    fields: dict[str, Any]
    _facts: list[tuple[str, Any]]

    def facts(self) -> list[tuple[str, Any]]:
        return self._facts

    def get(self, path: str, default: Any = None) -> Any:
        return self.fields.get(path, default)


def _terms(fields: dict[str, Any]) -> dict[str, list[tuple[tuple, Any]]] | None:
    """property IRI -> [(term key, Python value)] of a record whose every value fits its field; None otherwise."""
    ctx = contract()
    out: dict[str, list[tuple[tuple, Any]]] = {}
    for path, value in fields.items():
        if path == "id":
            continue
        spec = ctx.fields[path]
        for item in (value if isinstance(value, list) else [value]):
            if spec.kind == "code":
                if not isinstance(item, str) or item not in spec.codes:
                    return None
                iri = spec.codes[item]
                out.setdefault(spec.property, []).append((("iri", iri), IRI(iri)))
                continue
            if isinstance(item, bool) != (spec.kind == "boolean"):
                return None
            if spec.kind == "integer" and not isinstance(item, int):
                return None
            if spec.kind == "decimal":
                if not isinstance(item, (int, float)):
                    return None
                lexical = format(Decimal(repr(item)) if isinstance(item, float) else Decimal(item), "f")
                # the value the lookup reads from that literal (report.python_value)
                number = Decimal(lexical)
                item = int(number) if number == number.to_integral_value() and "." not in lexical else float(number)
                out.setdefault(spec.property, []).append((("literal", lexical, _DATATYPE["decimal"]), item))
                continue
            if spec.kind not in _DATATYPE:
                return None
            lexical = ("true" if item else "false") if spec.kind == "boolean" else str(item)
            out.setdefault(spec.property, []).append((("literal", lexical, _DATATYPE[spec.kind]), item))
    return out


def _facts(terms: dict[str, list[tuple[tuple, Any]]]) -> list[tuple[str, Any]]:
    order = {spec.property: i for i, spec in enumerate(contract().fields.values())}
    facts = [(p, value) for p, values in terms.items() for _, value in values]
    facts.sort(key=lambda f: (order.get(f[0], len(order)), str(f[1])))
    return facts


def _ox_term(key: tuple) -> Any:
    if key[0] == "iri":
        return ox.NamedNode(key[1])
    return ox.Literal(key[1], datatype=ox.NamedNode(key[2]))


@dataclass
class CohortCheck:
    valid: list[Any]  # FastRecord or PatientRecord, in cohort order
    violations: list[Violation]  # of the invalid records, with their cohort index
    invalid_rows: set[int]


def check_cohort(items: list[Any], limits: Limits = DEFAULT_LIMITS, labels: list[Any] | None = None,
                 skip: set[int] = frozenset()) -> CohortCheck:
    """Validate a cohort of parsed JSON records (``items[i]`` is row ``labels[i]``, default its index).

    Valid records come back ready for the evidence lookup; an invalid one gets pyshacl's violations.
    ``skip``: indices already reported (a duplicate id found across the whole cohort), neither valid nor listed again."""
    compiled = compiled_shapes()
    ctx = contract()
    fast: dict[int, tuple[FastRecord, dict]] = {}
    slow: list[int] = []
    problems = Problems()
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if index in skip:
            continue
        if isinstance(item, dict) and count_keys(item, limits.keys) > limits.keys:
            exc = too_many_keys(limits.keys, None)
            problems.add(index, record_label(item, index)[1], "(record)", exc.rule, str(exc))
            continue
        if isinstance(item, dict) and json_depth(item, MAX_DEPTH) > MAX_DEPTH:
            problems.add(index, record_label(item, index)[1], "(record)", "type",
                         f"the record is nested too deeply (a patient record has at most {MAX_DEPTH} levels)")
            continue
        rid = item.get("id") if isinstance(item, dict) else None
        if isinstance(rid, str) and ID_PATTERN.fullmatch(rid):
            if rid in seen:
                problems.add(index, rid, "id", "unique", f"id {rid} is used by more than one record of the cohort (records {seen[rid]} and {index})", rid)
                continue
            seen[rid] = index
        own = Problems()
        _, rid, fields = _convert_record(item, index, own, allow_context=True)
        terms = _terms(fields) if not own.items and compiled is not None else None
        if terms is None or compiled.breaks_core(terms):
            slow.append(index)
        else:
            fast[index] = (FastRecord(rid, index, fields, _facts(terms)), terms)
    if fast and compiled is not None and compiled.queries:
        slow += _sparql_failures(compiled, fast)
        for index in slow:
            fast.pop(index, None)
    violations = list(problems.items)
    valid: dict[int, Any] = {index: record for index, (record, _) in fast.items()}
    slow = sorted(set(slow))
    if slow:
        report, records = parse_and_validate([items[i] for i in slow], limits=Limits(records=len(slow), keys=limits.keys,
                                                                                    violations=10 ** 9))
        bad = set()
        for v in report.violations:
            row = slow[v.index] if v.index is not None else None
            bad.add(row)
            violations.append(Violation(v.record if not isinstance(v.record, int) else row, row, v.field, v.rule, v.message, v.value))
        for record in records:
            row = slow[record.index]
            if row not in bad:
                record.index = row
                valid[row] = record
    invalid_rows = {v.index for v in violations if v.index is not None}
    violations.sort(key=lambda v: (-1 if v.index is None else v.index))
    ordered = [valid[i] for i in sorted(valid) if i not in invalid_rows]
    if labels is not None:
        for v in violations:
            if v.index is not None and isinstance(v.record, int):
                v.record = labels[v.index]
    return CohortCheck(ordered, violations, invalid_rows)


_MAX_VERDICTS = 100_000  # kept verdicts (a few hundred bytes each); past it they are forgotten and made again


def _sparql_failures(compiled: CompiledShapes, fast: dict[int, tuple[FastRecord, dict]]) -> list[int]:
    """Rows whose terms break a SHACL-SPARQL constraint: every constraint runs once over the whole cohort.
    One record (a request's common case) takes the verdicts kept for its values where there are some."""
    present = {prop for _, terms in fast.values() for prop in terms}
    todo = [i for i, needs in enumerate(compiled.query_targets) if needs is None or not needs.isdisjoint(present)]
    keys: dict[int, tuple] = {}
    if len(fast) == 1:
        (index, (_, terms)), = fast.items()
        for i in todo:
            key = compiled.verdict_key(i, terms)
            if key is not None:
                keys[i] = (index, *key)
        kept = {i: compiled.verdicts.get(key) for i, key in keys.items()}
        if any(kept.values()):
            return [index]
        todo = [i for i in todo if kept.get(i) is None]
        if not todo:
            return []
    store = ox.Store()
    patient_type = ox.NamedNode(contract().patient_class)
    rdf_type = ox.NamedNode(str(RDF.type))
    quads = []
    for index, (_, terms) in fast.items():
        subject = ox.NamedNode(f"urn:crlm-kg:cohort:{index}")
        quads.append(ox.Quad(subject, rdf_type, patient_type))
        for prop, values in terms.items():
            predicate = ox.NamedNode(prop)
            quads.extend(ox.Quad(subject, predicate, _ox_term(key)) for key, _ in values)
    store.extend(quads)
    failing: set[int] = set()
    if len(compiled.verdicts) > _MAX_VERDICTS:
        compiled.verdicts.clear()
    for i in todo:
        broken = {int(solution["this"].value.rsplit(":", 1)[1]) for solution in store.query(compiled.queries[i])}
        if i in keys:
            compiled.verdicts[keys[i]] = bool(broken)
        failing |= broken
    return sorted(failing)


def parse_and_validate_fast(data: Any, filename: str | None = None, content_type: str | None = None,
                            limits: Limits = DEFAULT_LIMITS) -> tuple[ValidationReport, list[Any]]:
    """``parse_and_validate``'s verdict at a fraction of its cost for the common request: plain contract JSON (one
    record or a list) whose every record is valid, checked by the compiled shapes. Anything else (JSON-LD,
    Turtle, FHIR, a context, a record that breaks a rule or that the compiler cannot check) goes to
    ``parse_and_validate``, so an invalid record gets pyshacl's own report."""
    if isinstance(data, (bytes, bytearray)) and detect_format(data, filename, content_type) == "json":
        problems = Problems()
        doc = load_json(bytes(data), problems, limits)
        items = [doc] if isinstance(doc, dict) else doc
        if (not problems.items and isinstance(items, list) and 0 < len(items) <= limits.records
                and all(isinstance(i, dict) and "@context" not in i and "resourceType" not in i for i in items)):
            checked = check_cohort(items, limits)
            if not checked.violations and len(checked.valid) == len(items):
                return ValidationReport(True, [], len(items), "json"), checked.valid
    return parse_and_validate(data, filename, content_type, limits)
