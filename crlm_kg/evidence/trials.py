"""Trial entries: design, phase, size, registry ids, recruitment, primary endpoint, ordered outcomes and headline.

``status`` of a trial says whether the patient matches the trial's population
(``eligible``: every machine-evaluable criterion met; ``ineligible``: one not
met; ``undetermined``: none failed, some unknown). It says nothing about
whether the trial still recruits: that is ``recruitment``, read from
``crlm:StudyStatusReport`` nodes with their source, ``unknown`` where the
sources are silent.
"""

from __future__ import annotations

import re
from typing import Any

from .common import short

STATUS_MEANING = ("eligible: the patient matches the trial's population on every machine-evaluable criterion "
                  "(a completed trial can be 'eligible'; see recruitment); ineligible: at least one criterion not met; "
                  "undetermined: none failed, some unknown (see missingFields)")

# Ontology study class -> (contract design code, phase, rank). Listed most specific first: a study typed with
# several classes takes the first row that matches. Rank orders the summary: randomised phase 3, randomised
# phase 2, other randomised, pooled analyses, single-arm trials, prospective cohorts, retrospective series.
DESIGNS: tuple[tuple[str, str, str | None, int], ...] = (
    ("Phase3RandomisedTrial", "randomised-controlled-trial", "3", 0),
    ("Phase2Phase3RandomisedTrial", "randomised-controlled-trial", "2/3", 1),
    ("Phase2RandomisedTrial", "randomised-controlled-trial", "2", 2),
    ("RandomisedControlledTrial", "randomised-controlled-trial", None, 3),
    ("MetaAnalysis", "meta-analysis", None, 4),
    ("SystematicReview", "systematic-review", None, 4),
    ("NonRandomisedComparativeTrial", "non-randomised-comparative-trial", None, 5),
    ("Phase2SingleArmTrial", "single-arm-trial", "2", 6),
    ("SingleArmTrial", "single-arm-trial", None, 6),
    ("Phase1Trial", "phase-1-trial", "1", 7),
    ("InterventionalStudy", "interventional-study", None, 7),
    ("ProspectiveCohortStudy", "prospective-cohort", None, 8),
    ("RegistryStudy", "registry-study", None, 9),
    ("CohortStudy", "cohort-study", None, 9),
    ("RetrospectiveCohortStudy", "retrospective-cohort", None, 10),
    ("CaseSeries", "case-series", None, 11),
    ("ObservationalStudy", "observational-study", None, 11),
    ("EvidenceSynthesis", "evidence-synthesis", None, 11),
)
_DESIGN_ORDER = {row[0]: i for i, row in enumerate(DESIGNS)}
# RetrospectiveCohortStudy must win over CohortStudy although it ranks lower in the summary
_DESIGN_ORDER["RetrospectiveCohortStudy"] = _DESIGN_ORDER["CohortStudy"] - 0.5
UNRANKED = 12

# A source's status wording -> the contract's recruitment code. "completed" means no longer recruiting.
RECRUITMENT = {"recruiting": "recruiting", "open": "recruiting", "enrolling": "recruiting",
               "completed": "completed", "terminated": "completed", "closed": "completed", "stopped": "completed",
               "withdrawn": "completed", "active, not recruiting": "completed", "published": "completed"}

# Preferred comparative statistics for a headline, best first.
_HEADLINE_KINDS = ("HazardRatio", "OddsRatio", "RiskRatio", "RelativeRisk", "RiskDifference", "MeanDifference")


def design_of(types: set[str]) -> dict[str, Any]:
    known = sorted((t for t in types if t in _DESIGN_ORDER), key=_DESIGN_ORDER.get)
    if not known:
        other = sorted(t for t in types if t != "Study")
        name = other[0] if other else "Study"
        return {"design": re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower(), "designClass": name, "phase": None, "designRank": UNRANKED}
    row = next(r for r in DESIGNS if r[0] == known[0])
    return {"design": row[1], "designClass": row[0], "phase": row[2], "designRank": row[3]}


