"""Serialising a query result for the client, within the row and byte caps (in a worker, or for the proxy).

An answer over ``max_results`` rows or triples, or over ``max_answer_bytes`` bytes, is
refused (422), never truncated: no client mistakes a partial answer for the whole one.
Serialisation streams into writers that stop at the cap, so a worker never builds more
than the cap (5 000 rows of 64 KB strings were a 328 MB answer before the byte cap).

A reply is ``("ok", media, body)`` or ``("error", status, title, detail, rule)``.
"""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox

from crlm_kg import paths

from .formats import GRAPH_TYPES, RESULT_TYPES


class _OverCap(Exception):
    def __init__(self, what: str):
        self.what = what


class CappedWriter:
    """A file-like sink for pyoxigraph's serialisers that stops them past ``max_bytes`` bytes
    or past ``max_lines`` lines (rows of a TSV with its header line)."""

    def __init__(self, max_bytes: int, max_lines: int | None = None):
        self.max_bytes, self.max_lines = max_bytes, max_lines
        self.size = self.lines = 0
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        data = bytes(data)
        self.size += len(data)
        if self.size > self.max_bytes:
            raise _OverCap("bytes")
        if self.max_lines is not None:
            self.lines += data.count(b"\n")
            if self.lines > self.max_lines:
                raise _OverCap("rows")
        self.chunks.append(data)
        return len(data)

    def flush(self) -> None:
        pass

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


def too_large(job: dict, what: str) -> tuple:
    if what == "bytes":
        return ("error", 422, "Result too large",
                f"the answer is larger than {job['max_bytes']} bytes, the limit of this endpoint (CRLM_KG_MAX_ANSWER_BYTES); "
                "results are refused rather than truncated. Add a LIMIT, select fewer or shorter values, or narrow the query.",
                "max-answer-bytes")
    return ("error", 422, "Result too large",
            f"the query produced more than {job['max_results']} {what}, the limit of this endpoint "
            "(CRLM_KG_MAX_RESULTS); results are refused rather than truncated. "
            "Add a LIMIT (and OFFSET to page) or narrow the query.", "max-results")


def _not_acceptable(kind: str, offers) -> tuple:
    return ("error", 406, "Not acceptable", f"a {kind} result can be served as: {', '.join(offers)}", "media-type")


def render(result: Any, job: dict) -> tuple:
    """Serialise a pyoxigraph query result (booleans, solutions, or any iterable of triples) for ``job``."""
    try:
        if isinstance(result, ox.QueryBoolean):
            return _boolean(result, job)
        if isinstance(result, ox.QuerySolutions):
            return _solutions(result, job)
        return _triples(result, job)
    except _OverCap as over:
        return too_large(job, "bytes" if over.what == "bytes" else ("rows" if over.what == "rows" else "triples"))


def _boolean(result, job: dict) -> tuple:
    media = job["results_media"]
    if media is None:
        return _not_acceptable("boolean (ASK)", RESULT_TYPES)
    return ("ok", media, result.serialize(format=getattr(ox.QueryResultsFormat, RESULT_TYPES[media])))


def _solutions(result, job: dict) -> tuple:
    media = job["results_media"]
    if media is None:
        return _not_acceptable("SELECT", RESULT_TYPES)
    # TSV first: its lines count the rows, so the row cap stops the engine early
    tsv = CappedWriter(job["max_bytes"], max_lines=job["max_results"] + 1)
    result.serialize(tsv, format=ox.QueryResultsFormat.TSV)
    fmt_name = RESULT_TYPES[media]
    if fmt_name == "TSV":
        return ("ok", media, tsv.getvalue())
    reparsed = ox.parse_query_results(tsv.getvalue(), format=ox.QueryResultsFormat.TSV)
    del tsv
    answer = CappedWriter(job["max_bytes"])
    reparsed.serialize(answer, format=getattr(ox.QueryResultsFormat, fmt_name))
    return ("ok", media, answer.getvalue())


def _triples(result, job: dict) -> tuple:
    media = job["graph_media"]
    if media is None:
        return _not_acceptable("CONSTRUCT/DESCRIBE", GRAPH_TYPES)
    triples, size = [], 0
    for triple in result:
        triples.append(triple)
        if len(triples) > job["max_results"]:
            raise _OverCap("triples")
        size += len(str(triple))  # the N-Triples size: every serialisation is about as large or larger
        if size > job["max_bytes"]:
            raise _OverCap("bytes")
    fmt = getattr(ox.RdfFormat, GRAPH_TYPES[media])
    kwargs = {"prefixes": paths.PREFIXES} if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML) else {}
    answer = CappedWriter(job["max_bytes"])
    ox.serialize(triples, answer, format=fmt, **kwargs)
    return ("ok", media, answer.getvalue())
