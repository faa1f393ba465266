"""The screening of a validated cohort: a few batched leaf queries, then the evidence lookup's trees.

The per-patient lookup (``EvidenceLookup.evaluate``) runs one leaf query per patient; here the
facts of ``BATCH`` patients go into one query (each row tagged with the patient's position) whose
answer is grouped by patient. Each patient's leaves then go through the same steps as in the
lookup (implied facts, the Fong score, the all-of / any-of trees), so its verdicts are the ones
``POST /evidence`` gives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .. import patients
from ..evidence import sparql
from ..evidence.common import short
from ..evidence.criteria import Leaf, condition_from_rows
from ..evidence.lookup import TRIAL_STATUS, EvidenceLookup
from ..patients.cohort_check import check_cohort
from ..patients.report import Violation
from ..store import IRI

BATCH = 1000  # patients per leaf query: big enough to amortise the query, small enough to keep its text a few MB
STATUSES = ("eligible", "undetermined", "ineligible")


@dataclass
class Screening:
    """The matches of a cohort: per trial, the patients whose status is among ``statuses``."""

    patients: int
    valid: int
    trials: list[dict[str, Any]]
    invalid: list[dict[str, Any]] = field(default_factory=list)
    statuses: tuple[str, ...] = ("eligible",)


def _criterion_verdict(entry: dict[str, Any]) -> dict[str, Any]:
    verdict = {"id": entry["id"], "kind": entry["kind"], "status": entry["status"], "evaluable": entry["evaluable"],
               "field": entry.get("field"), "patientValue": entry.get("patientValue")}
    if entry.get("missingFields"):
        verdict["missingFields"] = entry["missingFields"]
    return verdict


def trial_holders(lookup: EvidenceLookup, trial: str | None) -> list[dict[str, Any]]:
    """The trials to screen for: one (by its id, acronym or IRI) or all. Raises KeyError for an unknown trial."""
    holders = lookup.structure.trials
    if trial is None:
        return holders
    wanted = trial.lower()
    chosen = [h for h in holders if wanted in (short(h["iri"]).lower(), str(h["iri"]).lower(), (h.get("acronym") or "").lower())]
    if not chosen:
        raise KeyError(trial)
    return chosen


def screen(lookup: EvidenceLookup, items: list[Any], trial: str | None = None, statuses: tuple[str, ...] = ("eligible",),
           limits: patients.Limits = patients.DEFAULT_LIMITS, labels: list[Any] | None = None,
           progress: Callable[[int], None] | None = None, workers: int = 1) -> Screening:
    """Screen the cohort ``items`` (parsed JSON records) for ``trial`` (None: every trial).

    ``labels[i]`` names record ``i`` in the answer (default: its index); ``progress(n)`` is called as
    patients are screened (n: how many more). ``workers`` > 1 screens slices of the cohort in forked
    processes (the command line; the service screens in its request thread)."""
    holders = trial_holders(lookup, trial)
    labels = labels if labels is not None else list(range(len(items)))
    duplicates, skip = duplicate_ids(items, labels)
    if workers > 1 and len(items) > BATCH:
        from .parallel import screen_in_processes

        parts = screen_in_processes(lookup, items, holders, statuses, limits, labels, skip, workers, progress)
    else:
        parts = [screen_slice(lookup, items, holders, statuses, limits, labels, skip, progress)]
    matches: dict[str, list[dict[str, Any]]] = {h["iri"]: [] for h in holders}
    invalid, valid = list(duplicates), 0
    for part in parts:  # in cohort order
        valid += part["valid"]
        invalid += part["invalid"]
        for iri, found in part["matches"].items():
            matches[iri] += found
    invalid.sort(key=lambda v: -1 if v["index"] is None else v["index"])
    trials_out = [{"id": short(h["iri"]), "label": h.get("label"), "acronym": h.get("acronym"), "matches": matches[h["iri"]]}
                  for h in holders]
    return Screening(len(items), valid, trials_out, invalid, statuses)


def duplicate_ids(items: list[Any], labels: list[Any]) -> tuple[list[dict[str, Any]], set[int]]:
    """The violations of records whose id an earlier record of the cohort has, and their indices."""
    seen: dict[str, int] = {}
    violations, skip = [], set()
    for index, item in enumerate(items):
        rid = item.get("id") if isinstance(item, dict) else None
        if not isinstance(rid, str) or not patients.ID_PATTERN.fullmatch(rid):
            continue
        if rid in seen:
            skip.add(index)
            violations.append(Violation(rid, index, "id", "unique", f"id {rid} is used by more than one record of the cohort "
                                                                 f"({labels[seen[rid]]} and {labels[index]})", rid).to_json())
        else:
            seen[rid] = index
    return violations, skip


def screen_slice(lookup: EvidenceLookup, items: list[Any], holders: list[dict[str, Any]], statuses: tuple[str, ...],
                 limits: patients.Limits, labels: list[Any], skip: set[int], progress: Callable[[int], None] | None = None,
                 offset: int = 0) -> dict[str, Any]:
    """Validate and screen ``items`` (records ``offset``… of the cohort): its matches by trial IRI, its invalid records."""
    checked = check_cohort(items, limits, labels, skip)
    matches: dict[str, list[dict[str, Any]]] = {h["iri"]: [] for h in holders}
    verdicts = _VerdictCache(lookup)
    bulk = _BulkLeaves(lookup)
    for start in range(0, len(checked.valid), BATCH):
        batch = checked.valid[start:start + BATCH]
        prepared = [lookup.prepare(record) for record in batch]
        for record, prep, leaves in zip(batch, prepared, bulk.batch(prepared)):
            evaluator, _ = lookup.evaluator(prep, leaves)
            for holder in holders:
                status = TRIAL_STATUS[verdicts.status(evaluator, leaves, holder)]
                if status in statuses:
                    tree = evaluator.evaluate(holder["roots"])
                    matches[holder["iri"]].append({
                        "patient": record.id, "record": labels[record.index], "status": status,
                        "criteria": [_criterion_verdict(c) for c in tree.criteria], "missingFields": tree.missing})
        if progress is not None:
            progress(len(batch))
    if progress is not None:
        progress(len(items) - len(checked.valid))
    invalid = []
    for v in checked.violations:
        entry = v.to_json()
        if entry["index"] is not None:
            entry["index"] += offset
        invalid.append(entry)
    return {"valid": len(checked.valid), "invalid": invalid, "matches": matches}


class _VerdictCache:
    """A trial's verdict is a function of the conditions of the criteria in its tree (the tree and
    which criteria are evaluable are fixed): patients with the same conditions share the verdict,
    which ``TreeEvaluator.status`` computes once."""

    def __init__(self, lookup: EvidenceLookup):
        self._structure = lookup.structure
        self._criteria_of: dict[str, tuple[str, ...]] = {}
        self._known: dict[tuple, str] = {}

    def _criteria(self, holder: dict[str, Any]) -> tuple[str, ...]:
        found = self._criteria_of.get(holder["iri"])
        if found is None:
            groups, seen, stack = self._structure.groups, [], list(holder["roots"])
            while stack:
                node = stack.pop()
                if node in seen:
                    continue
                seen.append(node)
                if node in groups:
                    stack.extend(groups[node][1])
            found = self._criteria_of[holder["iri"]] = tuple(n for n in seen if n not in groups)
        return found

    def status(self, evaluator, leaves: dict[str, Any], holder: dict[str, Any]) -> str:
        conditions = []
        for iri in self._criteria(holder):
            leaf = leaves.get(iri)
            conditions.append(None if leaf is None else leaf.condition)
        key = (holder["iri"], tuple(conditions))
        status = self._known.get(key)
        if status is None:
            if len(self._known) > 200_000:  # bounded: a cohort of very varied patients must not grow it without limit
                self._known.clear()
            status = self._known[key] = evaluator.status(holder["roots"])
        return status


class _BulkLeaves:
    """The leaves of a batch of patients, as ``EvidenceLookup._leaves`` makes them for one.

    A row of the leaf query depends on one (characteristic, value) pair only, and patients share most
    pairs (codes, small integers): each distinct pair is compared once, in one query for the batch.
    A leaf depends only on the values of its criterion's one characteristic (the evidence shapes allow
    one) and on the implication that gave them, so the leaves of one (characteristic, values, reason)
    are built once and shared. Pair keys keep the value's type: True, 1 and 1.0 are equal in Python,
    but a boolean, an integer and a decimal compare differently in SPARQL."""

    def __init__(self, lookup: EvidenceLookup):
        self.lookup = lookup
        self._parts: dict[tuple, dict[str, Leaf]] = {}

    def batch(self, prepared: list[Any]) -> list[dict[str, Leaf]]:
        pairs: dict[tuple, int] = {}
        for prep in prepared:
            for p, v in prep.query_facts:
                pairs.setdefault((p, type(v), v), len(pairs))
        by_pair: dict[int, list[tuple[str, bool | None]]] = {}
        if pairs:
            rows = [(n, IRI(str(p)), v) for (p, _, v), n in pairs.items()]
            for row in self.lookup.store.select(sparql.cohort_leaf_query(rows)):
                (by_pair[int(row["patient"])],) = sparql.parse_leaves(row.get("leaves"), 1)  # one fact per pair
        if len(self._parts) > 100_000:  # bounded, like every cache of a long-running process
            self._parts.clear()
        return [self._leaves(prep, pairs, by_pair) for prep in prepared]

    def _leaves(self, prep, pairs: dict[tuple, int], by_pair: dict[int, list]) -> dict[str, Leaf]:
        values: dict[str, list[Any]] = {}
        for p, v in prep.query_facts:
            values.setdefault(str(p), []).append(v)
        reasons = {str(p): reason for p, _, reason in prep.known.facts}
        leaves: dict[str, Leaf] = {}
        criteria = self.lookup.structure.criteria
        for char, vals in values.items():
            key = (char, tuple((type(v), v) for v in vals), reasons.get(char))
            part = self._parts.get(key)
            if part is None:
                outcomes: dict[str, list[bool | None]] = {}
                for v in vals:
                    for iri, flag in by_pair.get(pairs[(char, type(v), v)], ()):
                        outcomes.setdefault(iri, []).append(flag)
                part = {}
                for iri, rows in outcomes.items():
                    criterion = criteria.get(iri)
                    part[iri] = Leaf(condition_from_rows(criterion, rows), tuple(vals) if criterion else (),
                                     reasons.get(char) if criterion else None)
                self._parts[key] = part
            leaves.update(part)
        # what implied knowledge alone decides (a characteristic known to be absent, a value in an interval),
        # for the criteria no value decided: the lookup's own code, given no query outcomes
        for iri, leaf in self.lookup._implied_leaves(prep.known).items():
            leaves.setdefault(iri, leaf)
        return leaves
