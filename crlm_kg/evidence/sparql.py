"""Every SPARQL text the evidence lookup runs.

Only ``leaf_query`` runs per patient; the others read the graph's structure
once (``structure.GraphStructure``). The patient's facts enter the leaf query
as a VALUES block of escaped terms, never spliced as text.
"""

from __future__ import annotations

from ..store import values_block
from . import operators

# One query evaluates every evaluable criterion and score component against the patient's facts (?char ?pv);
# a criterion on a field the patient lacks gives no row and reads as unknown. A comparison that cannot be made
# (a string against a number) or an operator outside operators.OPERATORS leaves ?holds unbound: unknown.
# The answer is one string, a line "<fact number> <criterion IRI> 1|0|u" per (criterion, patient value): turning
# hundreds of solution terms into Python objects cost four times the query itself. The fact number says which
# fact a line compares, so that the lookup can keep each fact's outcomes and ask again only for new facts.
_LEAF_TEMPLATE = """
SELECT (GROUP_CONCAT(?line; separator="\\n") AS ?leaves) WHERE {
  PATIENT_FACTS
  ?crit crlm:characteristic ?char ; crlm:comparison ?op .
  OPTIONAL { ?crit crlm:thresholdValue ?thr }
  OPTIONAL { ?crit crlm:requiredValue ?matchedValue FILTER(?matchedValue = ?pv) }
  BIND(BOUND(?matchedValue) AS ?inRequired)
OPERATOR_BINDS
  BIND(CONCAT(STR(?fact), " ", STR(?crit), IF(BOUND(?holds), IF(?holds, " 1", " 0"), " u")) AS ?line)
}
""".replace("OPERATOR_BINDS", operators.leaf_binds())


def leaf_query(rows: list[tuple[object, object]]) -> str:
    """The leaf query for the facts ``rows`` ((characteristic, value) pairs), numbered from 0 in order."""
    return _LEAF_TEMPLATE.replace("PATIENT_FACTS", values_block(["char", "pv", "fact"], [(c, v, i) for i, (c, v) in enumerate(rows)]))


# The same query for many groups of facts at once (cohort screening): each fact row carries its group's number
# and its own number within the group, and the answer has one row per group.
_COHORT_LEAF_TEMPLATE = _LEAF_TEMPLATE.replace("SELECT (GROUP_CONCAT", "SELECT ?patient (GROUP_CONCAT").rstrip() + " GROUP BY ?patient\n"


def cohort_leaf_query(rows: list[tuple[int, object, object]]) -> str:
    """``rows``: (group number, characteristic IRI, value); each group's facts are numbered from 0 in order,
    as ``leaf_query`` numbers one patient's (``parse_leaves`` reads each group's answer)."""
    counts: dict[int, int] = {}
    numbered = []
    for group, char, value in rows:
        number = counts[group] = counts.get(group, -1) + 1
        numbered.append((group, char, value, number))
    return _COHORT_LEAF_TEMPLATE.replace("PATIENT_FACTS", values_block(["patient", "char", "pv", "fact"], numbered))


def parse_leaves(text: str | None, facts: int) -> list[list[tuple[str, bool | None]]]:
    """For each fact (by number), the (criterion IRI, outcome) pairs it gives (outcome None: not comparable)."""
    result: list[list[tuple[str, bool | None]]] = [[] for _ in range(facts)]
    for line in (text or "").split("\n"):
        if line:
            number, rest = line.split(" ", 1)
            iri, flag = rest.rsplit(" ", 1)
            result[int(number)].append((iri, True if flag == "1" else (False if flag == "0" else None)))
    return result


# Criteria of trials and populations, and the components of prognostic scores (which are leaves too).
CRITERIA = """
SELECT ?crit ?kind ?label ?quote ?char ?op ?thr ?freeText ?docLabel ?locator ?note WHERE {
  ?crit a ?kind .
  VALUES ?kind { crlm:InclusionCriterion crlm:ExclusionCriterion crlm:EligibilityCriterion crlm:ScoreComponent }
  OPTIONAL { ?crit rdfs:label ?label }
  OPTIONAL { ?crit crlm:sourceQuote ?quote }
  OPTIONAL { ?crit crlm:characteristic ?char }
  OPTIONAL { ?crit crlm:comparison ?op }
  OPTIONAL { ?crit crlm:thresholdValue ?thr }
  OPTIONAL { ?crit crlm:freeTextOnly ?freeText }
  OPTIONAL { ?crit crlm:sourceDocument/rdfs:label ?docLabel }
  OPTIONAL { ?crit crlm:sourceLocator ?locator }
  OPTIONAL { ?crit crlm:curationNote ?note }
}
"""

REQUIRED_VALUES = """
SELECT ?crit ?value ?label WHERE { ?crit crlm:requiredValue ?value . OPTIONAL { ?value rdfs:label ?label } }
"""

