"""Cohort screening (issue 17): which patients of a cohort match which trials, criterion by criterion.

As trial-matching systems (MatchMiner) do, a cohort is screened in bulk:

- ``cohort``: a cohort file (NDJSON or CSV of contract records, or FHIR bundles) into JSON records;
- ``engine``: validation of the whole cohort (``patients.cohort_check``), then every patient's
  facts in a few batched leaf queries, then the criteria trees of the evidence lookup;
- ``output``: the result as JSON or CSV.

A patient's verdicts are those ``POST /evidence`` gives for that patient alone (tests/test_screening.py).
"""

from .cohort import CohortError, read_cohort
from .engine import STATUSES, Screening, screen
from .output import to_csv, to_json

__all__ = ["CohortError", "STATUSES", "Screening", "read_cohort", "screen", "to_csv", "to_json"]
