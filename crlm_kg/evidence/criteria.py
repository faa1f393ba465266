"""The criterion model and its three-valued evaluation.

A criterion is ``met``, ``not-met`` or ``unknown``. ``status`` always answers
"is this criterion satisfied for eligibility (or for the population)?": an
inclusion criterion is met when its condition holds; an exclusion criterion
describes the *excluding* condition, so it is met when that condition does
NOT hold. Because "met" on an exclusion reads ambiguously, exclusion criteria
also carry ``excludes``: ``true`` (the excluding condition holds: the patient
is excluded), ``false`` (it does not) or ``null`` (unknown).

Criteria kept as wording only (``crlm:freeTextOnly``) are listed with status
``unknown`` and ``evaluable: false``; they never decide a verdict, and a group
of wording-only criteria is unknown, never vacuously met.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Sequence

from . import operators
from .common import plain, short

MET, NOT_MET, UNKNOWN = "met", "not-met", "unknown"


@dataclass
class Criterion:
    iri: str
    kind: str  # inclusion / exclusion / component
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
    note: str | None = None

    @property
    def text(self) -> str:
        return self.label or self.quote or short(self.iri)

    def rule(self) -> str:
        symbol = operators.symbol(self.operator)
        if self.required:
            target = " or ".join(self.required_labels) if self.operator == "Equal" else "none of " + ", ".join(self.required_labels)
            symbol = "is"
        else:
            target = str(self.threshold).lower() if isinstance(self.threshold, bool) else self.threshold
        name = short(self.characteristic) if self.characteristic else "?"
        prefix = "excluded if " if self.kind == "exclusion" else ""
        return f"{prefix}{name} {symbol} {target}"


@dataclass(frozen=True)
class Leaf:
    """What the patient's facts say about one criterion's condition (before inclusion/exclusion is applied)."""

    condition: bool | None
    values: tuple[Any, ...] = ()
    implied_by: str | None = None  # the implication that decided it, when no value was given


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


def condition_from_rows(criterion: Criterion | None, outcomes: list[bool | None]) -> bool | None:
    """Combine the per-value results of the leaf query: a multi-valued characteristic (extrahepatic sites) meets
    ``=`` when one value does, and ``≠`` only when every value does."""
    if not outcomes or any(h is None for h in outcomes):
        return None
    if criterion is not None and criterion.operator == "NotEqual":
        return all(outcomes)
    return any(outcomes)


def status_of(criterion: Criterion, leaf: Leaf | None) -> str:
    if not criterion.evaluable or leaf is None or leaf.condition is None:
        return UNKNOWN
    holds = leaf.condition if criterion.kind != "exclusion" else not leaf.condition
    return MET if holds else NOT_MET


@dataclass
class TreeResult:
    status: str
    criteria: list[dict[str, Any]]
    missing: list[str]
    # what callers build from this result for every patient who gets it (a statement's entry, a trial's):
    # built once, like the result itself
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property  # a result is shared by every patient whose criteria read the same: counted once
    def met_count(self) -> int:
        return sum(1 for c in self.criteria if c["status"] == MET and c["evaluable"])


# bound on the shared (criterion, verdict, value) -> JSON cache: distinct patient values are few, but a
# stream of distinct numbers must not grow it without limit
_MAX_SHARED_ENTRIES = 50_000
# bound on the results kept per tree: distinct patient values are few, but a stream of distinct numbers must
# not grow them without limit
_MAX_RESULTS_PER_TREE = 2048
# bound on the signature -> number table (see ``TreeEvaluator._signature_id``)
_MAX_SIGNATURE_IDS = 100_000
_MISSING = object()
# deeper than any curated tree: a cycle in the data (a group that contains itself) stops here as unknown
_MAX_TREE_DEPTH = 32


class TreeEvaluator:
    """Evaluates all-of / any-of trees of criteria for one patient."""

    def __init__(self, criteria: dict[str, Criterion], groups: dict[str, tuple[str, list[str]]], leaves: dict[str, Leaf],
                 field_of, patient_value_of, deciding_fields_of, signature_of, static_cache: dict[str, dict[str, Any]] | None = None):
        self.criteria = criteria
        self.groups = groups
        self.leaves = leaves
        self.field_of = field_of  # characteristic IRI -> JSON path (or the characteristic's name)
        self.patient_value_of = patient_value_of  # (criterion, leaf) -> value shown to the user
        self.deciding_fields_of = deciding_fields_of  # characteristic IRI -> record fields that would decide it
        # characteristic IRI -> a hashable account of everything this patient's record says about it (see ``evaluate``)
        self.signature_of = signature_of
        self._signature_memo: dict[str | None, Any] = {}  # this patient's
        self._key_by_characteristics: dict[tuple[str, ...], int] = {}  # this patient's: characteristic set -> its signature's number
        self._static = static_cache if static_cache is not None else {}  # per-criterion parts that do not depend on the patient
        # node -> evaluable, and (criterion, verdict, shown value, implication) -> its JSON entry: both hold for
        # every patient, so they live in the shared cache (answers are read-only; see EvidenceLookup)
        self._evaluable: dict[str, bool] = self._static.setdefault("\0evaluable", {})  # type: ignore[assignment]
        self._entries: dict[tuple, dict[str, Any]] = self._static.setdefault("\0entries", {})  # type: ignore[assignment]
        self._plans: dict[tuple[str, ...], tuple[str, ...]] = self._static.setdefault("\0plans", {})  # type: ignore[assignment]
        self._tree_characteristics: dict[tuple[str, ...], tuple[str, ...]] = self._static.setdefault("\0characteristics", {})  # type: ignore[assignment]
        self._heights: dict[str, int] = self._static.setdefault("\0heights", {})  # type: ignore[assignment]
        # tree -> (its characteristics' signatures, its synthetic entries) -> its result, for every patient
        self._results: dict[tuple[str, ...], dict[tuple, TreeResult]] = self._static.setdefault("\0results", {})  # type: ignore[assignment]
        # tree -> (its criteria, its characteristics, its results): one lookup per tree and patient
        self._trees: dict[tuple[str, ...], tuple] = self._static.setdefault("\0trees", {})  # type: ignore[assignment]
        self._signature_ids: dict[tuple, int] = self._static.setdefault("\0signature ids", {})  # type: ignore[assignment]
        self._signature_counter = self._static.setdefault("\0signature counter", itertools.count())  # type: ignore[assignment]
        self._node_status: dict[str, str] = {}  # this patient's
        self._entry_memo: dict[str, dict[str, Any]] = {}  # this patient's
        self._key_memo: dict[str, tuple | None] = {}  # this patient's

    def evaluate(self, roots: list[str], extra: list[dict[str, Any]] | None = None) -> TreeResult:
        # A tree's result is a function of its criteria's entries and of the synthetic ones: kept per tree and
        # combination. A criterion's entry (verdict, shown value, deciding fields) is a function of what the
        # record says about its characteristic, so the characteristics' signatures key the result: a few per
        # tree instead of an entry key per criterion (a criterion without a characteristic is wording only:
        # the same for everyone). Trees reading the same characteristics share this patient's key (one per set).
        tree = roots if isinstance(roots, tuple) else tuple(roots)
        known_tree = self._trees.get(tree)
        if known_tree is None:
            plan = self._criteria_under(tree)
            known_tree = self._trees[tree] = (plan, self._characteristics_under(tree, plan), self._results.setdefault(tree, {}))
        plan, characteristics, results = known_tree
        memo_key = (self._signature_key(characteristics), tuple([(e["id"], e["status"], e["patientValue"]) for e in extra]) if extra else ())
        try:
            known = results.get(memo_key)
        except TypeError:  # an unhashable value (a synthetic entry's list): computed, not kept
            memo_key, known = None, None
        if known is not None:
            return known
        out = [self._entry(iri) for iri in plan]
        statuses = [self._status(root, 0) for root in roots]
        for entry in extra or []:  # synthetic criteria (a statement's setting) join the all-of at the top
            out.append(entry)
            statuses.append(entry["status"])
        status = combine("all", statuses) if statuses else UNKNOWN
        unique = list({c["id"]: c for c in out}.values())
        missing = sorted({f for c in unique if c["status"] == UNKNOWN and c["evaluable"] for f in c.get("missingFields", [])})
        result = TreeResult(status, unique, missing)
        if memo_key is not None:
            if len(results) >= _MAX_RESULTS_PER_TREE:
                results.clear()
            results[memo_key] = result
        return result

    def evaluate_many(self, items: Sequence[tuple[Sequence[str], list[dict[str, Any]] | None]],
                      build: Callable[[int, TreeResult], Any],
                      summarise: Callable[[Sequence[int], list[Any]], Any] | None = None) -> tuple[list[Any], list[Any]]:
        """``[build(i, self.evaluate(roots, extra)) for i, (roots, extra) in enumerate(items)]``, by groups of trees;
        with ``summarise``, also ``summarise(indexes, values)`` of each group (its items' indexes and built values).

        A tree's result is a function of the patient's signature over the characteristics it reads (and of its
        synthetic entries, fixed in ``items``), so trees reading the same characteristics are grouped once per
        ``items`` list (the graph's), and a group's built values and summary are kept per signature: a patient
        costs one lookup per group, not one per tree (at 100x the evidence, a few hundred groups instead of
        16 400 trees). ``build`` and ``summarise`` must be functions of their arguments alone, and the same ones
        at every call with one ``items`` list (what is kept is theirs); ``items`` must not change once passed."""
        groups = self._groups_of(items)
        out: list[Any] = [None] * len(items)
        summaries: list[Any] = []
        for characteristics, indexes, kept in groups:
            signature = self._signature_key(characteristics)
            known = kept.get(signature)
            if known is None:
                values = [build(i, self.evaluate(items[i][0], items[i][1])) for i in indexes]
                known = (values, summarise(indexes, values) if summarise is not None else None)
                if len(kept) >= _MAX_RESULTS_PER_TREE:
                    kept.clear()
                kept[signature] = known
            for i, value in zip(indexes, known[0]):
                out[i] = value
            if summarise is not None:
                summaries.append(known[1])
        return out, summaries

    def _groups_of(self, items: Sequence[tuple[Sequence[str], Any]]) -> list[tuple[tuple[str, ...], tuple[int, ...], dict]]:
        """(characteristics, the indexes of the items whose trees read exactly those, their values per signature),
        listed once per ``items`` list: the list is kept with its groups, so its id is never another list's."""
        key = ("\0groups", id(items))
        known = self._static.get(key)
        if known is None or known[0] is not items:
            by_characteristics: dict[tuple[str, ...], list[int]] = {}
            for i, (roots, _) in enumerate(items):
                tree = roots if isinstance(roots, tuple) else tuple(roots)
                by_characteristics.setdefault(self._characteristics_under(tree, self._criteria_under(tree)), []).append(i)
            known = self._static[key] = (items, [(chars, tuple(indexes), {}) for chars, indexes in by_characteristics.items()])
        return known[1]

    def status(self, roots: list[str]) -> str:
        """The verdict of ``evaluate`` without building the criteria entries (cohort screening: most
        patients match few trials, and only a match's criteria are shown)."""
        statuses = [self._status(root, 0) for root in roots]
        return combine("all", statuses) if statuses else UNKNOWN

    # A node's status and a criterion's entry depend only on the patient's leaves: each is computed once per
    # patient (this evaluator), however many trees share it. Which criteria lie under a tree does not depend on
    # the patient: listed once per graph (the shared cache).

    def _criteria_under(self, tree: tuple[str, ...]) -> tuple[str, ...]:
        """The criteria of the tree in depth-first order, each once (the order of the answer's criteria lists)."""
        listed = self._plans.get(tree)
        if listed is None:
            found: list[str] = []

            def walk(node: str, depth: int) -> None:
                if depth > _MAX_TREE_DEPTH:
                    return
                group = self.groups.get(node)
                if group is not None:
                    for member in group[1]:
                        walk(member, depth + 1)
                elif node in self.criteria:
                    found.append(node)

            for root in tree:
                walk(root, 0)
            listed = self._plans[tree] = tuple(dict.fromkeys(found))
        return listed

    def _characteristics_under(self, tree: tuple[str, ...], plan: tuple[str, ...]) -> tuple[str, ...]:
        listed = self._tree_characteristics.get(tree)
        if listed is None:
            listed = self._tree_characteristics[tree] = tuple(sorted({self.criteria[iri].characteristic for iri in plan
                                                                      if self.criteria[iri].characteristic}))
        return listed

    def _signature_key(self, characteristics: tuple[str, ...]) -> int:
        """This patient's signature over ``characteristics``, as its number: one per characteristic set and patient."""
        key = self._key_by_characteristics.get(characteristics)
        if key is None:
            key = self._key_by_characteristics[characteristics] = self._signature_id(tuple([self._signature(c) for c in characteristics]))
        return key

    def _signature_id(self, signature: tuple) -> int:
        """A number standing for ``signature`` in the result keys: a signature nests the patient's values (and
        dataclasses), and a tuple does not keep its hash, so every result lookup of every tree rehashed it. Numbers
        are never reused, so forgetting the table (it is bounded) can only make later lookups miss."""
        ids = self._signature_ids
        if len(ids) >= _MAX_SIGNATURE_IDS:
            ids.clear()
        return ids.setdefault(signature, next(self._signature_counter))

    def _signature(self, characteristic: str) -> Any:
        known = self._signature_memo.get(characteristic, _MISSING)
        if known is _MISSING:
            known = self._signature_memo[characteristic] = self.signature_of(characteristic)
        return known

    def _height(self, node: str, depth: int = 0) -> int:
        """Levels below ``node`` (a cycle, or a tree deeper than the bound, counts as past the bound)."""
        height = self._heights.get(node)
        if height is None:
            group = self.groups.get(node)
            if group is None:
                height = 0
            elif depth > _MAX_TREE_DEPTH:
                return _MAX_TREE_DEPTH + 1
            else:
                height = min(1 + max((self._height(m, depth + 1) for m in group[1]), default=0), _MAX_TREE_DEPTH + 1)
            if depth == 0 or height <= _MAX_TREE_DEPTH:
                self._heights[node] = height
        return height

    def _status(self, node: str, depth: int) -> str:
        status = self._node_status.get(node)
        if status is not None:
            return status
        status = self._node(node, depth)
        if depth + self._height(node) <= _MAX_TREE_DEPTH:  # the depth bound did not cut it: the same from any tree
            self._node_status[node] = status
        return status

    def _node(self, node: str, depth: int) -> str:
        if depth > _MAX_TREE_DEPTH:  # a cycle in the data must not hang the service
            return UNKNOWN
        group = self.groups.get(node)
        if group is not None:
            kind, members = group
            statuses = [self._status(m, depth + 1) for m in members]
            evaluable = [self.is_evaluable(m) for m in members]
            if not any(evaluable):
                return UNKNOWN  # wording only: the group needs screening, it is not vacuously met
            if kind == "any":
                # a wording-only alternative may be the one the patient satisfies: it keeps the
                # group undecided instead of letting the evaluable alternatives fail it
                return combine(kind, [s if e else UNKNOWN for s, e in zip(statuses, evaluable)])
            # all-of: wording-only members cannot be decided from the record and are screened
            # by hand (statusBasis); the evaluable ones decide
            return combine(kind, [s for s, e in zip(statuses, evaluable) if e])
        criterion = self.criteria.get(node)
        if criterion is None:
            return UNKNOWN
        return status_of(criterion, self.leaves.get(criterion.iri))

    def _entry_key(self, iri: str) -> tuple | None:
        known = self._key_memo.get(iri, _MISSING)
        if known is _MISSING:
            criterion = self.criteria[iri]
            leaf = self.leaves.get(iri)
            known = self._key_memo[iri] = self.entry_key(criterion, status_of(criterion, leaf), leaf)
        return known

    def _entry(self, iri: str) -> dict[str, Any]:
        entry = self._entry_memo.get(iri)
        if entry is None:
            criterion = self.criteria[iri]
            leaf = self.leaves.get(iri)
            key = self._entry_key(iri)
            entry = self._entries.get(key) if key is not None else None
            if entry is None:
                entry = self.to_json(criterion, status_of(criterion, leaf), leaf)
            self._entry_memo[iri] = entry
        return entry

    def is_evaluable(self, node: str) -> bool:
        known = self._evaluable.get(node)
        if known is None:
            if node in self.groups:
                known = any(self.is_evaluable(m) for m in self.groups[node][1])
            else:
                criterion = self.criteria.get(node)
                known = criterion is not None and criterion.evaluable
            self._evaluable[node] = known
        return known

    def entry_key(self, criterion: Criterion, status: str, leaf: Leaf | None) -> tuple | None:
        """(criterion, verdict, shown value and its type, implication, deciding fields): everything the criterion's entry says
        that depends on the patient; None when the shown value is a list (not hashable)."""
        value = self.patient_value_of(criterion, leaf)
        implied = leaf.implied_by if leaf is not None and leaf.condition is not None else None
        # an unknown criterion names the fields that would decide it, which for a score (Fong) are this
        # patient's missing components: part of the key, or a patient would get another's fields
        deciding = tuple(self.deciding_fields_of(criterion.characteristic)) \
            if status == UNKNOWN and criterion.evaluable and criterion.characteristic else None
        # the value's type too: 42 and 42.0 (and 1 and True) are equal keys, but the answer shows them apart
        key = (criterion.iri, status, type(value), value, implied, deciding)
        try:
            hash(key)
        except TypeError:  # a list of values
            return None
        return key

    def to_json(self, criterion: Criterion, status: str, leaf: Leaf | None) -> dict[str, Any]:
        key = self.entry_key(criterion, status, leaf)
        if key is not None:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= _MAX_SHARED_ENTRIES:
                    self._entries.clear()
                entry = self._entries[key] = self._build_json(criterion, status, leaf, key[3])
            return entry
        return self._build_json(criterion, status, leaf, self.patient_value_of(criterion, leaf))

    def _build_json(self, criterion: Criterion, status: str, leaf: Leaf | None, value: Any) -> dict[str, Any]:
        static = self._static.get(criterion.iri)
        if static is None:
            static = self._static[criterion.iri] = {
                "id": short(criterion.iri), "text": criterion.text, "kind": criterion.kind, "evaluable": criterion.evaluable,
                "field": self.field_of(criterion.characteristic) if criterion.characteristic else None,
                "sourceWording": criterion.quote, "source": criterion.source,
                **({"rule": criterion.rule()} if criterion.evaluable else {}),
            }
        entry: dict[str, Any] = {"id": static["id"], "text": static["text"], "kind": criterion.kind, "status": status}
        if criterion.kind == "exclusion":
            entry["excludes"] = None if status == UNKNOWN else status == NOT_MET
        entry.update(static)
        entry["patientValue"] = value
        if leaf is not None and leaf.implied_by and leaf.condition is not None:
            entry["impliedBy"] = leaf.implied_by
        if status == UNKNOWN and criterion.evaluable and criterion.characteristic:
            entry["missingFields"] = self.deciding_fields_of(criterion.characteristic)
        return entry


def shown_values(values: Iterable[Any]) -> Any:
    values = [plain(v) for v in values]
    if not values:
        return None
    return values[0] if len(values) == 1 else values
