"""The evidence that applies to one patient.

Everything patient-specific is decided by SPARQL over the graph: the patient's
facts are passed to one query as a VALUES block (never spliced as text), and
that query evaluates every machine-evaluable criterion in the graph at once:
trial eligibility, recommendation applicability and the components of the
Fong clinical risk score. Python only combines the leaf results along the
all-of / any-of trees read from the graph, so adding a trial with criteria to
``data/`` makes it appear here with no code change.

Three-valued logic throughout: a criterion is ``met``, ``not-met`` or
``unknown`` (the patient's field is missing). An exclusion criterion describes
the excluding condition, so it is ``met`` when that condition does not hold.
Criteria kept as wording only (``crlm:freeTextOnly``) are listed with status
``unknown`` and ``evaluable: false``; they cannot decide a trial's status,
which is therefore computed over the evaluable criteria, as ``statusBasis``
says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable

from . import paths
from .store import IRI, Store, values_block

MET, NOT_MET, UNKNOWN = "met", "not-met", "unknown"

# One query evaluates every evaluable criterion and score component against the
# patient's facts (?char ?pv); a criterion on a field the patient lacks gives no
# row and reads as unknown. A comparison that cannot be made (a string
# against a number) leaves ?holds unbound, which reads as unknown.
LEAF_QUERY = """
SELECT ?crit ?pv ?holds WHERE {
  ?crit crlm:characteristic ?char ; crlm:comparison ?op .
  PATIENT_FACTS
  OPTIONAL { ?crit crlm:thresholdValue ?thr }
  OPTIONAL { ?crit crlm:requiredValue ?matchedValue FILTER(?matchedValue = ?pv) }
  BIND(BOUND(?matchedValue) AS ?inRequired)
  # Each comparison gets its own BIND and IF only chooses among variables:
  # Virtuoso cannot compile a comparison inside IF or COALESCE.
  BIND(?pv = ?thr AS ?equalsThreshold)
  BIND(?pv != ?thr AS ?differsFromThreshold)
  BIND(!?inRequired AS ?notInRequired)
  BIND(IF(BOUND(?thr), ?equalsThreshold, ?inRequired) AS ?equal)
  BIND(IF(BOUND(?thr), ?differsFromThreshold, ?notInRequired) AS ?notEqual)
  BIND(?pv < ?thr AS ?less)
  BIND(?pv <= ?thr AS ?lessOrEqual)
  BIND(?pv > ?thr AS ?greater)
  BIND(?pv >= ?thr AS ?greaterOrEqual)
  BIND(
    IF(?op = crlm:Equal, ?equal,
    IF(?op = crlm:NotEqual, ?notEqual,
    IF(?op = crlm:LessThan, ?less,
    IF(?op = crlm:LessThanOrEqual, ?lessOrEqual,
    IF(?op = crlm:GreaterThan, ?greater,
    IF(?op = crlm:GreaterThanOrEqual, ?greaterOrEqual, ?unboundOperator))))))
    AS ?holds)
}
"""

CRITERIA_QUERY = """
SELECT ?crit ?kind ?label ?quote ?char ?op ?thr ?freeText ?docLabel ?locator WHERE {
  ?crit a ?kind .
  VALUES ?kind { crlm:InclusionCriterion crlm:ExclusionCriterion crlm:EligibilityCriterion }
  OPTIONAL { ?crit rdfs:label ?label }
  OPTIONAL { ?crit crlm:sourceQuote ?quote }
  OPTIONAL { ?crit crlm:characteristic ?char }
  OPTIONAL { ?crit crlm:comparison ?op }
  OPTIONAL { ?crit crlm:thresholdValue ?thr }
  OPTIONAL { ?crit crlm:freeTextOnly ?freeText }
  OPTIONAL { ?crit crlm:sourceDocument/rdfs:label ?docLabel }
  OPTIONAL { ?crit crlm:sourceLocator ?locator }
}
"""

REQUIRED_VALUES_QUERY = """
SELECT ?crit ?value ?label WHERE { ?crit crlm:requiredValue ?value . OPTIONAL { ?value rdfs:label ?label } }
"""

GROUPS_QUERY = """
SELECT ?group ?type ?member WHERE {
  ?group a ?type ; crlm:hasMember ?member .
  VALUES ?type { crlm:AllOfGroup crlm:AnyOfGroup }
}
"""

HOLDERS_QUERY = """
SELECT ?holder ?root ?label ?acronym ?isStudy ?isStatement WHERE {
  ?holder crlm:hasEligibility ?root .
  OPTIONAL { ?holder rdfs:label ?label }
  OPTIONAL { ?holder crlm:acronym ?acronym }
  BIND(EXISTS { ?holder a/rdfs:subClassOf* crlm:Study } AS ?isStudy)
  BIND(EXISTS { ?holder a/rdfs:subClassOf* crlm:EvidenceStatement } AS ?isStatement)
}
"""

OUTCOMES_QUERY = """
SELECT ?study ?m ?kind ?label ?endpoint ?endpointLabel ?armLabel ?comparatorLabel ?population ?statistic ?value ?unit
       ?timePoint ?ciLower ?ciUpper ?pValue ?pComparator ?docLabel ?quote ?conflict WHERE {
  ?m crlm:ofStudy ?study ; a ?kind .
  FILTER(?kind = crlm:OutcomeMeasurement || EXISTS { ?kind rdfs:subClassOf* crlm:Comparison })
  OPTIONAL { ?m rdfs:label ?label }
  OPTIONAL { ?m crlm:endpoint ?endpoint OPTIONAL { ?endpoint rdfs:label ?endpointLabel } }
  OPTIONAL { ?m crlm:forArm|crlm:interventionArm ?arm . ?arm rdfs:label ?armLabel }
  OPTIONAL { ?m crlm:comparatorArm/rdfs:label ?comparatorLabel }
  OPTIONAL { ?m crlm:populationDescription ?population }
  OPTIONAL { ?m crlm:statistic ?statistic }
  OPTIONAL { ?m crlm:value ?value }
  OPTIONAL { ?m crlm:unit/rdfs:label ?unit }
  OPTIONAL { ?m crlm:timePointMonths ?timePoint }
  OPTIONAL { ?m crlm:ciLower ?ciLower }
  OPTIONAL { ?m crlm:ciUpper ?ciUpper }
  OPTIONAL { ?m crlm:pValue ?pValue }
  OPTIONAL { ?m crlm:pValueComparator ?pComparator }
  OPTIONAL { ?m crlm:sourceDocument/rdfs:label ?docLabel }
  OPTIONAL { ?m crlm:sourceQuote ?quote }
  OPTIONAL { ?m crlm:conflictsWith ?conflict }
}
"""

STATEMENTS_QUERY = """
SELECT ?s ?isRecommendation ?label ?text ?setting ?direction ?level ?system ?issuer ?docLabel ?quote ?conflict ?support ?supportLabel WHERE {
  ?s a/rdfs:subClassOf* crlm:EvidenceStatement .
  BIND(EXISTS { ?s a/rdfs:subClassOf* crlm:Recommendation } AS ?isRecommendation)
  OPTIONAL { ?s rdfs:label ?label }
  OPTIONAL { ?s crlm:statementText ?text }
  OPTIONAL { ?s crlm:studySetting ?setting }
  OPTIONAL { ?s crlm:direction/rdfs:label ?direction }
  OPTIONAL { ?s crlm:evidenceLevel ?level }
  OPTIONAL { ?s crlm:gradingSystem ?system }
  OPTIONAL { ?s crlm:issuedBy/rdfs:label ?issuer }
  OPTIONAL { ?s crlm:sourceDocument/rdfs:label ?docLabel }
  OPTIONAL { ?s crlm:sourceQuote ?quote }
  OPTIONAL { ?s crlm:conflictsWith ?conflict }
  OPTIONAL { ?s crlm:supportedBy ?support OPTIONAL { ?support rdfs:label ?supportLabel } }
}
"""

SCORE_QUERY = """
SELECT ?score ?label ?component ?points ?componentCharacteristic ?componentLabel ?zone ?zoneLabel ?lower ?upper ?docLabel ?quote WHERE {
  ?score a crlm:PrognosticScore .
  OPTIONAL { ?score rdfs:label ?label }
  OPTIONAL { ?score crlm:hasComponent ?component . ?component crlm:points ?points
             OPTIONAL { ?component crlm:characteristic ?componentCharacteristic }
             OPTIONAL { ?component rdfs:label ?componentLabel } }
  OPTIONAL { ?score crlm:hasZone ?zone . OPTIONAL { ?zone rdfs:label ?zoneLabel }
             OPTIONAL { ?zone crlm:lowerBound ?lower } OPTIONAL { ?zone crlm:upperBound ?upper } }
  OPTIONAL { ?score crlm:sourceDocument/rdfs:label ?docLabel }
  OPTIONAL { ?score crlm:sourceQuote ?quote }
}
"""

SIDEDNESS_QUERY = """
SELECT ?location ?sidedness ?docLabel ?quote WHERE {
  ?location crlm:locationSidedness ?sidedness .
  OPTIONAL { ?rule crlm:sidednessRuleFor ?location ; crlm:sourceDocument/rdfs:label ?docLabel ; crlm:sourceQuote ?quote }
}
"""

DEFINED_CLASSES_QUERY = """
SELECT ?class ?prop ?hasValue ?facet ?limit WHERE {
  ?class owl:equivalentClass/owl:intersectionOf/rdf:rest*/rdf:first ?restriction .
  ?class rdfs:subClassOf* crlm:Patient .
  ?restriction owl:onProperty ?prop .
  { ?restriction owl:hasValue ?hasValue }
  UNION
  { ?restriction owl:someValuesFrom/owl:withRestrictions/rdf:rest*/rdf:first ?f . ?f ?facet ?limit .
    FILTER(?facet IN (xsd:minInclusive, xsd:maxInclusive, xsd:minExclusive, xsd:maxExclusive)) }
}
"""

FONG_SCORE = IRI(paths.CRLMD + "FongClinicalRiskScore")
TUMOUR_BURDEN_SCORE = IRI(paths.CRLMD + "TumourBurdenScore")
FONG_PROPERTY = IRI(paths.CRLM + "fongScore")
TBS_PROPERTY = IRI(paths.CRLM + "tumourBurdenScore")
SIDEDNESS_PROPERTY = IRI(paths.CRLM + "primaryTumourSidedness")
LOCATION_PROPERTY = IRI(paths.CRLM + "primaryTumourLocation")


def _first(current: Any, candidate: Any) -> Any:
    """The smallest of the values seen, so a node with several quotes or labels reads the same on every engine."""
    if candidate is None:
        return current
    return candidate if current is None or str(candidate) < str(current) else current


def _deterministic(entry: dict[str, Any]) -> dict[str, Any]:
    for key in ("settings", "conflictsWith"):
        if key in entry:
            entry[key] = sorted(entry[key])
    if "supportedBy" in entry:
        entry["supportedBy"] = sorted(entry["supportedBy"], key=lambda s: s["id"])
    return entry


def _short(iri: Any) -> str:
    text = str(iri)
    for prefix in (paths.CRLMD, paths.CRLM):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


@dataclass
class Criterion:
    iri: str
    kind: str  # inclusion / exclusion
    label: str | None
    quote: str | None
    characteristic: str | None
    operator: str | None
    threshold: Any
    required: list[str] = field(default_factory=list)
    required_labels: list[str] = field(default_factory=list)
    evaluable: bool = True
    source: str | None = None
    locator: str | None = None

    @property
    def text(self) -> str:
        return self.label or self.quote or _short(self.iri)


def combine(kind: str, statuses: Iterable[str]) -> str:
    statuses = list(statuses)
    if not statuses:
        return MET
    if kind == "any":
        if MET in statuses:
            return MET
        return NOT_MET if all(s == NOT_MET for s in statuses) else UNKNOWN
    if NOT_MET in statuses:
        return NOT_MET
    return MET if all(s == MET for s in statuses) else UNKNOWN


class EvidenceLookup:
    """Evaluate patients against the graph in ``store``.

    The graph's structure (criteria trees, outcome figures, statements) is read
    once and kept: the graph is read-only while the service runs. Each patient
    then costs one SPARQL query.
    """

    def __init__(self, store: Store):
        self.store = store

    # -- the graph's structure, read once ---------------------------------

    @cached_property
    def criteria(self) -> dict[str, Criterion]:
        result: dict[str, Criterion] = {}
        for row in self.store.select(CRITERIA_QUERY):
            iri = str(row["crit"])
            kind = "exclusion" if str(row["kind"]).endswith("ExclusionCriterion") else "inclusion"
            existing = result.get(iri)
            if existing is not None:
                if kind == "exclusion":
                    existing.kind = kind
                existing.label = _first(existing.label, row.get("label"))
                existing.quote = _first(existing.quote, row.get("quote"))
                existing.source = _first(existing.source, row.get("docLabel"))
                existing.locator = _first(existing.locator, row.get("locator"))
                continue
            result[iri] = Criterion(
                iri=iri,
                kind=kind,
                label=row.get("label"),
                quote=row.get("quote"),
                characteristic=str(row["char"]) if "char" in row else None,
                operator=_short(row["op"]) if "op" in row else None,
                threshold=row.get("thr"),
                evaluable=("char" in row and "op" in row and row.get("freeText") is not True),
                source=row.get("docLabel"),
                locator=row.get("locator"),
            )
        for row in sorted(self.store.select(REQUIRED_VALUES_QUERY), key=lambda r: (str(r["crit"]), str(r["value"]))):
            crit = result.get(str(row["crit"]))
            if crit is not None and str(row["value"]) not in crit.required:
                crit.required.append(str(row["value"]))
                crit.required_labels.append(row.get("label") or _short(row["value"]))
        return result

    @cached_property
    def groups(self) -> dict[str, tuple[str, list[str]]]:
        groups: dict[str, tuple[str, list[str]]] = {}
        for row in self.store.select(GROUPS_QUERY):
            kind = "any" if str(row["type"]).endswith("AnyOfGroup") else "all"
            groups.setdefault(str(row["group"]), (kind, []))[1].append(str(row["member"]))
        for _, members in groups.values():
            members.sort()
        return groups

    @cached_property
    def holders(self) -> list[dict[str, Any]]:
        holders: dict[str, dict[str, Any]] = {}
        for row in self.store.select(HOLDERS_QUERY):
            iri = str(row["holder"])
            entry = holders.setdefault(iri, {"iri": iri, "roots": [], "acronym": None, "fullLabel": None,
                                             "isStudy": bool(row.get("isStudy")), "isStatement": bool(row.get("isStatement"))})
            entry["acronym"] = _first(entry["acronym"], row.get("acronym"))
            entry["fullLabel"] = _first(entry["fullLabel"], row.get("label"))
            if str(row["root"]) not in entry["roots"]:
                entry["roots"].append(str(row["root"]))
        for entry in holders.values():
            entry["roots"].sort()
            entry["label"] = entry["acronym"] or entry["fullLabel"] or _short(entry["iri"])
        return sorted(holders.values(), key=lambda h: (h["label"], h["iri"]))

    @cached_property
    def outcomes(self) -> dict[str, list[dict[str, Any]]]:
        by_study: dict[str, dict[str, dict[str, Any]]] = {}
        for row in self.store.select(OUTCOMES_QUERY):
            study, node = str(row["study"]), str(row["m"])
            entry = by_study.setdefault(study, {}).get(node)
            if entry is None:
                entry = {
                    "id": _short(node),
                    "kind": "measurement" if str(row["kind"]).endswith("OutcomeMeasurement") else _short(row["kind"]),
                    "label": row.get("label"),
                    "endpoint": row.get("endpointLabel") or (_short(row["endpoint"]) if "endpoint" in row else None),
                    "arm": row.get("armLabel"),
                    "comparator": row.get("comparatorLabel"),
                    "population": row.get("population"),
                    "statistic": row.get("statistic"),
                    "value": row.get("value"),
                    "unit": row.get("unit"),
                    "timePointMonths": row.get("timePoint"),
                    "ciLower": row.get("ciLower"),
                    "ciUpper": row.get("ciUpper"),
                    "pValue": row.get("pValue"),
                    "pValueComparator": row.get("pComparator"),
                    "source": row.get("docLabel"),
                    "quote": row.get("quote"),
                    "conflictsWith": [],
                }
                by_study[study][node] = entry
            for key, column in (("label", "label"), ("source", "docLabel"), ("quote", "quote"), ("arm", "armLabel"),
                                ("comparator", "comparatorLabel"), ("population", "population")):
                entry[key] = _first(entry[key], row.get(column))
            if "conflict" in row and _short(row["conflict"]) not in entry["conflictsWith"]:
                entry["conflictsWith"].append(_short(row["conflict"]))
        return {s: sorted((_deterministic(e) for e in v.values()), key=lambda e: e["id"]) for s, v in by_study.items()}

    @cached_property
    def statements(self) -> list[dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for row in self.store.select(STATEMENTS_QUERY):
            iri = str(row["s"])
            entry = result.get(iri)
            if entry is None:
                entry = result[iri] = {
                    "id": _short(iri),
                    "kind": "recommendation" if row.get("isRecommendation") else "evidence statement",
                    "label": row.get("label"),
                    "text": row.get("text"),
                    "settings": [],
                    "direction": row.get("direction"),
                    "level": row.get("level"),
                    "gradingSystem": row.get("system"),
                    "issuedBy": row.get("issuer"),
                    "source": row.get("docLabel"),
                    "quote": row.get("quote"),
                    "supportedBy": [],
                    "conflictsWith": [],
                }
            for key, column in (("label", "label"), ("text", "text"), ("source", "docLabel"), ("quote", "quote"),
                                ("level", "level"), ("issuedBy", "issuer")):
                entry[key] = _first(entry[key], row.get(column))
            if "setting" in row and _short(row["setting"]) not in entry["settings"]:
                entry["settings"].append(_short(row["setting"]))
            if "conflict" in row and _short(row["conflict"]) not in entry["conflictsWith"]:
                entry["conflictsWith"].append(_short(row["conflict"]))
            if "support" in row:
                support = {"id": _short(row["support"]), "label": row.get("supportLabel")}
                if support not in entry["supportedBy"]:
                    entry["supportedBy"].append(support)
        return sorted((_deterministic(e) for e in result.values()), key=lambda s: s["id"])

    @cached_property
    def scores(self) -> dict[str, dict[str, Any]]:
        scores: dict[str, dict[str, Any]] = {}
        for row in self.store.select(SCORE_QUERY):
            entry = scores.setdefault(str(row["score"]), {"label": None, "components": {}, "zones": {}, "source": None, "quote": None})
            for key, column in (("label", "label"), ("source", "docLabel"), ("quote", "quote")):
                entry[key] = _first(entry[key], row.get(column))
            if "component" in row:
                characteristic = row.get("componentCharacteristic")
                entry["components"][str(row["component"])] = (int(row["points"]), str(characteristic) if characteristic else None,
                                                              row.get("componentLabel"))
            if "zone" in row:
                entry["zones"][str(row["zone"])] = (row.get("zoneLabel"), row.get("lower"), row.get("upper"))
        return scores

    @cached_property
    def sidedness_rules(self) -> dict[str, tuple[str, str | None, str | None]]:
        try:
            rows = self.store.select(SIDEDNESS_QUERY)
        except Exception:
            return {}
        return {str(r["location"]): (str(r["sidedness"]), r.get("docLabel"), r.get("quote")) for r in rows}

    @cached_property
    def defined_classes(self) -> dict[str, list[tuple[str, str, Any]]]:
        """Patient classes defined by owl:hasValue or datatype facets, read from the ontology."""
        classes: dict[str, list[tuple[str, str, Any]]] = {}
        for row in self.store.select(DEFINED_CLASSES_QUERY):
            prop = str(row["prop"])
            if "hasValue" in row:
                condition = (prop, "hasValue", row["hasValue"])
            else:
                condition = (prop, _short(row["facet"]).rsplit("#", 1)[-1], row["limit"])
            classes.setdefault(_short(row["class"]), []).append(condition)
        return classes

    # -- one patient ------------------------------------------------------

    def _facts(self, record) -> list[tuple[str, Any]]:
        facts = [(p, v) for p, v in record.facts() if not (isinstance(v, str) and v == "unknown")]
        facts = [(p, v) for p, v in facts if not (isinstance(v, IRI) and _short(v).lower().endswith("unknown"))]
        return facts

    def derive(self, record, facts: list[tuple[str, Any]]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        """Derived values (sidedness, tumour burden score) and the facts they add."""
        from . import patients

        derived: dict[str, Any] = {}
        added: list[tuple[str, Any]] = []
        by_prop = {}
        for p, v in facts:
            by_prop.setdefault(str(p), v)

        location = by_prop.get(str(LOCATION_PROPERTY))
        if location is None:
            derived["sidedness"] = None
        else:
            rule = self.sidedness_rules.get(str(location))
            if rule is None:
                derived["sidedness"] = None
                derived["sidednessNote"] = f"{record.fields.get('primaryTumor.location')} is not classified as left or right by the NCCN definition"
            else:
                derived["sidedness"] = "left" if rule[0].endswith("LeftSided") else "right"
                derived["sidednessSource"] = {"source": rule[1], "quote": rule[2]}
                added.append((str(SIDEDNESS_PROPERTY), IRI(rule[0])))

        count = record.fields.get("liverMetastases.count")
        diameter = record.fields.get("liverMetastases.largestDiameterMm")
        tbs_info = self.scores.get(str(TUMOUR_BURDEN_SCORE), {})
        if isinstance(count, (int, float)) and isinstance(diameter, (int, float)):
            value = round(math.sqrt((diameter / 10.0) ** 2 + count**2), 2)
            zone = None
            for label, lower, upper in tbs_info.get("zones", {}).values():
                if (lower is None or value >= lower) and (upper is None or value < upper):
                    zone = label
            derived["tumourBurdenScore"] = {"value": value, "zone": zone, "rule": "sqrt((largest diameter, cm)^2 + (number of liver metastases)^2)",
                                            "source": tbs_info.get("source"), "quote": tbs_info.get("quote")}
            added.append((str(TBS_PROPERTY), value))
        else:
            missing = [f for f, v in (("liverMetastases.count", count), ("liverMetastases.largestDiameterMm", diameter)) if v is None]
            derived["tumourBurdenScore"] = {"value": None, "zone": None, "missing": missing, "source": tbs_info.get("source")}
        return derived, added

    def evaluate_leaves(self, facts: list[tuple[str, Any]]) -> dict[str, tuple[str, list[Any]]]:
        """Status of every evaluable criterion in the graph for these facts: one SPARQL query."""
        rows = [(IRI(str(p)), v) for p, v in facts]
        if not rows:
            return {}
        query = LEAF_QUERY.replace("PATIENT_FACTS", values_block(["char", "pv"], rows))
        holds: dict[str, list[bool | None]] = {}
        values: dict[str, list[Any]] = {}
        for row in self.store.select(query):
            crit = str(row["crit"])
            holds.setdefault(crit, [])
            values.setdefault(crit, [])
            if "pv" in row:
                holds[crit].append(row.get("holds"))
                values[crit].append(row["pv"])
        result = {}
        for crit, outcome in holds.items():
            criterion = self.criteria.get(crit)
            negate_all = criterion is not None and criterion.operator == "NotEqual"
            if not outcome:
                condition = None
            elif any(h is None for h in outcome):
                condition = None
            elif negate_all:
                condition = all(outcome)
            else:
                condition = any(outcome)
            result[crit] = (condition, values.get(crit, []))
        return result

    def _criterion_status(self, criterion: Criterion, leaves) -> tuple[str, list[Any]]:
        if not criterion.evaluable:
            return UNKNOWN, []
        condition, pvalues = leaves.get(criterion.iri, (None, []))
        if condition is None:
            return UNKNOWN, pvalues
        holds = condition if criterion.kind == "inclusion" else not condition
        return (MET if holds else NOT_MET), pvalues

    def _evaluate_tree(self, node: str, leaves, record, out: list[dict[str, Any]], seen: set[str]) -> str:
        if node in seen:  # a cycle in the data must not hang the service
            return UNKNOWN
        seen = seen | {node}
        if node in self.groups:
            kind, members = self.groups[node]
            statuses = [self._evaluate_tree(m, leaves, record, out, seen) for m in members]
            evaluable = [s for s, m in zip(statuses, members) if self._is_evaluable(m)]
            # a group of wording-only criteria decides nothing: it is unknown, not vacuously met
            return combine(kind, evaluable) if evaluable else UNKNOWN
        criterion = self.criteria.get(node)
        if criterion is None:
            return UNKNOWN
        status, pvalues = self._criterion_status(criterion, leaves)
        out.append(self._criterion_json(criterion, status, pvalues, record))
        return status

    def _is_evaluable(self, node: str) -> bool:
        if node in self.groups:
            return any(self._is_evaluable(m) for m in self.groups[node][1])
        criterion = self.criteria.get(node)
        return criterion is not None and criterion.evaluable

    def _criterion_json(self, criterion: Criterion, status: str, pvalues: list[Any], record) -> dict[str, Any]:
        from . import patients

        field_name = patients.json_path_for(criterion.characteristic) if criterion.characteristic else None
        patient_value = record.fields.get(field_name) if field_name else None
        if patient_value is None and pvalues:
            patient_value = _plain(pvalues[0]) if len(pvalues) == 1 else [_plain(v) for v in pvalues]
        entry = {
            "id": _short(criterion.iri),
            "text": criterion.text,
            "kind": criterion.kind,
            "status": status,
            "evaluable": criterion.evaluable,
            "field": field_name or (_short(criterion.characteristic) if criterion.characteristic else None),
            "patientValue": patient_value,
            "sourceWording": criterion.quote,
            "source": criterion.source,
        }
        if criterion.evaluable:
            entry["rule"] = _rule_text(criterion)
        return entry

    def _status_of(self, roots: list[str], leaves, record) -> tuple[str, list[dict[str, Any]]]:
        criteria: list[dict[str, Any]] = []
        statuses = [self._evaluate_tree(root, leaves, record, criteria, set()) for root in roots]
        status = combine("all", statuses) if statuses else UNKNOWN
        unique = {c["id"]: c for c in criteria}
        return status, list(unique.values())

    def fong(self, leaves, record) -> dict[str, Any]:
        from . import patients

        info = self.scores.get(str(FONG_SCORE))
        if not info or not info["components"]:
            return {"min": None, "max": None, "missing": [], "source": None, "note": "the Fong score is not in the graph"}
        low = high = 0
        missing: list[str] = []
        points_detail = []
        for component, (points, char, label) in sorted(info["components"].items()):
            condition, _ = leaves.get(component, (None, []))
            field_name = patients.json_path_for(char) if char else None
            if condition is True:
                low += points
                high += points
            elif condition is None:
                high += points
                missing.append(field_name or _short(component))
            points_detail.append({"component": _short(component), "label": label, "field": field_name, "points": points if condition else 0,
                                  "status": UNKNOWN if condition is None else (MET if condition else NOT_MET)})
        rule = "; ".join(sorted(d["label"] or d["component"] for d in points_detail))
        return {"min": low, "max": high, "missing": sorted(set(missing)), "components": points_detail,
                "rule": f"sum of the components' points: {rule}", "source": info.get("source"), "quote": info.get("quote")}

    def patient_classes(self, facts: list[tuple[str, Any]]) -> list[str]:
        """The ontology's defined patient classes this patient falls in (the reasoner's answer, computed directly)."""
        by_prop: dict[str, list[Any]] = {}
        for p, v in facts:
            by_prop.setdefault(str(p), []).append(v)
        members = []
        for cls, conditions in self.defined_classes.items():
            ok = True
            for prop, test, limit in conditions:
                vals = by_prop.get(prop, [])
                if test == "hasValue":
                    ok = any(_plain(v) == _plain(limit) for v in vals)
                else:
                    ok = any(_facet_holds(test, v, limit) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool))
                if not ok:
                    break
            if ok and conditions:
                members.append(cls)
        return sorted(members)

    def evaluate(self, record) -> dict[str, Any]:
        facts = self._facts(record)
        derived, added = self.derive(record, facts)
        facts = facts + added
        leaves = self.evaluate_leaves(facts)
        fong = self.fong(leaves, record)
        derived["fongScore"] = fong
        if fong.get("min") is not None and fong["min"] == fong["max"]:
            fong_fact = (str(FONG_PROPERTY), fong["min"])
            facts.append(fong_fact)
            # criteria on the Fong score (CHARISMA: CRS 3-5) need the derived score; a criterion
            # tests one characteristic, so evaluating just this fact adds their rows to the rest
            leaves = {**leaves, **self.evaluate_leaves([fong_fact])}
        derived["futureLiverRemnantAdequate"] = self.flr_adequacy(record)
        derived["classes"] = self.patient_classes(facts)

        trials, applicable_statements = [], []
        for holder in self.holders:
            status, criteria = self._status_of(holder["roots"], leaves, record)
            if holder["isStudy"]:
                status_word = {MET: "eligible", NOT_MET: "ineligible", UNKNOWN: "undetermined"}[status]
                trial = {
                    "id": _short(holder["iri"]),
                    "label": holder["label"],
                    "status": status_word,
                    "statusBasis": "machine-evaluable criteria; criteria with evaluable=false need screening",
                    "criteria": criteria,
                    "missingFields": sorted({c["field"] for c in criteria if c["status"] == UNKNOWN and c["evaluable"] and c["field"]}),
                    "outcomes": self.outcomes.get(holder["iri"], []) if status != NOT_MET else [],
                }
                trials.append(trial)
            elif holder["isStatement"]:
                applicable_statements.append((holder["iri"], status, criteria))
        order = {"eligible": 0, "undetermined": 1, "ineligible": 2}
        trials.sort(key=lambda t: (order[t["status"]], t["label"]))

        return {
            "patient": record.id,
            "derived": derived,
            "trials": trials,
            "recommendations": self._applicable_statements(record, applicable_statements),
        }

    def _applicable_statements(self, record, evaluated) -> list[dict[str, Any]]:
        setting = record.fields.get("liverMetastases.resectability")
        setting_iri = {"resectable": "Resectable", "borderline": "BorderlineResectable", "unresectable": "Unresectable"}.get(setting)
        status_by_statement = {iri: (status, criteria) for iri, status, criteria in evaluated}
        result = []
        for statement in self.statements:
            iri = paths.CRLMD + statement["id"] if not statement["id"].startswith("http") else statement["id"]
            applicability = "general"
            if statement["settings"]:
                if setting_iri is None:
                    applicability = "setting unknown"
                elif setting_iri in statement["settings"]:
                    applicability = "setting matches"
                else:
                    continue
            criteria = []
            if iri in status_by_statement:
                status, criteria = status_by_statement[iri]
                if status == NOT_MET:
                    continue
                applicability += "; patient criteria " + ("met" if status == MET else "partly unknown")
            entry = dict(statement)
            entry["applicability"] = applicability
            entry["conflict"] = bool(statement["conflictsWith"])
            if criteria:
                entry["criteria"] = criteria
            result.append(entry)
        kind_order = {"recommendation": 0, "evidence statement": 1}
        result.sort(key=lambda s: (kind_order.get(s["kind"], 2), s["id"]))
        return result

    def flr_adequacy(self, record) -> dict[str, Any]:
        """FLR adequacy against the threshold for this patient's liver (contract: 20 / 30 / 40 %)."""
        flr = record.fields.get("liver.futureLiverRemnantPercent")
        injury = record.fields.get("liver.chemotherapyAssociatedInjury")
        fibrosis = record.fields.get("liver.fibrosisOrCirrhosis")
        rules = self.flr_thresholds
        if fibrosis is True:
            key = "fibrosis"
        elif injury is True:
            key = "injury"
        elif fibrosis is False and injury is False:
            key = "normal"
        else:
            key = None
        missing = [f for f, v in (("liver.chemotherapyAssociatedInjury", injury), ("liver.fibrosisOrCirrhosis", fibrosis)) if v is None]
        if key is None:
            # the threshold depends on unknown liver condition: decide only if the FLR passes or fails every candidate
            candidates = [rules[k]["threshold"] for k in ("normal", "injury", "fibrosis") if k in rules]
            if flr is None or not candidates:
                return {"value": None, "threshold": None, "missing": (["liver.futureLiverRemnantPercent"] if flr is None else []) + missing,
                        "source": rules.get("normal", {}).get("source")}
            if flr >= max(candidates):
                return {"value": True, "threshold": max(candidates), "missing": missing, "note": "adequate for any liver condition", "source": rules.get("fibrosis", {}).get("source")}
            if flr < min(candidates):
                return {"value": False, "threshold": min(candidates), "missing": missing, "note": "inadequate even for a normal liver", "source": rules.get("normal", {}).get("source")}
            return {"value": None, "threshold": None, "range": [min(candidates), max(candidates)], "missing": missing, "source": rules.get("normal", {}).get("source")}
        rule = rules.get(key)
        if rule is None:
            return {"value": None, "threshold": None, "missing": [], "note": "FLR thresholds are not in the graph"}
        if flr is None:
            return {"value": None, "threshold": rule["threshold"], "missing": ["liver.futureLiverRemnantPercent"], "source": rule["source"], "quote": rule["quote"]}
        return {"value": flr >= rule["threshold"], "threshold": rule["threshold"], "liverCondition": key, "source": rule["source"], "quote": rule["quote"]}

    @cached_property
    def flr_thresholds(self) -> dict[str, dict[str, Any]]:
        rows = self.store.select(
            """SELECT ?rule ?threshold ?condition ?docLabel ?quote WHERE {
                 ?rule a crlm:FutureLiverRemnantThreshold ; crlm:thresholdValue ?threshold ; crlm:liverCondition ?condition .
                 OPTIONAL { ?rule crlm:sourceDocument/rdfs:label ?docLabel }
                 OPTIONAL { ?rule crlm:sourceQuote ?quote } }"""
        ) if self._has_class("FutureLiverRemnantThreshold") else []
        result = {}
        for row in rows:
            result[str(row["condition"])] = {"threshold": row["threshold"], "source": row.get("docLabel"), "quote": row.get("quote")}
        return result

    def _has_class(self, name: str) -> bool:
        return self.store.ask(f"ASK {{ ?x a crlm:{name} }}")


def _facet_holds(facet: str, value: float, limit: Any) -> bool:
    limit = float(limit)
    return {
        "minInclusive": value >= limit,
        "maxInclusive": value <= limit,
        "minExclusive": value > limit,
        "maxExclusive": value < limit,
    }.get(facet, False)


def _plain(value: Any) -> Any:
    return _short(value) if isinstance(value, IRI) else value


_OPERATOR_TEXT = {"Equal": "=", "NotEqual": "≠", "LessThan": "<", "LessThanOrEqual": "≤", "GreaterThan": ">", "GreaterThanOrEqual": "≥"}


def _rule_text(criterion: Criterion) -> str:
    op = _OPERATOR_TEXT.get(criterion.operator or "", criterion.operator or "?")
    if criterion.required:
        target = " or ".join(criterion.required_labels) if op == "=" else "none of " + ", ".join(criterion.required_labels)
        op = "is" if op == "=" else "is"
    else:
        target = criterion.threshold
        if isinstance(target, bool):
            target = str(target).lower()
    name = _short(criterion.characteristic) if criterion.characteristic else "?"
    prefix = "excluded if " if criterion.kind == "exclusion" else ""
    return f"{prefix}{name} {op} {target}"
