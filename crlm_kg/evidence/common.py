"""Small helpers shared by the evidence modules."""

from __future__ import annotations

from typing import Any

from .. import paths
from ..store import IRI


def short(iri: Any) -> str:
    """The local name of a crlm: or crlmd: IRI (other IRIs unchanged)."""
    text = str(iri)
    for prefix in (paths.CRLMD, paths.CRLM):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def plain(value: Any) -> Any:
    return short(value) if isinstance(value, IRI) else value


def first(current: Any, candidate: Any) -> Any:
    """The smallest of the values seen, so a node with several quotes or labels reads the same on every engine."""
    if candidate is None:
        return current
    return candidate if current is None or str(candidate) < str(current) else current
