"""The summary at the top of an answer, and the ranking of statements and trials.

Grade ranking (``grade_rank``; lower is stronger). Systems grade differently;
the table is an ordinal proxy for sorting, not an equivalence between systems:

- NCCN: category 1 -> 0, category 2A -> 1, "preferred" (a preference, not a category) -> 1.5, category 2B -> 2,
  category 3 -> 3;
- ESMO ``[level, grade]``: level I..V -> 0..4 plus grade A..E -> 0..4 ([I, A] -> 0, [II, A] and [I, B] -> 1, ...);
- ungraded -> 9.

Statements are ranked: recommendations before evidence statements, then grade, then the number of
molecular-subgroup criteria the patient meets (``subgroup_criteria``: a statement about BRAF V600E tumours
before one about every tumour), then specificity (how many population criteria the patient meets), then id.
``subgroupFindings`` lists the applying evidence statements about the patient's molecular subgroup.
The summary's lists stop at ``LIMITS`` (``counts`` gives the totals).
Trials in the summary are the eligible and undetermined ones, ranked by design (``trials.DESIGNS``), then status
(eligible first), then sample size (larger first), then label and id.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections import Counter
from functools import lru_cache
from typing import Any, Iterable

# The summary is read at a tumour board: the ranked lists stop here (the full view keeps everything).
LIMITS = {"recommendations": 30, "trials": 25, "decidingFields": 15, "subgroupFindings": 10}

_NCCN = {"1": 0.0, "2a": 1.0, "preferred": 1.5, "2b": 2.0, "3": 3.0}
_ROMAN = {"I": 0, "II": 1, "III": 2, "IV": 3, "V": 4}
UNGRADED = 9.0


@lru_cache(maxsize=1024)  # a few dozen (system, level) pairs, ranked for every statement of every answer
def grade_rank(system: str | None, level: str | None) -> float:
    if not level:
        return UNGRADED
    text = level.strip()
    if (system or "").upper() == "NCCN" or text.lower().startswith("category") or text.lower() == "preferred":
        key = text.lower().replace("category", "").strip()
        return _NCCN.get(key, UNGRADED)
    match = re.match(r"^\[?\s*(I{1,3}|IV|V)\s*,\s*([A-E])\s*\]?$", text)
    if match:
        return float(_ROMAN[match.group(1)] + "ABCDE".index(match.group(2)))
    return UNGRADED


def subgroup_criteria(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The population criteria on the tumour's biology (molecular.*) that the patient meets: what makes a
    statement about *this* patient's subgroup (BRAF V600E, RAS-mutant, dMMR) rather than about everyone."""
    return [c for c in entry.get("population") or [] if c.get("status") == "met" and (c.get("field") or "").startswith("molecular.")]


def statement_order(entry: dict[str, Any]) -> tuple:
    return (entry["kind"] != "recommendation", grade_rank(entry.get("gradingSystem"), entry.get("level")),
            -len(subgroup_criteria(entry)), -entry.get("specificity", 0), entry["id"])


_SUBGROUP_PLACE = 2  # where statement_order keeps -len(subgroup_criteria(entry))


def trial_order(entry: dict[str, Any]) -> tuple:
    return (entry["designRank"], entry["status"] != "eligible", -(entry.get("sampleSize") or 0), entry["label"], entry["id"])


def _caution_summary(c: dict[str, Any]) -> dict[str, Any]:
    entry = {k: c.get(k) for k in ("id", "label", "text", "reason", "certainty", "source", "quote")}
    entry["treatments"] = [t["id"] for t in c["treatments"]]
    if c.get("missingFields"):
        entry["missingFields"] = c["missingFields"]
    return entry


def _statement_summary(s: dict[str, Any]) -> dict[str, Any]:
    return {"id": s["id"], "label": s["label"], "kind": s["kind"], "level": s["level"], "direction": s["direction"],
            "applicability": s["applicability"], "specificity": s["specificity"]}


def _trial_summary(t: dict[str, Any]) -> dict[str, Any]:
    headline = t.get("headline")
    if headline:
        headline = {k: headline[k] for k in ("endpoint", "statistic", "value", "ciLower", "ciUpper", "pValue", "primary")}
    return {"id": t["id"], "label": t["label"], "design": t["design"], "phase": t["phase"], "sampleSize": t["sampleSize"],
            "registryIds": t["registryIds"], "status": t["status"], "recruitment": t["recruitment"], "headline": headline}


