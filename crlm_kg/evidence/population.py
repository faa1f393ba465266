"""Applicability of statements and recommendations to a patient, their cautions, and the safety rule.

Applicability comes from the statement's population: its ``crlm:hasEligibility``
tree plus its ``crlm:studySetting`` (one more criterion: the patient's
resectability is one of the settings). ``applies`` when every criterion is met
(a statement without a population is general and applies), ``does-not-apply``
with ``notMet``, ``unknown`` with ``missingFields``.

Cautions (vocab: crlm:cautionAgainst / crlm:restrictsTreatment): a patient is
excluded from a treatment class and all its subclasses when a statement that
*applies* cautions against it, or when a statement that *does not apply*
reserves it for its population. Safety rule: a statement of benefit
(``crlm:direction crlm:Benefit``) about an excluded treatment never applies;
it is ``does-not-apply`` with ``excludedBy``. A caution whose statement's
applicability is unknown is a *possible* caution (``certainty: possible``)
that names the fields deciding it; a benefit statement that would otherwise
apply to a possibly excluded treatment becomes ``unknown`` with those fields.
Statements that do not apply stay in the full answer, so a caveat (NCCN
footnote ff) is never lost; the summary lists only those that apply.
"""

from __future__ import annotations

from typing import Any

from . import summary
from .criteria import MET, NOT_MET, UNKNOWN, TreeEvaluator, TreeResult
from .common import short

APPLIES, DOES_NOT_APPLY = "applies", "does-not-apply"
_APPLICABILITY = {MET: APPLIES, NOT_MET: DOES_NOT_APPLY, UNKNOWN: UNKNOWN}
BENEFIT = "Benefit"
SETTING_FIELD = "liverMetastases.resectability"
_SETTING_NAMES = {"Resectable": "resectable", "BorderlineResectable": "borderline resectable", "Unresectable": "unresectable"}
# bound on what is kept per statement entry for reuse (a caution, an entry a caution changes)
_MAX_SHARED_PER_ENTRY = 50_000
# the keys of a statement's entry in the answer (internal bookkeeping such as the IRI stays out)
_PUBLIC = ("id", "kind", "label", "text", "settings", "direction", "level", "gradingSystem", "issuedBy", "source", "quote",
           "supportedBy", "conflictsWith")


def setting_criterion(statement: dict[str, Any], resectability: Any) -> dict[str, Any]:
    """The statement's disease setting as a population criterion, in the shape of a trial's criteria."""
    settings = statement["settings"]
    patient = short(resectability) if resectability is not None else None
    status = UNKNOWN if patient is None else (MET if patient in settings else NOT_MET)
    entry = {
        "id": f"{statement['id']}_Setting",
        "text": "disease setting: " + " or ".join(_SETTING_NAMES.get(s, s) for s in settings),
        "kind": "inclusion", "status": status, "evaluable": True, "field": SETTING_FIELD, "patientValue": patient,
        "sourceWording": statement.get("quote"), "source": statement.get("source"),
        "rule": "resectability is " + " or ".join(settings),
    }
    if status == UNKNOWN:
        entry["missingFields"] = [SETTING_FIELD]
    return entry


def _static(statement: dict[str, Any]) -> dict[str, Any]:
    entry = {k: statement[k] for k in _PUBLIC}
    entry["treatments"] = [short(t) for t in statement["aboutTreatment"]]
    for key in ("cautionAgainst", "restrictsTreatment"):
        if statement[key]:
            entry[key] = [short(t) for t in statement[key]]
    entry["conflict"] = bool(statement["conflictsWith"])
    return entry


def _setting_cached(statement: dict[str, Any], resectability: Any, cache: dict[Any, Any]) -> dict[str, Any]:
    """The setting criterion depends only on the statement and the patient's resectability: built once per pair
    (entries of answers are shared between answers, so callers treat answers as read-only)."""
    key = (statement["iri"], str(resectability))
    entry = cache.get(key)
    if entry is None:
        entry = cache[key] = setting_criterion(statement, resectability)
    return entry


def _setting_only(statement: dict[str, Any], resectability: Any, cache: dict[Any, Any]) -> TreeResult:
    """The population of a statement whose only criterion is its setting (one result per setting verdict)."""
    key = ("\0setting-only", statement["iri"], str(resectability))
    tree = cache.get(key)
    if tree is None:
        setting = _setting_cached(statement, resectability, cache)
        tree = cache[key] = TreeResult(setting["status"], [setting], setting.get("missingFields", []))
    return tree


