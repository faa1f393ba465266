"""The evidence lookup shares tree results and criterion entries across patients (for speed): an answer
never depends on which patients were evaluated before it."""

from __future__ import annotations

import pytest

from evidence_helpers import EXAMPLE_FILES, record

from crlm_kg.evidence import EvidenceLookup


@pytest.mark.slow
def test_answers_do_not_depend_on_the_patients_evaluated_before(repo_store):
    warm = EvidenceLookup(repo_store)
    names = [p.name for p in EXAMPLE_FILES]
    for name in names + list(reversed(names)):  # every patient after every other, both ways
        warm.evaluate(record(name))
    for name in names:
        fresh = EvidenceLookup(repo_store).evaluate(record(name))
        assert warm.evaluate(record(name)) == fresh, name


def _criterion(answer, trial_id, criterion_id):
    trial = next(t for t in answer["trials"] if t["id"] == trial_id)
    return next(c for c in trial["criteria"] if c["id"] == criterion_id)


def test_an_undecided_fong_criterion_names_this_patients_missing_fields(repo_store):
    """Two patients with the same Fong range (2-3) but different missing components: the criterion the range
    leaves unknown must name each patient's own missing field, whoever was evaluated first (the shared entry
    cache once keyed only on the shown range and gave the second patient the first one's fields)."""
    base = {"liverMetastases": {"count": 3, "timing": "metachronous"}, "ceaNgPerMl": 10}
    lacks_diameter = {**base, "id": "a", "primaryTumor": {"nodePositive": True},
                      "liverMetastases": {**base["liverMetastases"], "diseaseFreeIntervalMonths": 24}}
    lacks_nodes = {**base, "id": "b", "liverMetastases": {**base["liverMetastases"], "diseaseFreeIntervalMonths": 6,
                                                          "largestDiameterMm": 30}}
    shared = EvidenceLookup(repo_store)
    first, second = (shared.evaluate(record(r)) for r in (lacks_diameter, lacks_nodes))
    for answer, alone in ((first, EvidenceLookup(repo_store).evaluate(record(lacks_diameter))),
                          (second, EvidenceLookup(repo_store).evaluate(record(lacks_nodes)))):
        assert answer["derived"]["fongScore"]["min"] == 2 and answer["derived"]["fongScore"]["max"] == 3
        crit = _criterion(answer, "CHARISMA", "CHARISMA_CritFongMin")
        assert crit["status"] == "unknown" and crit["patientValue"] == "2-3"
        assert crit["missingFields"] == answer["derived"]["fongScore"]["missing"]
        assert answer == alone
    assert _criterion(first, "CHARISMA", "CHARISMA_CritFongMin")["missingFields"] != \
        _criterion(second, "CHARISMA", "CHARISMA_CritFongMin")["missingFields"]


def test_a_value_is_shown_as_this_patient_gave_it_after_an_equal_value_of_another_type(repo_store):
    """42 and 42.0 are equal (and hash alike) in Python: a shared entry keyed on the value alone showed the
    first patient's 42 to the second patient, who gave 42.0."""
    shared = EvidenceLookup(repo_store)
    answers = [shared.evaluate(record({"id": f"p{i}", "liverMetastases": {"count": 2, "timing": "metachronous",
                                                                           "largestDiameterMm": value}}))
               for i, value in enumerate((42, 42.0))]
    for answer, expected in zip(answers, (int, float)):
        shown = [c["patientValue"] for t in answer["trials"] for c in t["criteria"] if c["field"] == "liverMetastases.largestDiameterMm"]
        shown += [c["patientValue"] for s in answer["recommendations"] for c in s["population"]
                  if c["field"] == "liverMetastases.largestDiameterMm"]
        assert shown and all(type(v) is expected and v == 42 for v in shown), shown


