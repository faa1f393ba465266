"""Synthetic cohorts for the screening benchmark and tests: contract records drawn at random.

Every field of the contract (read from the JSON-LD context, so a new field is drawn too) is
given with probability ``fill``; numbers are drawn from clinically plausible ranges. Valid
records respect the shapes' consistency rules; ``invalid_share`` of the records are then broken
in one of the ways a real export breaks (out of range, wrong JSON type, unknown code, unknown
field, two fields that contradict each other). Not patient data: random draws.
"""

from __future__ import annotations

import random
from typing import Any

from ..patients import contract

# plausible (low, high) of the numeric fields; a field not listed is drawn from 0-100
RANGES: dict[str, tuple[float, float]] = {
    "age": (18, 95), "ecog": (0, 4), "liverMetastases.count": (1, 20), "liverMetastases.largestDiameterMm": (3, 160),
    "liverMetastases.diseaseFreeIntervalMonths": (1, 60), "ceaNgPerMl": (0, 600), "liver.futureLiverRemnantPercent": (10, 80),
    "priorTherapy.cycles": (1, 16),
}

BREAKS = ("range", "type", "code", "unknown-field", "synchronous-dfi", "sites-without-disease", "oxaliplatin-without-chemo",
          "solitary-bilobar")


def _value(rng: random.Random, spec) -> Any:
    if spec.kind == "code":
        codes = list(spec.codes)
        return sorted(rng.sample(codes, rng.randint(1, 2))) if spec.multiple else rng.choice(codes)
    if spec.kind == "boolean":
        return rng.random() < 0.5
    low, high = RANGES.get(spec.path, (0, 100))
    if spec.kind == "integer":
        return rng.randint(int(low), int(high))
    return rng.randint(int(low), int(high)) if rng.random() < 0.3 else round(rng.uniform(low, high), 1)


def _consistent(record: dict[str, Any]) -> None:
    """Make the record respect the shapes' cross-field rules."""
    liver = record.get("liverMetastases", {})
    if liver.get("timing") == "synchronous" and "diseaseFreeIntervalMonths" in liver:
        liver["diseaseFreeIntervalMonths"] = 0
    if liver.get("timing") == "metachronous" and liver.get("diseaseFreeIntervalMonths") == 0:
        liver["diseaseFreeIntervalMonths"] = 6
    if liver.get("count") == 1 and liver.get("distribution") == "bilobar":
        liver["distribution"] = "unilobar"
    if record.get("extrahepaticSites"):
        record["extrahepaticDisease"] = True
    prior = record.get("priorTherapy", {})
    if prior.get("systemicChemotherapy") is False:
        for key in ("oxaliplatin", "irinotecan", "antiEgfr", "bevacizumab", "response"):
            prior.pop(key, None)
        if "cycles" in prior:
            prior["cycles"] = 0
        if record.get("liver", {}).get("chemotherapyAssociatedInjury"):
            record["liver"]["chemotherapyAssociatedInjury"] = False
    elif prior.get("systemicChemotherapy") is True and prior.get("cycles") == 0:
        prior["cycles"] = 4


def _break(rng: random.Random, record: dict[str, Any], how: str) -> None:
    liver = record.setdefault("liverMetastases", {})
    if how == "range":
        record["age"] = rng.choice([7, 130, -1])
    elif how == "type":
        liver["count"] = rng.choice(["3", 2.5, True])
    elif how == "code":
        record.setdefault("molecular", {})["ras"] = "positive"
    elif how == "unknown-field":
        record["weightKg"] = 70
    elif how == "synchronous-dfi":
        liver.update(timing="synchronous", diseaseFreeIntervalMonths=12)
    elif how == "sites-without-disease":
        record.update(extrahepaticDisease=False, extrahepaticSites=["lung"])
    elif how == "oxaliplatin-without-chemo":
        record["priorTherapy"] = {"systemicChemotherapy": False, "oxaliplatin": True}
    elif how == "solitary-bilobar":
        liver.update(count=1, distribution="bilobar")


def synthetic_cohort(n: int, seed: int = 17, fill: float = 0.6, invalid_share: float = 0.0, prefix: str = "syn") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    fields = list(contract().fields.values())
    cohort = []
    for i in range(n):
        record: dict[str, Any] = {"id": f"{prefix}-{i:06d}"}
        for spec in fields:
            if rng.random() < fill:
                target = record.setdefault(spec.nest, {}) if spec.nest else record
                target[spec.term] = _value(rng, spec)
        _consistent(record)
        if rng.random() < invalid_share:
            _break(rng, record, rng.choice(BREAKS))
        cohort.append(record)
    return cohort