def _base_ranked(statement: dict[str, Any], tree: TreeResult | None, cache: dict[Any, Any]) -> tuple[dict[str, Any], tuple]:
    """The statement's entry for a population result, and its rank (``summary.statement_order``): both depend only
    on the statement and the result, so they are built once per pair and shared by the answers (read-only)."""
    held = cache if tree is None else tree.derived
    key = ("\0entry", statement["iri"])
    known = held.get(key)
    if known is None:
        entry = _base(statement, tree, cache)
        known = held[key] = (entry, summary.statement_order(entry))
    return known


def _base(statement: dict[str, Any], tree: TreeResult | None, cache: dict[Any, Any]) -> dict[str, Any]:
    static = cache.get(statement["iri"])
    if static is None:
        static = cache[statement["iri"]] = _static(statement)
    entry = dict(static)
    if tree is None:
        entry.update(applicability=APPLIES, population=[], specificity=0)
        return entry
    entry["applicability"] = _APPLICABILITY[tree.status]
    entry["population"] = tree.criteria
    entry["specificity"] = tree.met_count
    if tree.status == NOT_MET:
        entry["notMet"] = [{"id": c["id"], "text": c["text"], "field": c["field"]} for c in tree.criteria if c["status"] == NOT_MET]
    elif tree.status == UNKNOWN:
        entry["missingFields"] = tree.missing
        if not tree.missing:
            entry["note"] = "decided by criteria kept as wording only: needs screening"
    return entry


def _treatment_refs(classes: list[str], labels: dict[str, str]) -> list[dict[str, Any]]:
    return [{"id": short(t), "label": labels.get(t)} for t in classes]


def _caution(statement: dict[str, Any], entry: dict[str, Any], prop: str, certainty: str, labels: dict[str, str]) -> dict[str, Any]:
    treatments = statement[prop]
    names = ", ".join(labels.get(t) or short(t) for t in treatments)
    if prop == "cautionAgainst":
        what = {"Harm": "harm", "NoDifference": "no benefit"}.get(statement.get("directionClass") or "", "a caution")
        if statement["kind"] == "recommendation" and what == "a caution":
            what = "a recommendation against"
        reason = f"{statement.get('source') or 'the source'} reports {what} for {names} in a population this patient belongs to"
    else:
        failed = "; ".join(c["text"] for c in entry.get("notMet", []))
        reason = f"{statement.get('source') or 'the source'} reserves {names} for a population this patient is outside" + (f" ({failed})" if failed else "")
    caution = {
        "id": statement["id"], "label": statement.get("label"), "text": statement.get("text"), "kind": prop,
        "certainty": certainty, "reason": reason, "treatments": _treatment_refs(treatments, labels),
        "source": statement.get("source"), "quote": statement.get("quote"), "locator": statement.get("locator"),
    }
    if certainty == "possible":
        caution["missingFields"] = entry.get("missingFields", [])
        caution["reason"] = ("possible caution, decided by " + ", ".join(caution["missingFields"] or ["criteria that need screening"])
                             + ": " + reason)
    elif prop == "restrictsTreatment":
        caution["notMet"] = entry.get("notMet", [])
    return caution


