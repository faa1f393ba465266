"""JSON-LD contexts: only the project's own, from the local file; nothing is ever fetched or read.

A JSON-LD processor loads every context a document names — at the top, in nested lists
(``{"@context": [["http://host/x"]]}``), through ``@import``, in term definitions (scoped
contexts) — and a ``file:`` IRI is a local read. A patient document is the client's, so:

1. ``local_contexts`` walks the parsed JSON *before* any JSON-LD processing and refuses the
   document if any ``@context`` or ``@import`` anywhere names anything but ``CONTEXT_IRI``;
   the project's IRI is replaced by the context itself (read from
   ``validation/patient-context.jsonld``), so the processor has nothing left to load.
2. ``install_document_loader`` replaces the function rdflib's JSON-LD context loader fetches
   with (``source_to_json``) by ``load_context``, which answers the project's IRI from the
   local file and refuses everything else without touching the network or the disk: a second
   wall, should the walk ever miss a position.

The refusal is one fixed text whatever was named, so it cannot tell a client whether a path
or a host exists.
"""

from __future__ import annotations

from typing import Any

from .contract import CONTEXT_IRI, contract

REFUSAL = (f"JSON-LD contexts are never loaded from a document: name the project's context as {CONTEXT_IRI} "
           "or give it inline; no other context (remote, file:, @import, nested or term-scoped) is accepted")


class ForeignContext(ValueError):
    """A document names a JSON-LD context other than the project's own."""

    def __init__(self) -> None:
        super().__init__(REFUSAL)


def local_contexts(doc: Any) -> Any:
    """``doc`` with every reference to the project's context replaced by the context itself.

    Raises ``ForeignContext`` when any ``@context`` (at any depth, in any list nesting, in a
    term definition) names another context, or any ``@import`` appears. Recursive: the caller
    has bounded the nesting depth of ``doc`` already."""
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if key == "@import":
                raise ForeignContext()
            out[key] = _context_value(value) if key == "@context" else local_contexts(value)
        return out
    if isinstance(doc, list):
        return [local_contexts(item) for item in doc]
    return doc


def _context_value(value: Any) -> Any:
    """A ``@context`` value: a reference (string), an inline context (object), null, or a list of those."""
    if value is None:
        return None
    if isinstance(value, str):
        if value != CONTEXT_IRI:
            raise ForeignContext()
        return contract().context
    if isinstance(value, list):
        return [_context_value(item) for item in value]
    if isinstance(value, dict):
        # an inline context: its term definitions may carry scoped contexts and @import
        return local_contexts(value)
    raise ForeignContext()  # a number or boolean: not a context, and not worth explaining apart


def load_context(source: Any, *args: Any, **kwargs: Any) -> tuple[dict, None]:
    """The document loader rdflib's JSON-LD processor calls for a context it would fetch."""
    if isinstance(source, str) and source == CONTEXT_IRI:
        return {"@context": contract().context}, None
    raise ForeignContext()


def install_document_loader() -> None:
    """Route every context load of rdflib's JSON-LD processor through ``load_context`` (idempotent)."""
    from rdflib.plugins.shared.jsonld import context as rdflib_context

    rdflib_context.source_to_json = load_context
