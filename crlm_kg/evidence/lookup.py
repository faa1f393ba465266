"""The evidence that applies to one patient: the orchestration.

Everything patient-specific that the record states is decided by SPARQL: the
patient's facts (with the facts they imply, ``derived.IMPLICATIONS``) are
passed to one query as a VALUES block, and that query evaluates every
machine-evaluable criterion and score component in the graph at once. Python
then decides the leaves that only implied knowledge settles (a characteristic
known to be absent, a value known to lie in an interval, the Fong score's
range), combines the leaves along the all-of / any-of trees read from the
graph, and gates statements by their populations (``population``). Adding a
trial or a statement with criteria to ``data/`` makes it appear here with no
code change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .. import patients, paths
from ..store import IRI, Store
from ..store.terms import python_to_term
from . import derived, operators, population, sparql, summary, trials
from .common import plain, short
from .criteria import MET, NOT_MET, UNKNOWN, Leaf, TreeEvaluator, condition_from_rows, shown_values
from .structure import FONG_SCORE, TUMOUR_BURDEN_SCORE, GraphStructure

C = paths.CRLM
FONG_PROPERTY = C + "fongScore"
SIDEDNESS_PROPERTY = C + "primaryTumourSidedness"
TBS_PROPERTY = C + "tumourBurdenScore"
LOCATION_PROPERTY = C + "primaryTumourLocation"
RESECTABILITY_PROPERTY = C + "resectability"
# Derived characteristics -> the record fields they derive from (what a missing verdict asks for).
DERIVED_FROM = {
    SIDEDNESS_PROPERTY: ["primaryTumor.location"],
    TBS_PROPERTY: ["liverMetastases.count", "liverMetastases.largestDiameterMm"],
}
# facts whose leaf outcomes are kept per lookup (a few hundred distinct values cover the usual records)
_MAX_CACHED_FACTS = 20_000
TRIAL_STATUS = {MET: "eligible", NOT_MET: "ineligible", UNKNOWN: "undetermined"}


json_path = lru_cache(maxsize=None)(patients.json_path_for)  # the contract is fixed while the process runs


def _is_unknown_value(value: Any) -> bool:
    return (isinstance(value, str) and value == "unknown") or (isinstance(value, IRI) and short(value).lower().endswith("unknown"))


@dataclass
class Prepared:
    """One patient's facts before the leaf query (``EvidenceLookup.prepare``)."""

    record: Any
    by_prop: dict[str, Any]
    side_json: dict[str, Any]
    tbs_json: Any
    stated: list[tuple[str, Any]]
    known: derived.Implied
    query_facts: list[tuple[str, Any]]  # stated and implied: what the leaf query compares


class Leaves(dict):
    """One patient's leaves, criterion IRI -> ``Leaf`` (None: undecided), each decided on first ``get``: by the
    outcomes of the facts on its characteristic, else by implied knowledge. Entries written into it (the Fong
    criteria, decided over the score's range) win."""

    def __init__(self, criteria: dict[str, Any], indexes: list[dict[str, tuple[bool | None, ...]]],
                 values: dict[str, list[Any]], reasons: dict[str, str], known: derived.Implied):
        super().__init__()
        self._criteria, self._indexes, self._values, self._reasons, self._known = criteria, indexes, values, reasons, known

    def get(self, iri: str, default: Any = None) -> Any:
        leaf = self[iri]
        return default if leaf is None else leaf

    def __missing__(self, iri: str) -> Leaf | None:
        leaf = self[iri] = self._decide(iri)
        return leaf

    def _decide(self, iri: str) -> Leaf | None:
        criterion = self._criteria.get(iri)
        outcomes = [outcome for index in self._indexes for outcome in index.get(iri, ())]
        if not outcomes:
            return _implied_leaf(criterion, self._known) if criterion is not None else None
        if criterion is None:
            return Leaf(condition_from_rows(None, outcomes), (), None)
        char = criterion.characteristic or ""
        return Leaf(condition_from_rows(criterion, outcomes), tuple(self._values.get(char, ())), self._reasons.get(char))