def _caution_shared(statement: dict[str, Any], entry: dict[str, Any], prop: str, certainty: str, labels: dict[str, str],
                    built: dict[tuple, tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """``_caution``, built once per statement entry (entries are shared by the patients whose population result
    is the same) and shared (read-only): a statement's caution depends only on its entry."""
    key = (id(entry), prop, certainty)
    known = built.get(key)
    if known is None or known[0] is not entry:  # the entry is kept with it, so its id is not reused meanwhile
        known = built[key] = (entry, _caution(statement, entry, prop, certainty, labels))
    return known[1]


def _changed(entry: dict[str, Any], changes: dict[str, Any], built: dict[tuple, tuple[dict[str, Any], dict[str, Any]]]
             ) -> dict[str, Any]:
    """``{**entry, **changes}``, built once per entry and changes and shared (read-only): the summary view's
    excluded or possibly excluded statement (without the per-patient lists of the cautions that exclude it)."""
    key = (id(entry), *((k, tuple(v) if isinstance(v, list) else v) for k, v in changes.items()))
    known = built.get(key)
    if known is None or known[0] is not entry:  # the entry is kept with it, so its id is not reused meanwhile
        known = built[key] = (entry, {**entry, **changes})
    return known[1]


def assess(statements: list[dict[str, Any]], holders: dict[str, dict[str, Any]], evaluator: TreeEvaluator, resectability: Any,
           subclasses_of, labels: dict[str, str], cache: dict[str, dict[str, Any]] | None = None, detailed: bool = True
           ) -> tuple[list[dict[str, Any]], list[tuple], list[dict[str, Any]], summary.Tally]:
    """(statement entries with applicability, in the graph's order; their ranks, ``summary.statement_order``;
    cautions; the entries' ``summary.Tally``, from the tallies kept per list of entries) for one patient. The
    summary alone needs only the first few of the ranked entries: no full sort.
    ``detailed=False`` (the summary): an excluded statement's entry does not list the cautions that exclude it.

    Entries are shared between answers (built once per statement and population result): an entry this
    function changes for one patient (a caution excludes its treatment) is copied first."""
    cache = cache if cache is not None else {}
    fixed_entries, fixed_ranks, fixed_tally, with_tree = _without_tree(statements, holders, resectability, cache)
    entries, ranks = fixed_entries.copy(), fixed_ranks.copy()
    items, indexes, tree_statements = with_tree
    values, group_tallies = evaluator.evaluate_many(
        items, lambda j, tree: _base_ranked(tree_statements[j], tree, cache),
        lambda group, built: summary.Tally.of([v[0] for v in built], [v[1] for v in built], [indexes[j] for j in group]))
    for i, (entry, rank) in zip(indexes, values):
        entries[i], ranks[i] = entry, rank
    replaced: dict[int, dict[str, Any]] = {}  # index -> the entry a caution replaced, as tallied

    cautioning, benefit = _roles(statements, cache)
    shared = cache.setdefault("\0per entry", {})  # cautions and changed entries, per entry (see _caution_shared)
    if len(shared) > _MAX_SHARED_PER_ENTRY:
        shared.clear()
    cautions: list[dict[str, Any]] = []
    excluded: dict[str, list[dict[str, Any]]] = {}  # treatment class -> the certain cautions covering it
    possible: dict[str, list[dict[str, Any]]] = {}
    for i, prop, trigger in cautioning:
        statement, entry = statements[i], entries[i]
        if entry["applicability"] == trigger:
            certainty, target = "certain", excluded
        elif entry["applicability"] == UNKNOWN:
            certainty, target = "possible", possible
        else:
            continue
        caution = _caution_shared(statement, entry, prop, certainty, labels, shared)
        cautions.append(caution)
        for treatment in statement[prop]:
            for cls in subclasses_of(treatment):
                target.setdefault(cls, []).append(caution)

    hits_of, maybe_of = _Hits(excluded), _Hits(possible)
    for about, group in benefit if excluded or possible else ():
        if about.isdisjoint(excluded) and about.isdisjoint(possible):
            continue  # no caution covers these treatments (what _Hits would find, found faster)
        for i in group:
            statement, entry = statements[i], entries[i]
            if hits_of.covers(statement, about):
                replaced.setdefault(i, entry)
                if detailed:
                    entries[i] = {**entry, "applicability": DOES_NOT_APPLY, "excludedBy": hits_of(statement, about)}
                else:
                    entries[i] = _changed(entry, {"applicability": DOES_NOT_APPLY}, shared)
                continue
            if entry["applicability"] == APPLIES and maybe_of.covers(statement, about):
                replaced.setdefault(i, entry)
                fields = maybe_of.missing_fields(statement, about)
                if detailed:
                    entries[i] = {**entry, "applicability": UNKNOWN, "possiblyExcludedBy": maybe_of(statement, about),
                                  "missingFields": fields}
                else:
                    entries[i] = _changed(entry, {"applicability": UNKNOWN, "missingFields": fields}, shared)
    tally = summary.Tally.merged([fixed_tally, *group_tallies])
    tally.without(replaced)
    for i in replaced:
        tally.add(i, entries[i], ranks[i])
    return entries, ranks, cautions, tally


def _without_tree(statements: list[dict[str, Any]], holders: dict[str, dict[str, Any]], resectability: Any,
                  cache: dict[Any, Any]) -> tuple[list[Any], list[Any], summary.Tally, tuple[list[Any], list[int], list[dict[str, Any]]]]:
    """The entries and ranks of the statements whose population is at most their setting (a function of the
    patient's resectability alone: listed once per resectability), with a gap (None) for each statement with a
    criteria tree; the tally of the entries there; and the statements with a tree: their trees ((roots, setting
    criterion or None), as ``TreeEvaluator.evaluate_many`` takes them), their indexes, the statements."""
    key = ("\0without-tree", id(statements), str(resectability))
    known = cache.get(key)
    if known is None or known[0] is not statements:
        entries: list[Any] = [None] * len(statements)
        ranks: list[Any] = [None] * len(statements)
        items, indexes, tree_statements = [], [], []
        for i, statement in enumerate(statements):
            holder = holders.get(statement["iri"])
            if holder:
                # its setting criterion joins its tree (a function of the resectability, like this list)
                extra = [_setting_cached(statement, resectability, cache)] if statement["settings"] else None
                items.append((tuple(holder["roots"]), extra))
                indexes.append(i)
                tree_statements.append(statement)
                continue
            tree = _setting_only(statement, resectability, cache) if statement["settings"] else None
            entries[i], ranks[i] = _base_ranked(statement, tree, cache)
        fixed = [i for i, entry in enumerate(entries) if entry is not None]
        tally = summary.Tally.of([entries[i] for i in fixed], [ranks[i] for i in fixed], fixed)
        known = cache[key] = (statements, entries, ranks, tally, (items, indexes, tree_statements))
    return known[1], known[2], known[3], known[4]


def _roles(statements: list[dict[str, Any]], cache: dict[Any, Any]
           ) -> tuple[list[tuple[int, str, str]], list[tuple[frozenset[str], list[int]]]]:
    """The statements that caution (index, property, the applicability that makes the caution certain) and the
    statements of benefit, grouped by their treatments (a caution covers a treatment set or not, whichever statement
    is about it): read once per list of statements (the graph's)."""
    key = ("\0roles", id(statements))
    known = cache.get(key)
    if known is None or known[0] is not statements:
        cautioning = [(i, prop, trigger) for i, s in enumerate(statements)
                      for prop, trigger in (("cautionAgainst", APPLIES), ("restrictsTreatment", DOES_NOT_APPLY)) if s[prop]]
        benefit_by_treatments: dict[frozenset[str], list[int]] = {}
        for i, s in enumerate(statements):
            if s.get("directionClass") == BENEFIT:
                benefit_by_treatments.setdefault(frozenset(s["aboutTreatment"]), []).append(i)
        benefit = list(benefit_by_treatments.items())
        known = cache[key] = (statements, cautioning, benefit)
    return known[1], known[2]


class _Hits:
    """The cautions in ``covering`` (treatment class -> cautions) that cover a statement's treatments, other than the
    statement itself, as ``excludedBy`` lists them (sorted by caution and treatment).

    Statements about the same treatments get the same list, built once per patient and shared (read-only): with many
    statements about one treatment and many cautions against it, building one list per statement grew with the
    square of the evidence (x100 the evidence, x10 000 the work)."""

    def __init__(self, covering: dict[str, list[dict[str, Any]]]):
        self._covering = covering
        self._ids = {treatment: {c["id"] for c in cautions} for treatment, cautions in covering.items()}
        self._lists: dict[frozenset[str], list[dict[str, Any]]] = {}
        self._fields: dict[tuple[frozenset[str], str | None], list[str]] = {}

    def covers(self, statement: dict[str, Any], about: frozenset[str]) -> bool:
        """Whether a caution other than the statement's own covers one of its treatments (its list is not empty)."""
        own = statement["id"]
        return any(len(ids) > 1 or own not in ids for ids in (self._ids.get(t) for t in about) if ids)

    def __call__(self, statement: dict[str, Any], about: frozenset[str]) -> list[dict[str, Any]]:
        shared = self._lists.get(about)
        if shared is None:
            shared = self._lists[about] = self._build(about)
        own = self._own(statement, about)
        return shared if own is None else [hit for hit in shared if hit["caution"] != own]

    def missing_fields(self, statement: dict[str, Any], about: frozenset[str]) -> list[str]:
        """The fields that would decide the covering cautions (all of the statement's list's, sorted)."""
        own = self._own(statement, about)
        key = (about, own)
        fields = self._fields.get(key)
        if fields is None:
            fields = self._fields[key] = sorted({f for t in about for c in self._covering.get(t, []) if c["id"] != own
                                                 for f in c.get("missingFields", [])})
        return fields

    def _own(self, statement: dict[str, Any], about: frozenset[str]) -> str | None:
        # the statement's own caution is left out (a statement restricting its own treatment is already decided by
        # its own population): only then does its list differ from its treatments' shared one
        own = statement["id"]
        return own if any(own in self._ids.get(t, ()) for t in about) else None

    def _build(self, about: frozenset[str]) -> list[dict[str, Any]]:
        hits: dict[tuple[str, str], dict[str, Any]] = {}
        for treatment in about:
            name = short(treatment)
            for caution in self._covering.get(treatment, []):
                hit = {"caution": caution["id"], "treatment": name, "source": caution["source"]}
                if caution["certainty"] == "possible":
                    hit["missingFields"] = caution.get("missingFields", [])
                hits[(caution["id"], treatment)] = hit
        return [hits[k] for k in sorted(hits)]
