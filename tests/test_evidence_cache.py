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
