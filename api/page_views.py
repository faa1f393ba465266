"""What the HTML pages show, read from the graph: plain dicts and lists the templates lay out.

The evidence lookup's ``GraphStructure`` (built once by the app's lifespan) already holds the
studies, their criteria trees and their outcome figures; what it does not hold (settings,
treatments, sources, publications, arms, ontology terms) is read here with a few SPARQL queries.
"""

from __future__ import annotations

from typing import Any

from crlm_kg import paths
from crlm_kg.evidence import EvidenceLookup
from crlm_kg.evidence.trials import design_of
from crlm_kg.store import IRI, Store

from .linked_data import short_name

#: Comparisons drawn on a ratio scale (log axis, no effect at 1) in forest plots.
RATIO_CLASSES = {"HazardRatio", "OddsRatio", "RiskRatio", "RelativeRisk"}

STUDY_FACETS = """
SELECT ?study ?kind ?value ?label WHERE {
  { ?study crlm:studySetting ?value . BIND("setting" AS ?kind) }
  UNION { ?study crlm:aboutTreatment ?value . BIND("treatment" AS ?kind) }
  UNION { ?study crlm:sourceDocument ?value . BIND("source" AS ?kind) }
  ?study a/rdfs:subClassOf* crlm:Study .
  OPTIONAL { ?value rdfs:label ?label }
}"""

STUDY_DETAILS = """
SELECT ?p ?o ?olabel WHERE {
  ?study ?p ?o .
  VALUES ?p { rdfs:label crlm:acronym crlm:registryId crlm:sampleSize crlm:randomisedCount crlm:studySetting crlm:aboutTreatment
              crlm:sourceQuote crlm:sourceLocator crlm:sourceDocument crlm:curationNote crlm:populationDescription }
  OPTIONAL { ?o rdfs:label ?olabel }
}"""

PUBLICATIONS = """
SELECT ?pub ?label ?citation ?doi ?pmid ?year WHERE {
  ?study crlm:reportedIn ?pub .
  OPTIONAL { ?pub rdfs:label ?label } OPTIONAL { ?pub crlm:citation ?citation } OPTIONAL { ?pub crlm:doi ?doi }
  OPTIONAL { ?pub crlm:pmid ?pmid } OPTIONAL { ?pub crlm:publicationYear ?year }
} ORDER BY ?year"""

ARMS = """
SELECT ?arm ?label ?count ?intervention ?ilabel WHERE {
  ?arm crlm:armOf ?study .
  OPTIONAL { ?arm rdfs:label ?label } OPTIONAL { ?arm crlm:randomisedCount ?count }
  OPTIONAL { ?arm crlm:hasIntervention ?intervention OPTIONAL { ?intervention rdfs:label ?ilabel } }
} ORDER BY ?label ?ilabel"""

# the comparison's own class (hazard ratio, odds ratio…): asserted, not one the reasoner added
COMPARISON_CLASSES = """
SELECT ?m ?class ?classLabel WHERE {
  ?m a ?class . ?class rdfs:subClassOf* crlm:Comparison .
  FILTER NOT EXISTS { GRAPH <%s> { ?m a ?class } }
  OPTIONAL { ?class rdfs:label ?classLabel }
}""" % paths.GRAPH_INFERRED

COUNTS = """
SELECT
  (COUNT(DISTINCT ?study) AS ?studies) (COUNT(DISTINCT ?figure) AS ?figures) (COUNT(DISTINCT ?statement) AS ?statements)
  (COUNT(DISTINCT ?term) AS ?terms) WHERE {
  { ?study a/rdfs:subClassOf* crlm:Study }
  UNION { ?figure crlm:ofStudy ?s ; crlm:value ?v }
  UNION { ?statement a/rdfs:subClassOf* crlm:EvidenceStatement }
  UNION { ?term rdfs:isDefinedBy|rdfs:label ?l . FILTER(STRSTARTS(STR(?term), STR(crlm:))) }
}"""

