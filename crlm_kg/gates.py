"""The result of one quality gate, shared by every module that runs gates.

It sits at the bottom of the layers (it imports nothing of the project) so that
the ontology, curation and patient modules can each report gates and
``crlm_kg.checks`` can collect them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GateResult:
    """One gate's verdict: ``ok``, a one-line summary and the problems found.

    ``skipped`` marks a gate that could not run here (a tool or the source documents
    missing); it is not ``ok``, and strict runs fail on it."""

    name: str
    ok: bool
    summary: str
    problems: list[str] = field(default_factory=list)
    skipped: bool = False