GROUPS = """
SELECT ?group ?type ?member WHERE {
  ?group a ?type ; crlm:hasMember ?member .
  VALUES ?type { crlm:AllOfGroup crlm:AnyOfGroup }
}
"""

HOLDERS = """
SELECT ?holder ?root ?label ?acronym ?isStudy ?isStatement WHERE {
  ?holder crlm:hasEligibility ?root .
  OPTIONAL { ?holder rdfs:label ?label }
  OPTIONAL { ?holder crlm:acronym ?acronym }
  BIND(EXISTS { ?holder a/rdfs:subClassOf* crlm:Study } AS ?isStudy)
  BIND(EXISTS { ?holder a/rdfs:subClassOf* crlm:EvidenceStatement } AS ?isStatement)
}
"""

OUTCOMES = """
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

STATEMENTS = """
SELECT ?s ?isRecommendation ?label ?text ?setting ?direction ?directionLabel ?level ?system ?issuer ?docLabel ?quote ?locator
       ?conflict ?support ?supportLabel WHERE {
  ?s a/rdfs:subClassOf* crlm:EvidenceStatement .
  BIND(EXISTS { ?s a/rdfs:subClassOf* crlm:Recommendation } AS ?isRecommendation)
  OPTIONAL { ?s rdfs:label ?label }
  OPTIONAL { ?s crlm:statementText ?text }
  OPTIONAL { ?s crlm:studySetting ?setting }
  OPTIONAL { ?s crlm:direction ?direction OPTIONAL { ?direction rdfs:label ?directionLabel } }
  OPTIONAL { ?s crlm:evidenceLevel ?level }
  OPTIONAL { ?s crlm:gradingSystem ?system }
  OPTIONAL { ?s crlm:issuedBy/rdfs:label ?issuer }
  OPTIONAL { ?s crlm:sourceDocument/rdfs:label ?docLabel }
  OPTIONAL { ?s crlm:sourceQuote ?quote }
  OPTIONAL { ?s crlm:sourceLocator ?locator }
  OPTIONAL { ?s crlm:conflictsWith ?conflict }
  OPTIONAL { ?s crlm:supportedBy ?support OPTIONAL { ?support rdfs:label ?supportLabel } }
}
"""

# The treatments a statement is about, cautions against, or reserves for its population.
STATEMENT_TREATMENTS = """
SELECT ?s ?property ?treatment ?treatmentLabel WHERE {
  ?s ?property ?treatment .
  VALUES ?property { crlm:aboutTreatment crlm:cautionAgainst crlm:restrictsTreatment }
  OPTIONAL { ?treatment rdfs:label ?treatmentLabel }
}
"""

# Direct named subclass links; the closure is computed once in Python.
SUBCLASSES = """
SELECT ?sub ?super WHERE { ?sub rdfs:subClassOf ?super FILTER(isIRI(?sub) && isIRI(?super)) }
"""

STUDIES = """
SELECT ?study ?type ?sampleSize ?randomised ?registryId ?primaryEndpoint ?primaryEndpointLabel WHERE {
  ?study a ?type . ?type rdfs:subClassOf* crlm:Study .
  OPTIONAL { ?study crlm:sampleSize ?sampleSize }
  OPTIONAL { ?study crlm:randomisedCount ?randomised }
  OPTIONAL { ?study crlm:registryId ?registryId }
  OPTIONAL { ?study crlm:primaryEndpoint ?primaryEndpoint OPTIONAL { ?primaryEndpoint rdfs:label ?primaryEndpointLabel } }
}
"""

STUDY_STATUS_REPORTS = """
SELECT ?report ?study ?status ?docLabel ?quote ?locator WHERE {
  ?report a crlm:StudyStatusReport ; crlm:ofStudy ?study ; crlm:status ?status .
  OPTIONAL { ?report crlm:sourceDocument/rdfs:label ?docLabel }
  OPTIONAL { ?report crlm:sourceQuote ?quote }
  OPTIONAL { ?report crlm:sourceLocator ?locator }
}
"""

SCORES = """
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

SIDEDNESS = """
SELECT ?location ?sidedness ?docLabel ?quote WHERE {
  ?location crlm:locationSidedness ?sidedness .
  OPTIONAL { ?rule crlm:sidednessRuleFor ?location ; crlm:sourceDocument/rdfs:label ?docLabel ; crlm:sourceQuote ?quote }
}
"""

FLR_THRESHOLDS = """
SELECT ?rule ?threshold ?condition ?docLabel ?quote WHERE {
  ?rule a crlm:FutureLiverRemnantThreshold ; crlm:thresholdValue ?threshold ; crlm:liverCondition ?condition .
  OPTIONAL { ?rule crlm:sourceDocument/rdfs:label ?docLabel }
  OPTIONAL { ?rule crlm:sourceQuote ?quote }
}
"""

DEFINED_CLASSES = """
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