def deciding_fields(derived: dict[str, Any], trial_fields: Counter, statement_fields: Counter) -> list[dict[str, Any]]:
    """Missing fields that would decide undetermined verdicts, ranked by how many verdicts each decides.
    ``trial_fields`` / ``statement_fields``: the undetermined trials' and unknown statements' missing-field lists,
    counted (``TrialTally``, ``Tally``); ``derived``: the answer's derived values (its scores)."""
    counts: dict[str, dict[str, int]] = {}

    def add(fields, kind, times=1):
        for f in set(fields or []):
            counts.setdefault(f, {"trials": 0, "statements": 0, "scores": 0})[kind] += times

    # many verdicts miss the same fields: each distinct list is counted once, with its multiplicity
    for fields, times in trial_fields.items():
        add(fields, "trials", times)
    for fields, times in statement_fields.items():
        add(fields, "statements", times)
    fong = derived.get("fongScore") or {}
    if fong.get("min") != fong.get("max"):
        add(fong.get("missing"), "scores")
    for key in ("tumourBurdenScore", "futureLiverRemnantAdequate"):
        if (derived.get(key) or {}).get("value") is None:
            add((derived.get(key) or {}).get("missing"), "scores")
    ranked = [{"field": f, "decides": sum(c.values()), **c} for f, c in counts.items()]
    ranked.sort(key=lambda e: (-e["decides"], e["field"]))
    return ranked


class Tally:
    """What the summary reads of a list of statement entries, in one pass: the applying recommendations and
    evidence statements (indexes), the applying evidence statements about a molecular subgroup, how many do not
    apply, and the unknown ones' missing-field lists counted. Recommendations rank before evidence statements
    (``statement_order``), so the shown ones are picked from the applying recommendations first.

    Tallies add up (``merged``), so the lookup keeps one for each list of entries that recurs across patients (the
    statements without criteria trees, per resectability; a group of trees, per signature) instead of reading
    every entry for every patient (27 250 at 100x the evidence)."""

    __slots__ = ("recommendations", "statements", "subgroup", "not_applying", "unknown_fields")

    def __init__(self) -> None:
        self.recommendations: list[int] = []
        self.statements: list[int] = []
        self.subgroup: list[int] = []
        self.not_applying = 0
        self.unknown_fields: Counter = Counter()

    @classmethod
    def of(cls, entries: Iterable[dict[str, Any]], ranks: Iterable[tuple], indexes: Iterable[int]) -> "Tally":
        """The tally of ``entries`` with their ``ranks``, each entry counted under its index in ``indexes``."""
        tally = cls()
        for i, s, rank in zip(indexes, entries, ranks):
            tally.add(i, s, rank)
        return tally

    def add(self, i: int, s: dict[str, Any], rank: tuple) -> None:
        applicability = s["applicability"]
        if applicability == "applies":
            if s["kind"] == "recommendation":
                self.recommendations.append(i)
            else:
                self.statements.append(i)
                if rank[_SUBGROUP_PLACE] < 0:
                    self.subgroup.append(i)
        elif applicability == "does-not-apply":
            self.not_applying += 1
        elif applicability == "unknown":
            self.unknown_fields[tuple(s.get("missingFields") or ())] += 1

    def without(self, replaced: dict[int, dict[str, Any]]) -> None:
        """Forget the entries added under these indexes (index -> the entry as added): entries a caution replaced
        for one patient. The lists are filtered once, not searched once per entry."""
        if not replaced:
            return
        self.recommendations = [i for i in self.recommendations if i not in replaced]
        self.statements = [i for i in self.statements if i not in replaced]
        self.subgroup = [i for i in self.subgroup if i not in replaced]
        for s in replaced.values():
            applicability = s["applicability"]
            if applicability == "does-not-apply":
                self.not_applying -= 1
            elif applicability == "unknown":
                fields = tuple(s.get("missingFields") or ())
                self.unknown_fields[fields] -= 1
                if not self.unknown_fields[fields]:
                    del self.unknown_fields[fields]

    @classmethod
    def merged(cls, tallies: Iterable["Tally"]) -> "Tally":
        """One tally of several (of disjoint index sets); the parts are left as they were (they are kept)."""
        total = cls()
        for part in tallies:
            total.recommendations += part.recommendations
            total.statements += part.statements
            total.subgroup += part.subgroup
            total.not_applying += part.not_applying
            total.unknown_fields.update(part.unknown_fields)
        return total