def _implied_leaf(criterion: Any, known: derived.Implied) -> Leaf | None:
    """The leaf of a criterion no fact decides, where implied knowledge does (its characteristic known to be
    absent, or its value known to lie in an interval); None where it does not."""
    char = criterion.characteristic or ""
    if criterion.evaluable and (char in known.absent or char in known.intervals):
        return derived.decide_by_implication(criterion, known)
    return None


def _trial_tally(indexes, entries: list[dict[str, Any]]) -> "summary.TrialTally":
    """The summary's tally of one group of trial trees (``TreeEvaluator.evaluate_many`` keeps it per signature)."""
    return summary.TrialTally.of(entries)


class EvidenceLookup:
    """Evaluate patients against the graph in ``store``: the structure is read once, then one SPARQL query per patient
    about the facts not seen before. What does not depend on the patient, or depends only on a fact or on a tree's
    criterion verdicts, is kept across patients (the graph is read-only while the lookup lives); answers share those
    parts, so callers treat answers as read-only (tests/test_evidence_cache.py: an answer never depends on the
    patients evaluated before it)."""

    def __init__(self, store: Store):
        self.store = store
        self.structure = GraphStructure(store)
        self._trial_static: dict[str, dict[str, Any]] = {}
        self._criterion_static: dict[str, dict[str, Any]] = {}
        self._statement_static: dict[str, dict[str, Any]] = {}
        self._fact_cache: dict[tuple[str, str], dict[str, tuple[bool | None, ...]]] = {}
        self._trial_tree_list: list[tuple[tuple[str, ...], None]] | None = None

    def warm(self) -> "EvidenceLookup":
        """Read the graph's structure now (at service start) rather than on the first patient."""
        self.structure.warm()
        return self

    # kept for callers that read the structure through the lookup
    @property
    def defined_classes(self):
        return self.structure.defined_classes

    def _static(self, holder: dict[str, Any]) -> dict[str, Any]:
        static = self._trial_static.get(holder["iri"])
        if static is None:
            s = self.structure
            static = self._trial_static[holder["iri"]] = trials.static_part(
                holder, s.studies.get(holder["iri"]), s.status_reports.get(holder["iri"], []), s.outcomes.get(holder["iri"], []),
                s.subclasses_of)
        return static

    def _fact_indexes(self, facts: list[tuple[str, Any]]) -> list[dict[str, tuple[bool | None, ...]]]:
        """For each fact, criterion IRI -> the comparison's outcomes for the criteria that name its characteristic.

        What one fact gives does not depend on the other facts, nor on the patient: each fact's outcomes are
        kept (per lookup, so per graph), and the leaf query asks only about facts not seen before. The key is
        the RDF term the query would compare (1 and 1.0 and true are different terms)."""
        keys = [(p, str(python_to_term(v))) for p, v in facts]
        cache = self._fact_cache
        resolved: dict[tuple[str, str], Any] = {}
        new: dict[tuple[str, str], tuple[str, Any]] = {}
        for key, fact in zip(keys, facts):
            index = cache.get(key)  # get, not `in` then []: another thread may clear the cache meanwhile
            if index is None:
                new[key] = fact
            else:
                resolved[key] = index
        if new:
            asked = list(new)
            rows = self.store.select(sparql.leaf_query([(IRI(p), v) for p, v in new.values()]))
            indexes = []
            for pairs in sparql.parse_leaves(rows[0].get("leaves") if rows else None, len(asked)):
                index: dict[str, list[bool | None]] = {}
                for iri, outcome in pairs:
                    index.setdefault(iri, []).append(outcome)
                indexes.append({iri: tuple(outcomes) for iri, outcomes in index.items()})
            resolved.update(zip(asked, indexes))
            if len(cache) + len(asked) > _MAX_CACHED_FACTS:  # a stream of distinct numbers must not grow it without limit
                cache.clear()
            cache.update(zip(asked, indexes))
        return [resolved[key] for key in keys]  # every occurrence of a fact, as the query's VALUES block had them

    def _leaves(self, facts: list[tuple[str, Any]], known: derived.Implied) -> "Leaves":
        """The leaves (criteria and score components) the facts decide, by the leaf query or else by implied
        knowledge: each decided when first asked for (the graph's criteria are many, a patient's trees mostly
        answered from the tree-result cache)."""
        values: dict[str, list[Any]] = {}
        for p, v in facts:
            values.setdefault(str(p), []).append(v)
        return Leaves(self.structure.criteria, self._fact_indexes(facts) if facts else [], values,
                      {str(p): reason for p, _, reason in known.facts}, known)

    def _implied_leaves(self, known: derived.Implied) -> dict[str, Leaf]:
        """Every leaf implied knowledge alone decides, as ``_leaves`` decides it for a criterion no fact decides."""
        leaves: dict[str, Leaf] = {}
        for char in set(known.absent) | set(known.intervals):
            for criterion in self.structure.criteria_by_characteristic.get(char, []):
                decided = _implied_leaf(criterion, known)
                if decided is not None:
                    leaves[criterion.iri] = decided
        return leaves

    def _decide_fong_criteria(self, leaves: dict[str, Leaf], fong: dict[str, Any]) -> None:
        """Criteria on the Fong score, decided over its range (a CRS 3-5 criterion is met by a range 3-5)."""
        if fong.get("min") is None:
            return
        for criterion in self.structure.criteria_by_characteristic.get(FONG_PROPERTY, []):
            if not criterion.evaluable or criterion.required:
                continue
            iri = criterion.iri
            results = {operators.holds(criterion.operator, v, criterion.threshold) for v in range(fong["min"], fong["max"] + 1)}
            condition = results.pop() if len(results) == 1 else None
            value = fong["min"] if fong["min"] == fong["max"] else f"{fong['min']}-{fong['max']}"
            leaves[iri] = Leaf(condition, (value,), None)

    def prepare(self, record) -> "Prepared":
        """The patient's facts, stated, derived and implied: everything the leaf query needs."""
        s = self.structure
        facts = [(str(p), v) for p, v in record.facts() if not _is_unknown_value(v)]
        by_prop = {}
        for p, v in facts:
            by_prop.setdefault(p, v)
        side_json, side_fact = derived.sidedness(by_prop.get(LOCATION_PROPERTY), s.sidedness_rules, record.fields.get("primaryTumor.location"))
        tbs_json, tbs_fact = derived.tumour_burden(record.fields.get("liverMetastases.count"),
                                                   record.fields.get("liverMetastases.largestDiameterMm"), s.scores.get(TUMOUR_BURDEN_SCORE, {}))
        stated = facts + [f for f in (side_fact, tbs_fact) if f]
        known = derived.implied(stated)
        return Prepared(record, by_prop, side_json, tbs_json, stated, known, stated + [(p, v) for p, v, _ in known.facts])

    def evaluate(self, record, view: str = "full") -> dict[str, Any]:
        """The evidence answer for ``record``; ``view="summary"``: its patient, summary and derived values only
        (what ``views.apply_view`` keeps of the full answer), without ranking what the summary does not show."""
        prepared = self.prepare(record)
        evaluator, fong = self.evaluator(prepared, self._leaves(prepared.query_facts, prepared.known))
        return self._answer(prepared, evaluator, fong, full=view != "summary")

    def evaluator(self, prepared: "Prepared", leaves: dict[str, Leaf]) -> tuple[TreeEvaluator, dict[str, Any]]:
        """The criteria-tree evaluator of one patient (and its Fong score), once its leaves are known."""
        s = self.structure
        record = prepared.record
        field_of = lambda char: json_path(char) or short(char)  # noqa: E731
        fong = derived.fong(s.scores.get(FONG_SCORE), leaves, field_of)
        self._decide_fong_criteria(leaves, fong)

        def deciding_fields_of(char: str) -> list[str]:
            if char == FONG_PROPERTY:
                return fong.get("missing") or [c["field"] for c in fong.get("components", []) if c["field"]]
            return DERIVED_FROM.get(char) or [field_of(char)]

        def patient_value_of(criterion, leaf: Leaf | None) -> Any:
            path = json_path(criterion.characteristic) if criterion.characteristic else None
            value = record.fields.get(path) if path else None
            if value is None and leaf is not None:
                value = shown_values(leaf.values)
            return value

        facts_by_char: dict[str, list[Any]] = {}
        for p, v in prepared.query_facts:
            facts_by_char.setdefault(p, []).append((type(v), v, str(python_to_term(v))))
        reasons = {p: reason for p, _, reason in prepared.known.facts}
        known = prepared.known

        def signature_of(char: str) -> tuple:
            """Everything a criterion on ``char`` reads from this patient: the facts the leaf query compares (with
            their types: 42 and 42.0 are shown apart), the implications that decide it, the record's own value, and
            for the Fong score its range and missing components. Two patients with equal signatures get equal
            verdicts and entries for every criterion on ``char``."""
            path = json_path(char)
            raw = record.fields.get(path) if path else None
            shown = tuple((type(v), v) for v in raw) if isinstance(raw, list) else (type(raw), raw)
            fong_part = (fong.get("min"), fong.get("max"), tuple(deciding_fields_of(char))) if char == FONG_PROPERTY else None
            return (tuple(facts_by_char.get(char, ())), reasons.get(char), known.absent.get(char), known.intervals.get(char),
                    shown, fong_part)

        evaluator = TreeEvaluator(s.criteria, s.groups, leaves, field_of, patient_value_of, deciding_fields_of, signature_of,
                                  self._criterion_static)
        return evaluator, fong

    def _trial_trees(self) -> list[tuple[tuple[str, ...], None]]:
        """The trials' criteria trees, in ``structure.trials`` order, as ``TreeEvaluator.evaluate_many`` takes them
        (one list per lookup: the evaluator groups its trees once)."""
        if self._trial_tree_list is None:
            self._trial_tree_list = [(tuple(holder["roots"]), None) for holder in self.structure.trials]
        return self._trial_tree_list

    def _trial_entry(self, index: int, tree) -> dict[str, Any]:
        holder = self.structure.trials[index]
        key = ("\0trial", holder["iri"])
        entry = tree.derived.get(key)  # a function of the trial and its tree's result: built once, shared (read-only)
        if entry is None:
            entry = tree.derived[key] = trials.trial_entry(self._static(holder), TRIAL_STATUS[tree.status], tree.criteria, tree.missing)
        return entry

    def _answer(self, prepared: "Prepared", evaluator: TreeEvaluator, fong: dict[str, Any], full: bool = True) -> dict[str, Any]:
        s = self.structure
        record, by_prop, stated, known = prepared.record, prepared.by_prop, prepared.stated, prepared.known
        side_json, tbs_json = prepared.side_json, prepared.tbs_json
        classes_facts = stated + ([(FONG_PROPERTY, fong["min"])] if fong.get("min") is not None and fong["min"] == fong["max"] else [])
        trial_entries, trial_tallies = evaluator.evaluate_many(self._trial_trees(), self._trial_entry, _trial_tally)
        if full:
            order = {"eligible": 0, "undetermined": 1, "ineligible": 2}
            trial_entries.sort(key=lambda t: (order[t["status"]], t["designRank"], t["label"]))
        # the full answer lists every statement in rank order; the summary shows a few, ranked where they are picked
        statements, ranks, cautions, tally = population.assess(s.statements, s.holders, evaluator, by_prop.get(RESECTABILITY_PROPERTY),
                                                        s.subclasses_of, s.labels, self._statement_static, detailed=full)
        if full:
            order_of = sorted(range(len(statements)), key=ranks.__getitem__)  # a caution does not change a rank
            statements, ranks = [statements[i] for i in order_of], [ranks[i] for i in order_of]

        derived_json: dict[str, Any] = {**side_json, "tumourBurdenScore": tbs_json, "fongScore": fong,
                                        "futureLiverRemnantAdequate": derived.flr_adequacy(record.fields, s.flr_thresholds),
                                        "classes": derived.patient_classes(classes_facts, s.defined_classes)}
        derived_json["implied"] = sorted({reason for _, _, reason in known.facts} | set(known.absent.values())
                                         | {i[2] for i in known.intervals.values()})
        result = {"patient": record.id, "derived": derived_json, "trials": trial_entries, "recommendations": statements,
                  "cautions": cautions}
        # the full view's summary is built from its lists (a cross-check of the tallies: tests/test_evidence_summary.py)
        result["summary"] = summary.build(result, ranks, None, None) if full else \
            summary.build(result, ranks, tally, summary.TrialTally.merged(trial_tallies))
        if not full:
            return {"patient": result["patient"], "summary": result["summary"], "derived": derived_json}
        return {"patient": result["patient"], "summary": result["summary"], "derived": derived_json, "trials": trial_entries,
                "recommendations": statements, "cautions": cautions}