def _minimal_pairs(items):
    """Each record, and copies of it that differ in one field: one field left out, or the other timing (pairs that
    differ in what the record says about one characteristic, where a signature that missed an input collides)."""
    import copy

    out = []
    for item in items:
        out.append(item)
        for section, value in item.items():
            if section == "id":
                continue
            for key in (value if isinstance(value, dict) else {None: value}):
                variant = copy.deepcopy(item)
                if key is None:
                    del variant[section]
                else:
                    del variant[section][key]
                    if not variant[section]:
                        del variant[section]
                variant["id"] = f"{item['id']}-no-{section}-{key}"
                out.append(variant)
        liver = item.get("liverMetastases", {})
        if "timing" in liver:
            variant = copy.deepcopy(item)
            variant["id"] = f"{item['id']}-other-timing"
            variant["liverMetastases"]["timing"] = "metachronous" if liver["timing"] == "synchronous" else "synchronous"
            variant["liverMetastases"].pop("diseaseFreeIntervalMonths", None)
            out.append(variant)
    return out


@pytest.mark.slow
def test_generated_patients_get_the_same_answers_whatever_the_order(repo_store):
    """Tree results are kept per tree and per signature of the characteristics its criteria read (the facts,
    implications, record value and Fong range): a signature that left out something a verdict depends on
    would hand one patient another's result. Two lookups evaluate the same varied cohort, with minimal pairs,
    in opposite orders, so each patient meets the results kept for a different set of earlier patients; a few
    are checked against a lookup that has seen nobody."""
    from crlm_kg import patients
    from crlm_kg.screening.synthetic import synthetic_cohort

    items = _minimal_pairs(synthetic_cohort(12, seed=23, fill=0.8)) + synthetic_cohort(60, seed=29, fill=0.25, prefix="sparse")
    report, records = patients.parse_and_validate(items, limits=patients.Limits(records=len(items), violations=10 ** 6))
    records = [r for r in records if not any(v.index == r.index for v in report.violations)]
    assert len(records) > 200
    forward, backward = EvidenceLookup(repo_store), EvidenceLookup(repo_store)
    ahead = [forward.evaluate(r) for r in records]
    behind = [backward.evaluate(r) for r in reversed(records)][::-1]
    differing = [a["patient"] for a, b in zip(ahead, behind) if a != b]
    assert not differing
    fresh = EvidenceLookup(repo_store)
    for i in (0, 1, len(records) // 2, len(records) - 1):
        assert fresh.evaluate(records[i]) == ahead[i]
        fresh = EvidenceLookup(repo_store)


@pytest.mark.slow  # over 1.5 s: make test runs it, make test-fast does not
def test_a_tree_on_one_characteristic_tells_an_implied_value_from_a_missing_one(repo_store):
    """A trial whose only criteria read the disease-free interval and the extrahepatic sites: the record gives
    neither, but synchronous timing implies DFI < 12 months and "no extrahepatic disease" implies no site. The
    tree's kept result must not pass from a patient whose record implies them to one whose record does not."""
    from evidence_helpers import by_id, store_with

    extra = """
    crlmd:ImplTrial a crlm:Phase2RandomisedTrial ; rdfs:label "Implication trial" ; crlm:hasEligibility crlmd:ImplTrial_E .
    crlmd:ImplTrial_E a crlm:AllOfGroup ; crlm:hasMember crlmd:ImplTrial_DFI .
    crlmd:ImplTrial_DFI a crlm:InclusionCriterion ; crlm:characteristic crlm:diseaseFreeIntervalMonths ;
        crlm:comparison crlm:LessThan ; crlm:thresholdValue 12 .
    crlmd:ImplTrial2 a crlm:Phase2RandomisedTrial ; rdfs:label "Site trial" ; crlm:hasEligibility crlmd:ImplTrial2_E .
    crlmd:ImplTrial2_E a crlm:AllOfGroup ; crlm:hasMember crlmd:ImplTrial2_NoLung .
    crlmd:ImplTrial2_NoLung a crlm:ExclusionCriterion ; crlm:characteristic crlm:extrahepaticSite ;
        crlm:comparison crlm:Equal ; crlm:requiredValue crlm:LungSite .
    crlmd:ImplTrial3 a crlm:Phase2RandomisedTrial ; rdfs:label "EHD trial" ; crlm:hasEligibility crlmd:ImplTrial3_E .
    crlmd:ImplTrial3_E a crlm:AllOfGroup ; crlm:hasMember crlmd:ImplTrial3_EHD .
    crlmd:ImplTrial3_EHD a crlm:InclusionCriterion ; crlm:characteristic crlm:extrahepaticDisease ;
        crlm:comparison crlm:Equal ; crlm:thresholdValue true .
    """
    store = store_with(extra, repo_store)
    # a site implies extrahepatic disease, and the criterion says so (impliedBy); stated, it does not
    site, stated = (record({"id": "site", "liverMetastases": {"count": 1, "timing": "metachronous"}, "extrahepaticSites": ["lung"]}),
                    record({"id": "stated", "liverMetastases": {"count": 1, "timing": "metachronous"}, "extrahepaticDisease": True}))
    for order in ((site, stated), (stated, site)):
        lookup = EvidenceLookup(store)
        answers = {r.id: lookup.evaluate(r) for r in order}
        assert "impliedBy" in by_id(by_id(answers["site"]["trials"], "ImplTrial3")["criteria"], "ImplTrial3_EHD")
        assert "impliedBy" not in by_id(by_id(answers["stated"]["trials"], "ImplTrial3")["criteria"], "ImplTrial3_EHD")
    implied = record({"id": "implied", "liverMetastases": {"count": 2, "timing": "synchronous"}, "extrahepaticDisease": False})
    silent = record({"id": "silent", "liverMetastases": {"count": 2, "timing": "metachronous"}})
    for order in ((implied, silent), (silent, implied)):
        lookup = EvidenceLookup(store)
        answers = {r.id: lookup.evaluate(r) for r in order}
        assert by_id(answers["implied"]["trials"], "ImplTrial")["status"] == "eligible"
        assert by_id(answers["silent"]["trials"], "ImplTrial")["status"] == "undetermined"
        assert by_id(answers["implied"]["trials"], "ImplTrial2")["status"] == "eligible"
        assert by_id(answers["silent"]["trials"], "ImplTrial2")["status"] == "undetermined"


@pytest.mark.slow  # over 1.5 s: make test runs it, make test-fast does not
def test_forgetting_the_signature_table_never_gives_another_patients_result(repo_store, monkeypatch):
    """The tree-result keys number the patients' signatures; the table is bounded. With room for one signature it
    is forgotten at almost every tree, and every answer must still be the patient's own."""
    from crlm_kg.evidence import criteria

    names = [p.name for p in EXAMPLE_FILES[:6]]
    fresh = {name: EvidenceLookup(repo_store).evaluate(record(name)) for name in names}
    monkeypatch.setattr(criteria, "_MAX_SIGNATURE_IDS", 1)
    shared = EvidenceLookup(repo_store)
    for name in names + list(reversed(names)):
        assert shared.evaluate(record(name)) == fresh[name], name


def _trial_evaluator(lookup, patient):
    prepared = lookup.prepare(record(patient))
    evaluator, _ = lookup.evaluator(prepared, lookup._leaves(prepared.query_facts, prepared.known))
    return evaluator


def test_trees_reading_the_same_characteristics_are_kept_as_one_group_per_signature(repo_store):
    """``evaluate_many`` keeps a group's results per signature of the characteristics its trees read: for every
    patient, after any other, each tree's result is the one a fresh evaluator gives that tree alone."""
    shared = EvidenceLookup(repo_store)
    items = [(tuple(holder["roots"]), None) for holder in shared.structure.trials]
    names = [p.name for p in EXAMPLE_FILES[:4]]
    for name in names + list(reversed(names)):
        grouped, _ = _trial_evaluator(shared, name).evaluate_many(items, lambda i, tree: tree)
        alone = _trial_evaluator(EvidenceLookup(repo_store), name)
        assert grouped == [alone.evaluate(roots) for roots, _ in items], name
    groups = _trial_evaluator(shared, names[0])._groups_of(items)
    assert sorted(i for _, indexes, _ in groups for i in indexes) == list(range(len(items)))  # each tree in one group
    assert 1 < len(groups) < len(items)  # trials share characteristic sets, and not all read the same ones