TERM = """
SELECT ?p ?o ?olabel WHERE {
  ?term ?p ?o .
  VALUES ?p { rdf:type rdfs:label skos:definition skos:altLabel skos:prefLabel rdfs:comment rdfs:subClassOf rdfs:subPropertyOf
              rdfs:domain rdfs:range owl:equivalentClass owl:inverseOf }
  FILTER NOT EXISTS { GRAPH <%s> { ?term ?p ?o } }
  OPTIONAL { ?o rdfs:label ?olabel }
}""" % paths.GRAPH_INFERRED

CHILDREN = """
SELECT DISTINCT ?child ?label WHERE {
  { ?child rdfs:subClassOf ?term } UNION { ?child rdfs:subPropertyOf ?term }
  FILTER(isIRI(?child) && ?child != ?term)
  FILTER NOT EXISTS { GRAPH <%s> { ?child rdfs:subClassOf ?term } }
  OPTIONAL { ?child rdfs:label ?label }
} ORDER BY ?label""" % paths.GRAPH_INFERRED

RESTRICTION = """
SELECT ?how ?kind ?property ?plabel ?value ?vlabel ?facet ?bound WHERE {
  ?term ?how ?x . VALUES ?how { rdfs:subClassOf owl:equivalentClass }
  ?x ((owl:intersectionOf|owl:unionOf)/rdf:rest*/rdf:first)? ?r .
  ?r owl:onProperty ?property ; ?kind ?value .
  VALUES ?kind { owl:someValuesFrom owl:allValuesFrom owl:hasValue owl:minCardinality owl:maxCardinality owl:cardinality
                 owl:qualifiedCardinality owl:minQualifiedCardinality owl:maxQualifiedCardinality }
  OPTIONAL { ?property rdfs:label ?plabel } OPTIONAL { ?value rdfs:label ?vlabel }
  OPTIONAL { ?value owl:withRestrictions/rdf:rest*/rdf:first ?f . ?f ?facet ?bound }
}"""
_FACETS = {"minExclusive": ">", "minInclusive": "≥", "maxExclusive": "<", "maxInclusive": "≤"}

USAGES = """
SELECT DISTINCT ?node ?label ?how ?study WHERE {
  { ?node crlm:aboutTreatment|crlm:studySetting|crlm:primaryEndpoint ?term . ?node a/rdfs:subClassOf* crlm:Study .
    BIND("study" AS ?how) BIND(?node AS ?study) }
  UNION { ?node crlm:aboutTreatment|crlm:studySetting|crlm:restrictsTreatment ?term . ?node a/rdfs:subClassOf* crlm:EvidenceStatement .
          BIND("statement" AS ?how) }
  UNION { ?node crlm:endpoint ?term ; crlm:ofStudy ?study . BIND("figure" AS ?how) }
  UNION { ?node crlm:treatment ?term . ?node (crlm:hasIntervention|crlm:armOf)*/crlm:armOf ?study . BIND("arm" AS ?how) }
  UNION { ?node crlm:characteristic ?term . BIND("criterion" AS ?how) }
  UNION { ?node a ?term . FILTER NOT EXISTS { GRAPH <%s> { ?node a ?term } } BIND("instance" AS ?how) }
  OPTIONAL { ?node rdfs:label ?label }
} ORDER BY ?how ?label LIMIT 400""" % paths.GRAPH_INFERRED

SEARCH = """
SELECT ?term ?label ?match ?definition WHERE {
  ?term rdfs:label|skos:altLabel|skos:prefLabel ?match .
  FILTER(STRSTARTS(STR(?term), STR(crlm:)) && CONTAINS(LCASE(STR(?match)), LCASE(?q)))
  OPTIONAL { ?term rdfs:label ?label } OPTIONAL { ?term skos:definition ?definition }
} ORDER BY STRLEN(STR(?match)) LIMIT 200"""


def _label(row: dict[str, Any], column: str, fallback: str) -> str:
    return str(row[column]) if row.get(column) is not None else str(short_name(row[fallback]))


