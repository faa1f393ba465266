"""The evidence that applies to one patient (issue 10).

Modules, one concern each:

- ``operators``: the comparison operators (one table; SPARQL and Python comparisons come from it);
- ``sparql``: every SPARQL text;
- ``criteria``: the criterion model and three-valued evaluation of criteria trees;
- ``derived``: implied facts, sidedness, scores, FLR adequacy, defined patient classes;
- ``structure``: the graph's structure, read once;
- ``population``: applicability of statements, cautions, the safety rule;
- ``trials``: trial entries (design, recruitment, outcomes, headline);
- ``summary``: the summary and the rankings;
- ``views``: the summary / full views and their filters;
- ``lookup``: the orchestration (``EvidenceLookup.evaluate``).
"""

from .criteria import MET, NOT_MET, UNKNOWN, Criterion, combine
from .lookup import EvidenceLookup
from .views import SECTIONS, TRIAL_STATUSES, VIEWS, ViewError, apply_view

__all__ = ["EvidenceLookup", "apply_view", "ViewError", "VIEWS", "SECTIONS", "TRIAL_STATUSES", "Criterion", "combine",
           "MET", "NOT_MET", "UNKNOWN"]
