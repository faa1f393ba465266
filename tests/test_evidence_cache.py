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
