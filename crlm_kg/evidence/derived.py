"""Values derived from the patient record: implied facts, sidedness, scores, FLR adequacy, defined classes.

Implied facts
-------------
Three-valued logic must use every field that decides a criterion. Some record
fields decide characteristics the record does not state; ``IMPLICATIONS`` is
the one table of these rules. An implied value never overrides a value the
record gives (contradictions are rejected by validation before lookup).

================================  ===========================================================================
the record says                   implied, for every criterion and score component
================================  ===========================================================================
timing = synchronous              disease-free interval in [0, 12) months: seed 000 (Fong score) "synchronous
                                  disease defined by disease-free interval <12 months"
extrahepaticDisease = false       no extrahepatic site (a site criterion "= lung" is not met, "≠ lung" is met)
extrahepaticSites non-empty       extrahepaticDisease = true
systemicChemotherapy = false      no prior oxaliplatin / irinotecan / anti-EGFR / bevacizumab, 0 cycles (so
                                  first-line); no response to a prior therapy (the question is not asked:
                                  "response = progressive" is not met, "response ≠ progressive" is met)
any prior agent true, cycles > 0  systemicChemotherapy = true
================================  ===========================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import paths
from ..store import IRI
from . import operators
from .common import plain, short
from .criteria import Criterion, Leaf

C = paths.CRLM
PRIOR_AGENTS = ("priorOxaliplatin", "priorIrinotecan", "priorAntiEgfr", "priorBevacizumab")


@dataclass(frozen=True)
class Implication:
    description: str
    when: Callable[[dict[str, list[Any]]], bool]
    facts: dict[str, Any] = field(default_factory=dict)  # characteristic local name -> implied value
    absent: tuple[str, ...] = ()  # characteristics known to have no value
    interval: tuple[str, float, float] | None = None  # characteristic in [low, high)


def _is(name: str, value: Any) -> Callable[[dict[str, list[Any]]], bool]:
    def test(by_name: dict[str, list[Any]]) -> bool:
        return any(plain(v) == value for v in by_name.get(name, []))
    return test


IMPLICATIONS: tuple[Implication, ...] = (
    Implication("synchronous metastases: disease-free interval < 12 months (seed 000: \"synchronous disease defined by "
                "disease-free interval <12 months\")",
                _is("metastasisTiming", "Synchronous"), interval=("diseaseFreeIntervalMonths", 0.0, 12.0)),
    Implication("no extrahepatic disease: no extrahepatic site", _is("extrahepaticDisease", False), absent=("extrahepaticSite",)),
    Implication("an extrahepatic site is recorded: extrahepatic disease present",
                lambda f: bool(f.get("extrahepaticSite")), facts={"extrahepaticDisease": True}),
    Implication("no prior systemic chemotherapy: no prior agent, 0 cycles (first-line), no response to assess",
                _is("priorSystemicChemotherapy", False),
                facts={**{a: False for a in PRIOR_AGENTS}, "priorChemotherapyCycles": 0}, absent=("responseToPriorTherapy",)),
    Implication("a prior agent or cycle is recorded: prior systemic chemotherapy",
                lambda f: any(v is True for a in PRIOR_AGENTS for v in f.get(a, []))
                or any(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in f.get("priorChemotherapyCycles", [])),
                facts={"priorSystemicChemotherapy": True}),
)


@dataclass
class Implied:
    facts: list[tuple[str, Any, str]] = field(default_factory=list)  # (property IRI, value, reason)
    absent: dict[str, str] = field(default_factory=dict)  # property IRI -> reason
    intervals: dict[str, tuple[float, float, str]] = field(default_factory=dict)  # property IRI -> (low, high, reason)


def implied(facts: list[tuple[str, Any]]) -> Implied:
    by_name: dict[str, list[Any]] = {}
    for p, v in facts:
        by_name.setdefault(short(p), []).append(v)
    result = Implied()
    for rule in IMPLICATIONS:
        if not rule.when(by_name):
            continue
        for name, value in rule.facts.items():
            if name not in by_name:
                result.facts.append((C + name, value, rule.description))
        for name in rule.absent:
            if name not in by_name:
                result.absent[C + name] = rule.description
        if rule.interval and rule.interval[0] not in by_name:
            name, low, high = rule.interval
            result.intervals[C + name] = (low, high, rule.description)
    return result


def _interval_holds(op: str | None, threshold: Any, low: float, high: float) -> bool | None:
    """Whether ``x op threshold`` holds for every x in [low, high) (True), for none (False), or depends (None)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        return None
    t = float(threshold)
    table = {
        "LessThan": (high <= t, low >= t),
        "LessThanOrEqual": (high <= t, low > t),
        "GreaterThan": (low > t, high <= t),
        "GreaterThanOrEqual": (low >= t, high <= t),
        "Equal": (False, t < low or t >= high),
        "NotEqual": (t < low or t >= high, False),
    }
    if op not in table:
        return None
    always, never = table[op]
    return True if always else (False if never else None)


def decide_by_implication(criterion: Criterion, known: Implied) -> Leaf | None:
    """A leaf decided by an implied absence or interval, for a criterion on a characteristic the record lacks."""
    char = criterion.characteristic
    if char in known.absent:
        if criterion.operator not in operators.BY_NAME:
            return None
        # no value at all: "= X" (or any comparison) cannot hold; "≠ X" holds for every value present (there is none)
        return Leaf(criterion.operator == "NotEqual", (), known.absent[char])
    if char in known.intervals:
        low, high, reason = known.intervals[char]
        condition = _interval_holds(criterion.operator, criterion.threshold, low, high)
        return Leaf(condition, (), reason) if condition is not None else Leaf(None, (), None)
    return None