def recruitment_of(reports: list[dict[str, Any]]) -> str:
    codes = {RECRUITMENT.get(r["status"].strip().lower(), "unknown") for r in reports}
    # a later report that the trial closed outweighs an earlier one that it recruited
    for code in ("completed", "recruiting"):
        if code in codes:
            return code
    return "unknown"


def _comparison_order(outcome: dict[str, Any]) -> tuple:
    kind = outcome["kind"]
    return (_HEADLINE_KINDS.index(kind) if kind in _HEADLINE_KINDS else len(_HEADLINE_KINDS),
            outcome.get("ciLower") is None, outcome["id"])


def order_outcomes(outcomes: list[dict[str, Any]], primary_classes: set[str]) -> list[dict[str, Any]]:
    """Primary-endpoint results first (marked ``primary: true``), comparisons before single-arm figures."""
    result = []
    for outcome in outcomes:
        entry = {k: v for k, v in outcome.items() if k != "endpointClass"}
        entry["primary"] = outcome.get("endpointClass") in primary_classes
        result.append((outcome, entry))
    result.sort(key=lambda pair: (not pair[1]["primary"], pair[0]["kind"] == "measurement", _comparison_order(pair[0])))
    return [entry for _, entry in result]


def headline_of(outcomes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The primary endpoint's comparative effect, else the first comparative result (outcomes already ordered)."""
    comparisons = [o for o in outcomes if o["kind"] != "measurement" and o.get("value") is not None]
    if not comparisons:
        return None
    best = next((o for o in comparisons if o["primary"]), comparisons[0])
    # the figure's label and analysed population travel with it: a subgroup result (OPUS, KRAS wild-type)
    # must not read as the effect in every patient
    return {"id": best["id"], "label": best.get("label"), "population": best.get("population"),
            "endpoint": best["endpoint"], "statistic": best["kind"], "value": best["value"],
            "ciLower": best.get("ciLower"), "ciUpper": best.get("ciUpper"), "pValue": best.get("pValue"),
            "pValueComparator": best.get("pValueComparator"), "primary": best["primary"], "source": best.get("source")}


def static_part(holder: dict[str, Any], study: dict[str, Any] | None, reports: list[dict[str, Any]], outcomes: list[dict[str, Any]],
                primary_closure) -> dict[str, Any]:
    """What a trial entry says whatever the patient (computed once per trial)."""
    study = study or {"types": set(), "sampleSize": None, "randomised": None, "registryIds": set(), "primaryEndpoints": {}}
    primary_classes: set[str] = set()
    for cls in study["primaryEndpoints"]:
        primary_classes |= primary_closure(cls)
    ordered = order_outcomes(outcomes, primary_classes)
    entry = {"id": short(holder["iri"]), "label": holder["label"]}
    entry.update(design_of(study["types"]))
    entry.update({
        "sampleSize": study["randomised"] or study["sampleSize"],
        "sampleSizeKind": "randomised" if study["randomised"] else ("enrolled or analysed" if study["sampleSize"] else None),
        "registryIds": sorted(study["registryIds"]),
        "recruitment": recruitment_of(reports),
        "recruitmentReports": reports,
        "primaryEndpoint": sorted(study["primaryEndpoints"].values()) or None,
        "headline": headline_of(ordered),
        "outcomes": ordered,
    })
    return entry


def trial_entry(static: dict[str, Any], status: str, criteria: list[dict[str, Any]], missing: list[str]) -> dict[str, Any]:
    entry = {"id": static["id"], "label": static["label"], "status": status, "statusMeaning": STATUS_MEANING,
             "statusBasis": "machine-evaluable criteria; criteria with evaluable=false need screening"}
    entry.update({k: v for k, v in static.items() if k not in entry and k != "outcomes"})
    entry["criteria"] = criteria
    entry["missingFields"] = missing
    # an ineligible trial's figures are not for this patient: kept out to keep the answer readable
    entry["outcomes"] = static["outcomes"] if status != "ineligible" else []
    return entry
