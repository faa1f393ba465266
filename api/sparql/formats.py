"""The media types the endpoint produces and how a request's ``Accept`` picks one."""

from __future__ import annotations

from ..negotiation import negotiate
from .errors import Refusal
from .lexical import QueryShape

RESULT_TYPES: dict[str, str] = {  # media type -> pyoxigraph QueryResultsFormat name
    "application/sparql-results+json": "JSON",
    "application/sparql-results+xml": "XML",
    "text/csv": "CSV",
    "text/tab-separated-values": "TSV",
    "application/json": "JSON",  # what generic HTTP clients ask for
}
GRAPH_TYPES: dict[str, str] = {  # media type -> pyoxigraph RdfFormat name
    "text/turtle": "TURTLE",
    "application/n-triples": "N_TRIPLES",
    "application/rdf+xml": "RDF_XML",
    "application/ld+json": "JSON_LD",
}
HTML = "text/html"
HTML_TYPES = (HTML, "application/xhtml+xml")
SD_TYPES = list(GRAPH_TYPES) + list(HTML_TYPES)


def content_type(media: str) -> str:
    return f"{media}; charset=utf-8" if media.startswith("text/") else media


def choose(accept: str | None, shape: QueryShape) -> tuple[str | None, str | None]:
    """(results media, graph media) for this query; 406 when the query's form has no acceptable type.
    Both are chosen when the form is not recognisable lexically: the engine's answer decides."""
    results_media = negotiate(accept, list(RESULT_TYPES))
    graph_media = negotiate(accept, list(GRAPH_TYPES))
    if shape.form in ("SELECT", "ASK") and results_media is None:
        raise Refusal(406, "Not acceptable", f"a {shape.form} result can be served as: {', '.join(RESULT_TYPES)}", "accept", "media-type")
    if shape.form in ("CONSTRUCT", "DESCRIBE") and graph_media is None:
        raise Refusal(406, "Not acceptable", f"a {shape.form} result can be served as: {', '.join(GRAPH_TYPES)}", "accept", "media-type")
    return results_media, graph_media