# -- sidedness and the tumour burden score ------------------------------------------------------------


def sidedness(location: Any, rules: dict[str, tuple[str, str | None, str | None]], location_text: str | None):
    """(derived JSON, implied fact or None)."""
    if location is None:
        return {"sidedness": None}, None
    rule = rules.get(str(location))
    if rule is None:
        return {"sidedness": None, "sidednessNote": f"{location_text} is not classified as left or right by the NCCN definition"}, None
    side = "left" if rule[0].endswith("LeftSided") else "right"
    return {"sidedness": side, "sidednessSource": {"source": rule[1], "quote": rule[2]}}, (C + "primaryTumourSidedness", IRI(rule[0]))


def tumour_burden(count: Any, diameter: Any, info: dict[str, Any]):
    if isinstance(count, (int, float)) and isinstance(diameter, (int, float)):
        value = round(math.sqrt((diameter / 10.0) ** 2 + count**2), 2)
        zone = None
        for label, lower, upper in info.get("zones", {}).values():
            if (lower is None or value >= lower) and (upper is None or value < upper):
                zone = label
        return ({"value": value, "zone": zone, "rule": "sqrt((largest diameter, cm)^2 + (number of liver metastases)^2)",
                 "source": info.get("source"), "quote": info.get("quote")}, (C + "tumourBurdenScore", value))
    missing = [f for f, v in (("liverMetastases.count", count), ("liverMetastases.largestDiameterMm", diameter)) if v is None]
    return {"value": None, "zone": None, "missing": missing, "source": info.get("source")}, None


def fong(info: dict[str, Any] | None, leaves: dict[str, Leaf], field_of) -> dict[str, Any]:
    if not info or not info["components"]:
        return {"min": None, "max": None, "missing": [], "source": None, "note": "the Fong score is not in the graph"}
    low = high = 0
    missing: list[str] = []
    detail = []
    for component, (points, char, label) in sorted(info["components"].items()):
        leaf = leaves.get(component)
        condition = leaf.condition if leaf else None
        field_name = field_of(char) if char else None
        if condition is True:
            low += points
            high += points
        elif condition is None:
            high += points
            missing.append(field_name or short(component))
        entry = {"component": short(component), "label": label, "field": field_name, "points": points if condition else 0,
                 "status": "unknown" if condition is None else ("met" if condition else "not-met")}
        if leaf is not None and leaf.implied_by and condition is not None:
            entry["impliedBy"] = leaf.implied_by
        detail.append(entry)
    rule = "; ".join(sorted(d["label"] or d["component"] for d in detail))
    return {"min": low, "max": high, "missing": sorted(set(missing)), "components": detail,
            "rule": f"sum of the components' points: {rule}", "source": info.get("source"), "quote": info.get("quote")}


def flr_adequacy(fields: dict[str, Any], rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """FLR adequacy against the threshold for this patient's liver (contract: 20 / 30 / 40 %)."""
    flr = fields.get("liver.futureLiverRemnantPercent")
    injury = fields.get("liver.chemotherapyAssociatedInjury")
    fibrosis = fields.get("liver.fibrosisOrCirrhosis")
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
        # the threshold depends on the unknown liver condition: decide only if the FLR passes or fails every candidate
        candidates = [rules[k]["threshold"] for k in ("normal", "injury", "fibrosis") if k in rules]
        if flr is None or not candidates:
            return {"value": None, "threshold": None, "missing": (["liver.futureLiverRemnantPercent"] if flr is None else []) + missing,
                    "source": rules.get("normal", {}).get("source")}
        if flr >= max(candidates):
            return {"value": True, "threshold": max(candidates), "missing": [], "note": "adequate for any liver condition",
                    "source": rules.get("fibrosis", {}).get("source")}
        if flr < min(candidates):
            return {"value": False, "threshold": min(candidates), "missing": [], "note": "inadequate even for a normal liver",
                    "source": rules.get("normal", {}).get("source")}
        return {"value": None, "threshold": None, "range": [min(candidates), max(candidates)], "missing": missing,
                "source": rules.get("normal", {}).get("source")}
    rule = rules.get(key)
    if rule is None:
        return {"value": None, "threshold": None, "missing": [], "note": "FLR thresholds are not in the graph"}
    if flr is None:
        return {"value": None, "threshold": rule["threshold"], "missing": ["liver.futureLiverRemnantPercent"], "source": rule["source"],
                "quote": rule["quote"]}
    return {"value": flr >= rule["threshold"], "threshold": rule["threshold"], "liverCondition": key, "source": rule["source"],
            "quote": rule["quote"]}


def _facet_holds(facet: str, value: float, limit: Any) -> bool:
    limit = float(limit)
    return {"minInclusive": value >= limit, "maxInclusive": value <= limit,
            "minExclusive": value > limit, "maxExclusive": value < limit}.get(facet, False)


def patient_classes(facts: list[tuple[str, Any]], defined: dict[str, list[tuple[str, str, Any]]]) -> list[str]:
    """The ontology's defined patient classes this patient falls in (the reasoner's answer, computed directly)."""
    by_prop: dict[str, list[Any]] = {}
    for p, v in facts:
        by_prop.setdefault(str(p), []).append(v)
    members = []
    for cls, conditions in defined.items():
        ok = True
        for prop, test, limit in conditions:
            vals = by_prop.get(prop, [])
            if test == "hasValue":
                ok = any(plain(v) == plain(limit) for v in vals)
            else:
                ok = any(_facet_holds(test, v, limit) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool))
            if not ok:
                break
        if ok and conditions:
            members.append(cls)
    return sorted(members)
