"""SPARQL 1.1 Protocol request parsing (section 2.1, the query operation): the query and its dataset.

``GET`` with ``query=…``; ``POST`` form-encoded (``query=…``) or ``application/sparql-query``
(the UTF-8 body); ``default-graph-uri``/``named-graph-uri`` (each may repeat) in the URL or
the form. Update requests in any spelling are refused here, before anything runs.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

import pyoxigraph as ox
from fastapi import Request

from ..problems import Problem, read_body
from .errors import Refusal
from .lexical import READ_ONLY, UPDATE_REFUSED


@dataclass
class ProtocolRequest:
    query: str
    default_graphs: list[str] | None
    named_graphs: list[str] | None


PROTOCOL_PARAMS = ("query", "update", "default-graph-uri", "named-graph-uri", "using-graph-uri", "using-named-graph-uri")
ACCEPT_POST = {"Accept-Post": "application/x-www-form-urlencoded, application/sparql-query"}


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """A ``Content-Type`` as (lower-cased type, parameters)."""
    if not header:
        return "", {}
    fields = header.split(";")
    params = {}
    for field in fields[1:]:
        name, _, value = field.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return fields[0].strip().lower(), params


def _check_charset(params: dict[str, str]) -> None:
    charset = params.get("charset")
    if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8", "us-ascii"):
        raise Refusal(415, "Unsupported charset", f"the request body must be UTF-8, not {charset}", "charset", "utf-8")


def _decode_form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("ascii")
        return urllib.parse.parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "Malformed form body", "the form-encoded body is not percent-encoded UTF-8", "body", "utf-8") from None


async def _read_body(request: Request, limit: int) -> bytes:
    try:
        return await read_body(request, limit)
    except Problem as exc:
        raise Refusal(exc.status, exc.title, f"{exc.detail} (CRLM_KG_MAX_BODY_BYTES)", "body", "max-size") from None
def _pairs_to_request(pairs: list[tuple[str, str]]) -> ProtocolRequest:
    names = [name for name, _ in pairs]
    if "update" in names or "using-graph-uri" in names or "using-named-graph-uri" in names:
        raise Refusal(400, UPDATE_REFUSED, READ_ONLY, "update", "read-only")
    queries = [value for name, value in pairs if name == "query"]
    if not queries:
        raise Refusal(400, "Missing query", "give the query in a 'query' parameter (SPARQL 1.1 Protocol)", "query", "required")
    if len(queries) > 1:
        raise Refusal(400, "More than one query", f"the request has {len(queries)} 'query' parameters; the protocol allows exactly one", "query", "exactly-one")
    return _with_dataset(queries[0], pairs)


def _with_dataset(query: str, pairs: list[tuple[str, str]]) -> ProtocolRequest:
    defaults = [value for name, value in pairs if name == "default-graph-uri"]
    named = [value for name, value in pairs if name == "named-graph-uri"]
    for field, values in (("default-graph-uri", defaults), ("named-graph-uri", named)):
        for value in values:
            try:
                ox.NamedNode(value)
            except ValueError:
                raise Refusal(400, "Invalid graph IRI", f"{field}={value!r} is not an absolute IRI", field, "iri") from None
            if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
                raise Refusal(400, "Invalid graph IRI", f"{field}={value!r} is not an absolute IRI", field, "iri")
    if defaults or named:
        return ProtocolRequest(query, defaults, named)
    return ProtocolRequest(query, None, None)



async def parse_protocol_request(request: Request, max_body_bytes: int) -> ProtocolRequest | None:
    """The query and dataset of a protocol request; ``None`` for a bare ``GET /sparql``."""
    url_pairs = urllib.parse.parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "GET":
        if len(request.url.query) > max_body_bytes:
            raise Refusal(414, "Query string too long", f"this endpoint accepts at most {max_body_bytes} bytes; POST the query instead")
        if not any(name in PROTOCOL_PARAMS for name, _ in url_pairs):
            return None
        return _pairs_to_request(url_pairs)
    body = await _read_body(request, max_body_bytes)
    media, params = media_type(request.headers.get("content-type"))
    if media == "application/x-www-form-urlencoded":
        _check_charset(params)
        return _pairs_to_request(url_pairs + _decode_form(body))
    if media == "application/sparql-query":
        _check_charset(params)
        names = [name for name, _ in url_pairs]
        if "update" in names:
            raise Refusal(400, UPDATE_REFUSED, READ_ONLY, "update", "read-only")
        if "query" in names:
            raise Refusal(400, "More than one query", "a query in the body and another in the URL", "query", "exactly-one")
        try:
            query = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refusal(415, "Unsupported charset", "the application/sparql-query body must be UTF-8", "body", "utf-8") from None
        if query.startswith("\ufeff"):
            query = query[1:]
        return _with_dataset(query, url_pairs)
    if media == "application/sparql-update":
        raise Refusal(415, UPDATE_REFUSED, READ_ONLY + "; application/sparql-update bodies are not accepted", "content-type", "read-only",
                  headers=ACCEPT_POST)
    shown = media or "no Content-Type"
    raise Refusal(415, "Unsupported media type",
                  f"{shown}: POST the query as application/x-www-form-urlencoded (query=…) or as an application/sparql-query body",
                  "content-type", "media-type", headers=ACCEPT_POST)

