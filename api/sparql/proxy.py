"""Forwarding a query to a remote SPARQL endpoint (``CRLM_KG_SPARQL_URL``) under the same limits.

The checks of the embedded endpoint run first (``lexical.py``); the remote answer is read
within the time limit and the byte cap, then parsed, counted and re-serialised here, so a
client sees the same formats and the same refusals whichever store answers. The request
waits on the event loop (an async HTTP client); parsing and rendering run in ``cpu``, a
small executor of the service's own.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from concurrent.futures import Executor

import httpx
import pyoxigraph as ox

from .errors import QueryTimeout
from .protocol import media_type
from .render import render, too_large

REMOTE_ACCEPT = "application/sparql-results+json, application/n-triples;q=0.9, text/turtle;q=0.8"


def _form(job: dict, graphs: tuple[str, ...]) -> bytes:
    data = [("query", job["query"])]
    if job["default_graphs"] is not None or job["named_graphs"] is not None:
        data += [("default-graph-uri", g) for g in job["default_graphs"] or []]
        data += [("named-graph-uri", g) for g in job["named_graphs"] or []]
    elif not job["has_dataset"]:
        # the repository's graphs, not the remote store's whole union (Virtuoso adds its system graphs)
        data += [("default-graph-uri", g) for g in graphs]
        data += [("named-graph-uri", g) for g in graphs if len(graphs) > 1]
    return urllib.parse.urlencode(data).encode("ascii")


def _text(body: bytes, limit: int) -> str:
    return body[:limit].decode("utf-8", "replace")


def read_answer(status: int, content_type: str | None, body: bytes, job: dict) -> tuple:
    """The remote endpoint's answer as a reply of this endpoint (see ``render.py``)."""
    if status == 400:
        return ("error", 400, "Malformed query", f"the remote store rejected the query: {_text(body, 1000)}", "syntax")
    if status in (413, 422):
        return ("error", status, "Remote store refused the query", _text(body, 1000), "query")
    if status in (503, 504):
        raise QueryTimeout()
    if status != 200:
        return ("error", 502, "Remote store error", f"the remote store answered {status}: {_text(body, 500)}", "remote")
    media, _ = media_type(content_type)
    try:
        if media in ("application/sparql-results+json", "application/json"):
            return render(ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON), job)
        if media in ("application/sparql-results+xml", "application/xml"):
            return render(ox.parse_query_results(body, format=ox.QueryResultsFormat.XML), job)
        fmt = ox.RdfFormat.from_media_type(media) if media else None
        if fmt is None:
            return ("error", 502, "Remote store error", f"unexpected answer type {media!r} from the remote store", "remote")
        return render((ox.Triple(t.subject, t.predicate, t.object) for t in ox.parse(body, format=fmt)), job)
    except SyntaxError as exc:
        return ("error", 502, "Remote store error", f"unreadable answer from the remote store: {exc}"[:500], "remote")


async def forward(endpoint: str, graphs: tuple[str, ...], job: dict, timeout: float, cpu: Executor) -> tuple:
    """Send ``job`` to ``endpoint`` and read its answer, all within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # the remote answer may be larger than ours (JSON vs. TSV): twice the cap, then ours applies
    remote_cap = 2 * job["max_bytes"]
    headers = {"Accept": REMOTE_ACCEPT, "Content-Type": "application/x-www-form-urlencoded"}
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(5.0, timeout))) as http:
            async with http.stream("POST", endpoint, content=_form(job, graphs), headers=headers) as response:
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():  # the time limit covers the whole transfer
                    chunks.append(chunk)
                    size += len(chunk)
                    if loop.time() > deadline:
                        raise QueryTimeout()
                    if size > remote_cap:
                        return too_large(job, "bytes")
                body = b"".join(chunks)
    except httpx.TimeoutException:
        raise QueryTimeout() from None
    except httpx.HTTPError as exc:
        return ("error", 502, "Remote store unreachable", str(exc)[:500], "remote")
    return await loop.run_in_executor(cpu, read_answer, response.status_code, response.headers.get("content-type"), body, job)