def landing(store: Store) -> dict[str, int]:
    row = store.select(COUNTS)[0]
    return {k: int(row[k]) for k in ("studies", "figures", "statements", "terms")}


# --------------------------------------------------------------------------- studies


def study_rows(store: Store, lookup: EvidenceLookup) -> list[dict[str, Any]]:
    """Every study with what the list shows and filters on."""
    st = lookup.structure
    facets: dict[str, dict[str, dict[str, str]]] = {}
    for row in store.select(STUDY_FACETS):
        facets.setdefault(str(row["study"]), {}).setdefault(row["kind"], {})[str(short_name(row["value"]))] = _label(row, "label", "value")
    rows = []
    for iri, info in st.studies.items():
        design = design_of(info["types"])
        found = facets.get(iri, {})
        holder = st.holders.get(iri, {})
        rows.append({"id": short_name(IRI(iri)), "label": holder.get("fullLabel") or st.labels.get(iri) or short_name(IRI(iri)),
                     "design": design["design"], "phase": design["phase"], "size": info["randomised"] or info["sampleSize"],
                     "registryIds": sorted(info["registryIds"]), "setting": found.get("setting", {}),
                     "treatment": found.get("treatment", {}), "source": found.get("source", {})})
    return sorted(rows, key=lambda r: str(r["label"]).lower())


def filter_studies(rows: list[dict[str, Any]], chosen: dict[str, str]) -> list[dict[str, Any]]:
    """The rows matching every chosen filter; ``q`` searches labels, ids and registry ids."""
    out = []
    for row in rows:
        if chosen.get("q") and chosen["q"].lower() not in " ".join([str(row["label"]), row["id"], *row["registryIds"]]).lower():
            continue
        if chosen.get("design") and row["design"] != chosen["design"]:
            continue
        if chosen.get("phase") and row["phase"] != chosen["phase"]:
            continue
        if any(chosen.get(k) and chosen[k] not in row[k] for k in ("setting", "treatment", "source")):
            continue
        out.append(row)
    return out