class TrialTally:
    """What the summary reads of a list of trial entries: how many are eligible and undetermined, the first
    ``LIMITS["trials"]`` of those by ``trial_order`` (with their orders), and the undetermined ones' missing-field
    lists counted. Tallies add up (``merged``): the lookup keeps one per group of trial trees and signature."""

    __slots__ = ("eligible", "undetermined", "first", "missing_fields")

    def __init__(self, eligible: int = 0, undetermined: int = 0, first: list[tuple[tuple, dict[str, Any]]] | None = None,
                 missing_fields: Counter | None = None):
        self.eligible, self.undetermined = eligible, undetermined
        self.first = first or []  # (trial_order, entry), sorted
        self.missing_fields = missing_fields if missing_fields is not None else Counter()

    @classmethod
    def of(cls, entries: Iterable[dict[str, Any]]) -> "TrialTally":
        tally = cls()
        shown = []
        for t in entries:
            status = t["status"]
            if status == "eligible":
                tally.eligible += 1
            elif status == "undetermined":
                tally.undetermined += 1
                tally.missing_fields[tuple(t["missingFields"])] += 1
            else:
                continue
            shown.append((trial_order(t), t))
        # trial_order ends with the id: no two orders are equal, so the entries are never compared
        tally.first = heapq.nsmallest(LIMITS["trials"], shown, key=lambda pair: pair[0])
        return tally

    @classmethod
    def merged(cls, tallies: Iterable["TrialTally"]) -> "TrialTally":
        parts = list(tallies)
        missing: Counter = Counter()
        for part in parts:
            missing.update(part.missing_fields)
        first = list(itertools.islice(heapq.merge(*(p.first for p in parts), key=lambda pair: pair[0]), LIMITS["trials"]))
        return cls(sum(p.eligible for p in parts), sum(p.undetermined for p in parts), first, missing)


# a caution's summary is a function of the caution, and cautions are shared between answers (built once per
# statement entry): each summary is built once too, kept with its caution (bounded like the lookup's caches)
_CAUTION_SUMMARIES: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
_MAX_CAUTION_SUMMARIES = 50_000


def _caution_summary_shared(c: dict[str, Any]) -> dict[str, Any]:
    known = _CAUTION_SUMMARIES.get(id(c))
    if known is None or known[0] is not c:  # kept with its caution, so the id is not reused meanwhile
        if len(_CAUTION_SUMMARIES) >= _MAX_CAUTION_SUMMARIES:
            _CAUTION_SUMMARIES.clear()
        known = _CAUTION_SUMMARIES[id(c)] = (c, _caution_summary(c))
    return known[1]


def build(answer: dict[str, Any], ranks: list[tuple] | None = None, tally: "Tally | None" = None,
          trial_tally: "TrialTally | None" = None) -> dict[str, Any]:
    """The summary; ``counts`` gives the totals where the ranked lists stop at ``LIMITS`` (the full view has all).

    ``ranks``: each statement's ``statement_order`` (as the lookup keeps them); the statements may come in any order
    (the summary view leaves them in the graph's: only the few shown are ranked). ``tally``: the statements' tally
    (``Tally.of`` over all of them), and ``trial_tally`` the trials' (``TrialTally.of``), when the caller has them."""
    statements = answer["recommendations"]
    if ranks is None:
        ranks = [statement_order(s) for s in statements]
    if tally is None:
        tally = Tally.of(statements, ranks, range(len(statements)))
    applying_recommendations, applying_statements = tally.recommendations, tally.statements
    subgroup_candidates, not_applying, unknown_fields = tally.subgroup, tally.not_applying, tally.unknown_fields
    limit = LIMITS["recommendations"]
    shown = heapq.nsmallest(limit, applying_recommendations, key=ranks.__getitem__)
    if len(shown) < limit:
        shown += heapq.nsmallest(limit - len(shown), applying_statements, key=ranks.__getitem__)
    shown = [statements[i] for i in shown]
    subgroup = [statements[i] for i in heapq.nsmallest(LIMITS["subgroupFindings"], subgroup_candidates, key=ranks.__getitem__)]
    if trial_tally is None:
        trial_tally = TrialTally.of(answer["trials"])
    trials = [entry for _, entry in trial_tally.first]
    cautions = sorted(answer["cautions"], key=lambda c: (c["certainty"] != "certain", c["id"]))
    return {
        "cautions": [_caution_summary_shared(c) for c in cautions],
        "subgroupFindings": [{**_statement_summary(s), "subgroup": [c["text"] for c in subgroup_criteria(s)]}
                             for s in subgroup],
        "recommendations": [_statement_summary(s) for s in shown],
        "trials": [_trial_summary(t) for t in trials],
        "decidingFields": deciding_fields(answer["derived"], trial_tally.missing_fields, unknown_fields)[:LIMITS["decidingFields"]],
        "counts": {
            "recommendationsApplying": len(applying_recommendations),
            "statementsApplying": len(applying_statements),
            "statementsNotApplying": not_applying,
            "statementsUnknown": sum(unknown_fields.values()),
            "trialsEligible": trial_tally.eligible,
            "trialsUndetermined": trial_tally.undetermined,
            "cautionsCertain": sum(1 for c in cautions if c["certainty"] == "certain"),
            "cautionsPossible": sum(1 for c in cautions if c["certainty"] == "possible"),
        },
        "limits": dict(LIMITS),
    }
