"""Views and filters of an evidence answer, shared by the API and the CLI (pure functions)."""

from __future__ import annotations

from typing import Any, Iterable

VIEWS = ("summary", "full")
TRIAL_STATUSES = ("eligible", "undetermined", "ineligible")
SECTIONS = ("summary", "derived", "trials", "recommendations", "cautions")


class ViewError(ValueError):
    """An unknown view, trial status or section (the API answers 422, the CLI exits 1)."""


def _checked(values: Iterable[str] | None, allowed: tuple[str, ...], what: str) -> set[str] | None:
    if values is None:
        return None
    if isinstance(values, str):  # "eligible,undetermined" is one value, not a sequence of letters
        values = [values]
    items = {v.strip() for value in values for v in str(value).split(",") if v.strip()}
    unknown = sorted(items - set(allowed))
    if unknown:
        raise ViewError(f"unknown {what} {unknown[0]!r}; allowed: {', '.join(allowed)}")
    return items


def apply_view(answer: dict[str, Any], view: str = "full", status: Iterable[str] | None = None,
               include: Iterable[str] | None = None) -> dict[str, Any]:
    """``summary``: patient, derived and summary only. ``full``: everything, or the ``include``d sections, with
    trials restricted to the given ``status`` values (comma-separated strings or lists)."""
    if view not in VIEWS:
        raise ViewError(f"unknown view {view!r}; allowed: {', '.join(VIEWS)}")
    statuses = _checked(status, TRIAL_STATUSES, "trial status")
    sections = _checked(include, SECTIONS, "section")
    if view == "summary":
        return {"patient": answer["patient"], "summary": answer["summary"], "derived": answer["derived"]}
    result: dict[str, Any] = {"patient": answer["patient"]}
    for key in SECTIONS:
        if key in answer and (sections is None or key in sections):
            result[key] = answer[key]
    if statuses is not None and "trials" in result:
        result["trials"] = [t for t in result["trials"] if t["status"] in statuses]
    return result