def facet_options(rows: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """(value, label) choices of each filter, from the studies themselves."""
    options: dict[str, dict[str, str]] = {"design": {}, "phase": {}, "setting": {}, "treatment": {}, "source": {}}
    for row in rows:
        options["design"][row["design"]] = row["design"].replace("-", " ")
        if row["phase"]:
            options["phase"][row["phase"]] = f"phase {row['phase']}"
        for key in ("setting", "treatment", "source"):
            options[key].update(row[key])
    return {k: sorted(v.items(), key=lambda kv: kv[1].lower()) for k, v in options.items()}


def comparison_classes(store: Store) -> dict[str, tuple[str, str]]:
    """Comparison node -> (its class's local name, label), e.g. ("HazardRatio", "hazard ratio")."""
    out: dict[str, tuple[str, str]] = {}
    for row in store.select(COMPARISON_CLASSES):
        name = str(short_name(row["class"]))
        if name != "Comparison" or str(short_name(row["m"])) not in out:
            out[str(short_name(row["m"]))] = (name, _label(row, "classLabel", "class"))
    return out


def _criteria_tree(lookup: EvidenceLookup, node: str) -> dict[str, Any]:
    st = lookup.structure
    if node in st.groups:
        mode, members = st.groups[node]
        return {"group": "all of" if mode == "all" else "any of", "label": st.labels.get(node),
                "members": [_criteria_tree(lookup, m) for m in members]}
    criterion = st.criteria.get(node)
    if criterion is None:
        return {"label": st.labels.get(node) or short_name(IRI(node)), "kind": None}
    return {"id": short_name(IRI(node)), "label": criterion.label, "kind": criterion.kind, "evaluable": criterion.evaluable,
            "quote": criterion.quote, "source": criterion.source, "locator": criterion.locator, "note": criterion.note}


def study_detail(store: Store, lookup: EvidenceLookup, name: str) -> dict[str, Any]:
    iri = paths.CRLMD + name
    st = lookup.structure
    node = IRI(iri)
    facts: dict[str, list[Any]] = {}
    for row in store.select(STUDY_DETAILS, {"study": node}):
        value = row["o"]
        shown = {"id": short_name(value), "label": row["olabel"]} if isinstance(value, IRI) else value
        facts.setdefault(str(short_name(row["p"])).rsplit("#", 1)[-1], []).append(shown)
    info = st.studies.get(iri, {"types": set(), "sampleSize": None, "randomised": None, "registryIds": set(), "primaryEndpoints": {}})
    arms: dict[str, dict[str, Any]] = {}
    for row in store.select(ARMS, {"study": node}):
        arm = arms.setdefault(str(row["arm"]), {"label": row.get("label"), "count": row.get("count"), "interventions": []})
        if row.get("ilabel") and row["ilabel"] not in arm["interventions"]:
            arm["interventions"].append(row["ilabel"])
    classes = comparison_classes(store)
    outcomes = [dict(o, comparisonClass=classes.get(o["id"], (None, None))[0], comparisonLabel=classes.get(o["id"], (None, None))[1])
                for o in st.outcomes.get(iri, [])]
    primary = set(info["primaryEndpoints"])
    groups: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        group = groups.setdefault(o["endpointClass"] or "", {"endpoint": o["endpoint"] or "endpoint not stated",
                                                            "endpointId": short_name(IRI(o["endpointClass"])) if o["endpointClass"] else None,
                                                            "primary": o["endpointClass"] in primary, "rows": []})
        group["rows"].append(o)
    holder = st.holders.get(iri, {})
    return {
        "id": name, "iri": iri, "label": (facts.get("label") or [holder.get("fullLabel") or name])[0],
        "acronym": (facts.get("acronym") or [None])[0], **design_of(info["types"]),
        "randomised": info["randomised"], "sampleSize": info["sampleSize"], "registryIds": sorted(info["registryIds"]),
        "primaryEndpoints": sorted(info["primaryEndpoints"].values()),
        "settings": facts.get("studySetting", []), "treatments": facts.get("aboutTreatment", []),
        "quotes": facts.get("sourceQuote", []), "locators": facts.get("sourceLocator", []), "notes": facts.get("curationNote", []),
        "sources": facts.get("sourceDocument", []),
        "publications": [{"id": short_name(r["pub"]), **{k: r.get(k) for k in ("label", "citation", "doi", "pmid", "year")}}
                         for r in store.select(PUBLICATIONS, {"study": node})],
        "arms": sorted(arms.values(), key=lambda a: str(a["label"])),
        "criteria": [_criteria_tree(lookup, root) for root in holder.get("roots", [])],
        "endpoints": sorted(groups.values(), key=lambda g: (not g["primary"], str(g["endpoint"]))),
        "statuses": st.status_reports.get(iri, []),
    }


def ratio_rows(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparisons a forest plot can draw: ratios with a value and both CI bounds."""
    return [o for o in outcomes if o.get("comparisonClass") in RATIO_CLASSES
            and all(isinstance(o.get(k), (int, float)) and o[k] > 0 for k in ("value", "ciLower", "ciUpper"))]


def endpoint_results(store: Store, lookup: EvidenceLookup, endpoint: str, treatment: str | None = None) -> list[dict[str, Any]]:
    """Every comparison on ``endpoint`` (or a narrower endpoint) across studies, optionally about ``treatment``."""
    st = lookup.structure
    wanted = st.subclasses_of(paths.CRLM + endpoint) | {paths.CRLM + endpoint}
    classes = comparison_classes(store)
    treated: set[str] | None = None
    if treatment:
        treated = {r["study"].value for r in store.select(
            "SELECT DISTINCT ?study WHERE { ?study crlm:aboutTreatment/rdfs:subClassOf* ?t }", {"t": IRI(paths.CRLM + treatment)})}
    rows = []
    for study, outcomes in st.outcomes.items():
        if treated is not None and study not in treated:
            continue
        for o in outcomes:
            if o["endpointClass"] in wanted and o["id"] in classes:
                holder = st.holders.get(study, {})
                rows.append(dict(o, study=short_name(IRI(study)), studyLabel=holder.get("label") or st.labels.get(study) or short_name(IRI(study)),
                                 comparisonClass=classes[o["id"]][0], comparisonLabel=classes[o["id"]][1]))
    return sorted(rows, key=lambda r: (str(r["comparisonClass"]), str(r["studyLabel"]), r["id"]))


# --------------------------------------------------------------------------- ontology terms


def term_detail(store: Store, name: str) -> dict[str, Any] | None:
    node = IRI(paths.CRLM + name)
    rows = store.select(TERM, {"term": node})
    if not rows:
        return None
    term: dict[str, Any] = {"id": name, "iri": node.value, "types": [], "labels": [], "definitions": [], "synonyms": [], "comments": [],
                            "parents": [], "restrictions": [], "domain": [], "range": [], "equivalent": [], "inverse": []}
    keys = {"type": "types", "label": "labels", "definition": "definitions", "altLabel": "synonyms", "prefLabel": "synonyms",
            "comment": "comments", "subClassOf": "parents", "subPropertyOf": "parents", "domain": "domain", "range": "range",
            "equivalentClass": "equivalent", "inverseOf": "inverse"}
    for row in rows:
        key = keys[str(row["p"].value).rsplit("#", 1)[-1]]
        value = row["o"]
        if isinstance(value, IRI):
            term[key].append({"id": short_name(value), "label": row.get("olabel") or short_name(value).rsplit("#", 1)[-1],
                              "local": value.value.startswith(paths.CRLM)})
        elif key not in ("parents", "equivalent", "types", "domain", "range"):
            term[key].append(value)
    term["restrictions"] = restrictions(store, node)
    term["label"] = term["labels"][0] if term["labels"] else name
    term["children"] = [{"id": short_name(r["child"]), "label": r.get("label") or short_name(r["child"])}
                        for r in store.select(CHILDREN, {"term": node})]
    term["usages"] = [{"id": short_name(r["node"]), "label": r.get("label") or short_name(r["node"]), "how": r["how"],
                       "study": short_name(r["study"]) if r.get("study") is not None else None}
                      for r in store.select(USAGES, {"term": node})]
    return term


def restrictions(store: Store, term: IRI) -> list[str]:
    """The term's OWL restrictions as readable text: "subclass of: has arm some study arm", "equivalent to: age some > 60"."""
    found: dict[tuple, list[str]] = {}
    for row in store.select(RESTRICTION, {"term": term}):
        how = "subclass of" if str(row["how"]).endswith("subClassOf") else "equivalent to"
        kind = str(row["kind"]).rsplit("#", 1)[-1].replace("ValuesFrom", "").replace("Value", " value")
        prop = row.get("plabel") or short_name(row["property"])
        value = row["value"]
        shown = row.get("vlabel") or (short_name(value) if isinstance(value, IRI) else value)
        key = (how, prop, kind, str(value))
        bounds = found.setdefault(key, [])
        facet = str(row.get("facet", "")).rsplit("#", 1)[-1]
        if facet in _FACETS:
            bounds.append(f"{_FACETS[facet]} {row['bound']}")
        elif not bounds and not str(shown).startswith("_:"):
            bounds.append(str(shown))
    return [f"{how}: {prop} {kind} {' and '.join(sorted(set(b))) or 'a value range'}" for (how, prop, kind, _), b in found.items()]


def search_terms(store: Store, query: str) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for row in store.select(SEARCH, {"q": query}):
        tid = str(short_name(row["term"])).rsplit("#", 1)[-1]
        seen.setdefault(tid, {"id": tid, "label": row.get("label") or tid, "match": row["match"], "definition": row.get("definition")})
    return list(seen.values())
