"""``/sparql``: a read-only SPARQL 1.1 Protocol endpoint.

What a client can rely on (SPARQL 1.1 Protocol, section 2.1 "query operation"):

* ``GET /sparql?query=…``, ``POST`` with ``application/x-www-form-urlencoded``
  (``query=…`` in the body; ``default-graph-uri``/``named-graph-uri`` in the body
  or the URL) and ``POST`` with ``application/sparql-query`` (the query is the
  UTF-8 body; dataset parameters in the URL).
* ``default-graph-uri`` and ``named-graph-uri`` (each may repeat) replace the
  dataset: the default graph is the merge of the ``default-graph-uri`` graphs
  (empty if none is given) and the named graphs are exactly the
  ``named-graph-uri`` graphs (none if none is given); ``FROM``/``FROM NAMED`` in
  the query are then ignored, as the protocol requires. Without them a query's
  own ``FROM``/``FROM NAMED`` are honoured, and without those the default graph
  is the union of every graph (the ontology and the evidence graphs) and every
  named graph is available to ``GRAPH``.
* Relative IRIs in a query resolve against the endpoint URL.
* Answers: ``SELECT``/``ASK`` as ``application/sparql-results+json`` (default),
  ``application/sparql-results+xml``, ``text/csv`` or ``text/tab-separated-values``;
  ``CONSTRUCT``/``DESCRIBE`` as ``text/turtle`` (default), ``application/n-triples``,
  ``application/rdf+xml`` or ``application/ld+json``; chosen from ``Accept`` with
  q-values; ``406`` when nothing acceptable can be produced.
* Errors are JSON problem reports (``application/problem+json``):
  ``400`` no query, two queries, malformed query, an update, a ``SERVICE`` clause,
  a dataset IRI that is not an absolute IRI; ``405`` a method other than
  GET/POST; ``413`` a body over ``CRLM_KG_MAX_BODY_BYTES`` (default 1 MiB);
  ``414`` a GET query string over the same limit; ``415`` a POST body that is
  not form-encoded or ``application/sparql-query`` (including
  ``application/sparql-update``) or is not UTF-8; ``422`` a result over
  ``CRLM_KG_MAX_RESULTS`` rows or triples (default 10000; the result is
  **refused, never truncated**, so no client mistakes a partial answer for the
  whole one: add a ``LIMIT``); ``503`` a query that ran past
  ``CRLM_KG_QUERY_TIMEOUT`` seconds (default 5) or found every worker busy for
  that long.
* The endpoint is read-only in every spelling: an ``update`` parameter, an
  ``application/sparql-update`` body or an update operation in ``query`` is
  refused before anything runs, and queries run on copies of the dataset in
  worker processes that only ever call the query engine.
* ``SERVICE`` (federated query) is refused: Oxigraph would otherwise fetch the
  remote endpoint from the server (checked: it does).
* ``GET /sparql`` without a query answers a SPARQL 1.1 Service Description
  (Turtle by default, or N-Triples, RDF/XML, JSON-LD) or, for a browser
  (``Accept: text/html``), the YASGUI query editor served from
  ``/static/yasgui`` (installed from npm by ``scripts/bootstrap.sh``; a plain
  HTML form when it is missing). Nothing is loaded from a CDN.

Protection. Oxigraph cannot interrupt a running query, so user queries never
run in the server process: a small pool of worker processes (``spawn``
context, ``CRLM_KG_QUERY_WORKERS``, default 2-4) each load the dataset once
from ``Store.dump()``; a query that passes the time limit has
its worker killed (SIGKILL) and replaced while the other workers keep serving.
Workers also run under an address-space limit (``CRLM_KG_WORKER_MEMORY_MB``,
default 2048, 0 = none) so a query that explodes in memory kills its worker,
not the machine. With a ``RemoteStore`` the same checks run and the query is
forwarded to the remote endpoint with the same time limit; its answer is
parsed, counted and re-serialised here.
"""

from __future__ import annotations

import html
import json
import logging
import multiprocessing
import os
import queue
import re
import threading
import time
import urllib.parse
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox

from crlm_kg import paths

log = logging.getLogger("crlm_kg.api.sparql")

ENDPOINT_PATH = "/sparql"
YASGUI_PATH = "/static/yasgui"

# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    timeout: float = 5.0
    max_results: int = 10_000
    max_body_bytes: int = 1 << 20
    workers: int = 2
    worker_memory_mb: int = 2048

    @classmethod
    def from_env(cls) -> "Settings":
        def num(name: str, default, kind):
            raw = os.environ.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None
            if value < 0:
                raise ValueError(f"{name} must not be negative")
            return value

        cpus = os.cpu_count() or 2
        return cls(
            timeout=num("CRLM_KG_QUERY_TIMEOUT", 5.0, float),
            max_results=num("CRLM_KG_MAX_RESULTS", 10_000, int),
            max_body_bytes=num("CRLM_KG_MAX_BODY_BYTES", 1 << 20, int),
            workers=max(1, num("CRLM_KG_QUERY_WORKERS", max(2, min(4, cpus)), int)),
            worker_memory_mb=num("CRLM_KG_WORKER_MEMORY_MB", 2048, int),
        )

    def limit_text(self) -> str:
        return f"{self.timeout:g} s"


# --------------------------------------------------------------------------- media types

RESULT_TYPES: dict[str, str] = {
    "application/sparql-results+json": "JSON",
    "application/sparql-results+xml": "XML",
    "text/csv": "CSV",
    "text/tab-separated-values": "TSV",
    "application/json": "JSON",  # what generic HTTP clients ask for
}
GRAPH_TYPES: dict[str, str] = {
    "text/turtle": "TURTLE",
    "application/n-triples": "N_TRIPLES",
    "application/rdf+xml": "RDF_XML",
    "application/ld+json": "JSON_LD",
}
HTML = "text/html"
SD_TYPES = list(GRAPH_TYPES) + [HTML, "application/xhtml+xml"]


def parse_accept(header: str | None) -> list[tuple[str, str, float]]:
    """``Accept`` as (type, subtype, q) ranges; malformed entries are skipped."""
    ranges = []
    for part in (header or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if "/" not in media:
            continue
        main, _, sub = media.partition("/")
        if not main or not sub:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value.strip())))
                except ValueError:
                    q = 0.0
        ranges.append((main, sub, q))
    return ranges


def negotiate(header: str | None, offers: list[str]) -> str | None:
    """The offer the client prefers (RFC 9110 §12.5.1: the most specific matching
    range gives an offer its q; ties go to the server's order). No ``Accept``
    header means anything is acceptable; ``None`` means nothing is."""
    ranges = parse_accept(header)
    if not ranges:
        return offers[0] if offers else None
    best, best_q = None, 0.0
    for offer in offers:
        main, _, sub = offer.partition("/")
        q, specificity = None, -1
        for r_main, r_sub, r_q in ranges:
            if (r_main, r_sub) == (main, sub):
                spec = 2
            elif r_main == main and r_sub == "*":
                spec = 1
            elif (r_main, r_sub) == ("*", "*"):
                spec = 0
            else:
                continue
            if spec > specificity:
                q, specificity = r_q, spec
        if q is not None and q > best_q:
            best, best_q = offer, q
    return best


def _content_type(media: str) -> str:
    return f"{media}; charset=utf-8" if media.startswith("text/") else media


# --------------------------------------------------------------------------- lexical checks

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n\r]*)
  | (?P<string>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\" | '''(?:[^'\\]|\\.|'(?!''))*'''
              | "(?:[^"\\\n\r]|\\.)*" | '(?:[^'\\\n\r]|\\.)*')
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][^\s{}()\[\];,.<>"'=!&|+*/^#]+)
  | (?P<lang>@[A-Za-z]+(?:-[A-Za-z0-9]+)*)
  | (?P<bnode>_:[^\s{}()\[\];,<>"'#]+)
  | (?P<name>[^\s{}()\[\];,<>"'\#?$@:=!&|+*/^]+(?::[^\s{}()\[\];,<>"'\#=!&|+*/^]*)?)
  | (?P<pname>:[^\s{}()\[\];,<>"'\#=!&|+*/^]*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# A run of name characters is one token, whatever follows it, so tokenizing is linear: with
# "a prefix, then ':'" and "a word" as separate alternatives, a long run without a colon
# ("-" * 50000) was rescanned from every position (13 s of regex on the event loop).
# A run with a colon is a prefixed name; in a run without one, the bare words are its
# [A-Za-z_][A-Za-z0-9_]* pieces ("1SERVICE" holds SERVICE, as the SPARQL lexer reads it).
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
UPDATE_KEYWORDS = {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH"}
QUERY_FORMS = {"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"}
_UNICODE_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def keywords(text: str) -> list[str]:
    """Bare words of a query (upper-cased), outside strings, IRIs, comments,
    variables, prefixed names, blank nodes and language tags."""
    words = []
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "name" and ":" not in match.group():
            words.extend(w.upper() for w in _WORD.findall(match.group()))
    return words


@dataclass(frozen=True)
class QueryShape:
    form: str | None  # SELECT, ASK, CONSTRUCT, DESCRIBE, or None if not recognisable
    update: str | None  # the update keyword the text starts with
    service: bool
    has_dataset: bool  # FROM / FROM NAMED


def inspect_query(text: str) -> QueryShape:
    """What the text is, read lexically (the engine still parses it): enough to
    refuse updates and SERVICE before anything runs and to negotiate early.
    SPARQL allows \\u escapes anywhere, so the unescaped text is checked too."""
    words = keywords(text)
    unescaped = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)
    if unescaped != text:
        words_unescaped = keywords(unescaped)
    else:
        words_unescaped = words
    first = next((w for w in words if w not in ("BASE", "PREFIX")), None)
    first_u = next((w for w in words_unescaped if w not in ("BASE", "PREFIX")), None)
    update = first if first in UPDATE_KEYWORDS else (first_u if first_u in UPDATE_KEYWORDS else None)
    form = first if first in QUERY_FORMS else None
    service = "SERVICE" in words or "SERVICE" in words_unescaped
    return QueryShape(form=form, update=update, service=service, has_dataset="FROM" in words)


# --------------------------------------------------------------------------- rendering (worker and proxy)


class _Budget(Exception):
    pass


class _CountingWriter:
    """Receives TSV results and stops the serialisation after ``limit`` rows."""

    def __init__(self, limit: int):
        self.limit = limit + 1  # the header line
        self.lines = 0
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        data = bytes(data)
        self.lines += data.count(b"\n")
        self.chunks.append(data)
        if self.lines > self.limit:
            raise _Budget()
        return len(data)

    def flush(self) -> None:
        pass


def _too_large(max_results: int, what: str) -> tuple:
    return (
        "error",
        422,
        "Result too large",
        f"the query produced more than {max_results} {what}, the limit of this endpoint "
        "(CRLM_KG_MAX_RESULTS); results are refused rather than truncated. "
        "Add a LIMIT (and OFFSET to page) or narrow the query.",
    )


def _not_acceptable(kind: str, offers) -> tuple:
    return ("error", 406, "Not acceptable", f"a {kind} result can be served as: {', '.join(offers)}")


def render(result: Any, job: dict) -> tuple:
    """Serialise a pyoxigraph query result for ``job``: ("ok", media, body) or
    ("error", status, title, detail)."""
    max_results = job["max_results"]
    if isinstance(result, ox.QueryBoolean):
        media = job["results_media"]
        if media is None:
            return _not_acceptable("boolean (ASK)", RESULT_TYPES)
        fmt = getattr(ox.QueryResultsFormat, RESULT_TYPES[media])
        return ("ok", media, result.serialize(format=fmt))
    if isinstance(result, ox.QuerySolutions):
        media = job["results_media"]
        if media is None:
            return _not_acceptable("SELECT", RESULT_TYPES)
        writer = _CountingWriter(max_results)
        try:
            result.serialize(writer, format=ox.QueryResultsFormat.TSV)
        except _Budget:
            return _too_large(max_results, "rows")
        tsv = b"".join(writer.chunks)
        fmt_name = RESULT_TYPES[media]
        if fmt_name == "TSV":
            return ("ok", media, tsv)
        reparsed = ox.parse_query_results(tsv, format=ox.QueryResultsFormat.TSV)
        return ("ok", media, reparsed.serialize(format=getattr(ox.QueryResultsFormat, fmt_name)))
    # CONSTRUCT / DESCRIBE (QueryTriples) or any iterable of triples
    media = job["graph_media"]
    if media is None:
        return _not_acceptable("CONSTRUCT/DESCRIBE", GRAPH_TYPES)
    triples = []
    for triple in result:
        triples.append(triple)
        if len(triples) > max_results:
            return _too_large(max_results, "triples")
    fmt = getattr(ox.RdfFormat, GRAPH_TYPES[media])
    kwargs = {"prefixes": paths.PREFIXES} if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML) else {}
    return ("ok", media, ox.serialize(triples, format=fmt, **kwargs))


def execute(store: ox.Store, job: dict) -> tuple:
    """Run one job against ``store`` (in a worker process)."""
    kwargs: dict[str, Any] = {"base_iri": job["base_iri"]}
    if job["default_graphs"] is not None or job["named_graphs"] is not None:
        kwargs["default_graph"] = [ox.NamedNode(g) for g in job["default_graphs"] or []]
        kwargs["named_graphs"] = [ox.NamedNode(g) for g in job["named_graphs"] or []]
    elif not job["has_dataset"]:
        kwargs["use_default_graph_as_union"] = True
    try:
        result = store.query(job["query"], **kwargs)
        return render(result, job)
    except SyntaxError as exc:
        return ("error", 400, "Malformed query", f"SPARQL syntax error: {exc}"[:2000])
    except (OSError, RuntimeError, ValueError) as exc:
        return ("error", 400, "Query evaluation failed", str(exc)[:2000])


def _worker_main(conn, nquads: bytes, memory_mb: int) -> None:  # pragma: no cover - runs in a child
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    if memory_mb:
        try:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):
            pass
    store = ox.Store()
    if nquads:
        store.load(nquads, format=ox.RdfFormat.N_QUADS)
    del nquads
    # Oxigraph's parser recurses once per nesting level or chained operator: queries run on a
    # thread with a large stack so that deep but legal queries get an answer, not a crashed worker.
    import threading

    threading.stack_size(WORKER_STACK_BYTES)
    serving = threading.Thread(target=_serve_jobs, args=(conn, store), name="crlm-kg-sparql-jobs")
    serving.start()
    serving.join()


WORKER_STACK_BYTES = 256 * 1024 * 1024


def _serve_jobs(conn, store: ox.Store) -> None:  # pragma: no cover - runs in a child
    conn.send(("ready", len(store)))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            reply = execute(store, job)
        except MemoryError:
            reply = ("error", 503, "Query too expensive", "the query ran out of memory")
        except Exception as exc:  # never let one query kill the loop silently
            reply = ("error", 500, "Query failed", f"{type(exc).__name__}: {exc}"[:2000])
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


# --------------------------------------------------------------------------- worker pool


class QueryTimeout(Exception):
    pass


class PoolBusy(Exception):
    pass


class WorkerCrashed(Exception):
    pass


class _Worker:
    def __init__(self, ctx, nquads: bytes, memory_mb: int):
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, nquads, memory_mb), daemon=True, name="crlm-kg-sparql")
        self.process.start()
        child.close()

    def wait_ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            self.kill()
            raise RuntimeError("a SPARQL worker did not load the dataset in time")
        message = self.conn.recv()
        if not (isinstance(message, tuple) and message[0] == "ready"):
            self.kill()
            raise RuntimeError(f"a SPARQL worker failed to start: {message!r}")

    def kill(self) -> None:
        try:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
        except Exception:  # pragma: no cover
            pass
        try:
            self.conn.close()
        except Exception:  # pragma: no cover
            pass


def _kill_all(workers: set) -> None:
    for worker in list(workers):
        worker.kill()


class QueryPool:
    """Worker processes that each hold a copy of the dataset; one query at a time each."""

    def __init__(self, nquads: bytes, size: int, memory_mb: int = 0, start_timeout: float = 120.0):
        self._ctx = multiprocessing.get_context("spawn")
        self._nquads = nquads
        self._memory_mb = memory_mb
        self._start_timeout = start_timeout
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.respawns = 0
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)
        started = [self._new_worker() for _ in range(size)]
        for worker in started:
            worker.wait_ready(start_timeout)
            self._idle.put(worker)

    def _new_worker(self) -> _Worker:
        worker = _Worker(self._ctx, self._nquads, self._memory_mb)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._workers.discard(worker)

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and start its successor in the background."""
        self._discard(worker)
        self.respawns += 1

        def spawn():
            if self._closed:
                return
            try:
                fresh = self._new_worker()
                fresh.wait_ready(self._start_timeout)
            except Exception:
                log.exception("could not replace a SPARQL worker")
                return
            if self._closed:
                self._discard(fresh)
            else:
                self._idle.put(fresh)

        threading.Thread(target=spawn, name="crlm-kg-sparql-respawn", daemon=True).start()

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._workers)

    def run(self, job: dict, timeout: float) -> tuple:
        """Run ``job`` on an idle worker; ``timeout`` bounds both the wait for a
        worker and the query itself (which is killed when it runs over)."""
        if self._closed:
            raise PoolBusy("the query service is shutting down")
        try:
            worker = self._idle.get(timeout=timeout)
        except queue.Empty:
            raise PoolBusy() from None
        try:
            worker.conn.send(job)
            if not worker.conn.poll(timeout):
                self._replace(worker)
                raise QueryTimeout()
            reply = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._replace(worker)
            raise WorkerCrashed() from None
        self._idle.put(worker)
        return reply

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            try:
                worker.conn.send(None)
            except Exception:
                pass
        for worker in workers:
            worker.process.join(1)
            worker.kill()
        with self._lock:
            self._workers.clear()


# --------------------------------------------------------------------------- request parsing

# The web layer is imported lazily: worker processes import this module for
# ``_worker_main`` and should start in a tenth of a second, without FastAPI.
if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI, Request


def problem_response(*args, **kwargs):
    from .problems import problem_response as make

    return make(*args, **kwargs)


class _Refusal(Exception):
    def __init__(self, status: int, title: str, detail: str = "", field: str | None = None, rule: str | None = None, headers: dict | None = None):
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.field, self.rule, self.headers = status, title, detail, field, rule, headers or {}

    def response(self):
        errors = [{"field": self.field, "rule": self.rule or "invalid", "message": self.detail or self.title}] if self.field else None
        response = problem_response(self.status, self.title, self.detail, errors)
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


@dataclass
class ProtocolRequest:
    query: str
    default_graphs: list[str] | None
    named_graphs: list[str] | None


PROTOCOL_PARAMS = ("query", "update", "default-graph-uri", "named-graph-uri", "using-graph-uri", "using-named-graph-uri")
UPDATE_REFUSED = "SPARQL Update is not accepted"
READ_ONLY = "this endpoint is read-only: it answers queries (SELECT, ASK, CONSTRUCT, DESCRIBE) and never changes the graph"


def _media_type(header: str | None) -> tuple[str, dict[str, str]]:
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
        raise _Refusal(415, "Unsupported charset", f"the request body must be UTF-8, not {charset}", "charset", "utf-8")


def _decode_form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("ascii")
        return urllib.parse.parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise _Refusal(400, "Malformed form body", "the form-encoded body is not percent-encoded UTF-8", "body", "utf-8") from None


async def _read_body(request: Request, limit: int) -> bytes:
    from .problems import Problem, read_body

    try:
        return await read_body(request, limit)
    except Problem as exc:
        raise _Refusal(exc.status, exc.title, f"{exc.detail} (CRLM_KG_MAX_BODY_BYTES)", "body", "max-size") from None


def _pairs_to_request(pairs: list[tuple[str, str]]) -> ProtocolRequest:
    names = [name for name, _ in pairs]
    if "update" in names or "using-graph-uri" in names or "using-named-graph-uri" in names:
        raise _Refusal(400, UPDATE_REFUSED, READ_ONLY, "update", "read-only")
    queries = [value for name, value in pairs if name == "query"]
    if not queries:
        raise _Refusal(400, "Missing query", "give the query in a 'query' parameter (SPARQL 1.1 Protocol)", "query", "required")
    if len(queries) > 1:
        raise _Refusal(400, "More than one query", f"the request has {len(queries)} 'query' parameters; the protocol allows exactly one", "query", "exactly-one")
    return _with_dataset(queries[0], pairs)


def _with_dataset(query: str, pairs: list[tuple[str, str]]) -> ProtocolRequest:
    defaults = [value for name, value in pairs if name == "default-graph-uri"]
    named = [value for name, value in pairs if name == "named-graph-uri"]
    for field, values in (("default-graph-uri", defaults), ("named-graph-uri", named)):
        for value in values:
            try:
                ox.NamedNode(value)
            except ValueError:
                raise _Refusal(400, "Invalid graph IRI", f"{field}={value!r} is not an absolute IRI", field, "iri") from None
            if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
                raise _Refusal(400, "Invalid graph IRI", f"{field}={value!r} is not an absolute IRI", field, "iri")
    if defaults or named:
        return ProtocolRequest(query, defaults, named)
    return ProtocolRequest(query, None, None)


async def parse_protocol_request(request: Request, settings: Settings) -> ProtocolRequest | None:
    """The query and dataset of a protocol request; ``None`` for a bare ``GET /sparql``."""
    url_pairs = urllib.parse.parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "GET":
        if len(request.url.query) > settings.max_body_bytes:
            raise _Refusal(414, "Query string too long", f"this endpoint accepts at most {settings.max_body_bytes} bytes; POST the query instead")
        if not any(name in PROTOCOL_PARAMS for name, _ in url_pairs):
            return None
        return _pairs_to_request(url_pairs)
    body = await _read_body(request, settings.max_body_bytes)
    media, params = _media_type(request.headers.get("content-type"))
    if media == "application/x-www-form-urlencoded":
        _check_charset(params)
        return _pairs_to_request(url_pairs + _decode_form(body))
    if media == "application/sparql-query":
        _check_charset(params)
        names = [name for name, _ in url_pairs]
        if "update" in names:
            raise _Refusal(400, UPDATE_REFUSED, READ_ONLY, "update", "read-only")
        if "query" in names:
            raise _Refusal(400, "More than one query", "a query in the body and another in the URL", "query", "exactly-one")
        try:
            query = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refusal(415, "Unsupported charset", "the application/sparql-query body must be UTF-8", "body", "utf-8") from None
        if query.startswith("\ufeff"):
            query = query[1:]
        return _with_dataset(query, url_pairs)
    if media == "application/sparql-update":
        raise _Refusal(415, UPDATE_REFUSED, READ_ONLY + "; application/sparql-update bodies are not accepted", "content-type", "read-only",
                       headers={"Accept-Post": "application/x-www-form-urlencoded, application/sparql-query"})
    shown = media or "no Content-Type"
    raise _Refusal(415, "Unsupported media type",
                   f"{shown}: POST the query as application/x-www-form-urlencoded (query=…) or as an application/sparql-query body",
                   "content-type", "media-type", headers={"Accept-Post": "application/x-www-form-urlencoded, application/sparql-query"})


MAX_NESTING = 200
_OPENERS, _CLOSERS = "{([", "})]"


MAX_OPERATORS = 20_000


def operator_count(text: str, limit: int = MAX_OPERATORS) -> int:
    """Operators that chain without brackets (!, &&, ||, UNION, MINUS), outside strings, IRIs and comments."""
    halves = 0  # && and || are two characters each, ! is one operator on its own
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "other" and match.group() in "&|":
            halves += 1
        elif kind == "other" and match.group() == "!":
            halves += 2
        elif kind == "name" and match.group().upper() in ("UNION", "MINUS"):
            halves += 2
        if halves > 2 * limit:
            return limit + 1
    return halves // 2


def nesting_depth(text: str, limit: int = MAX_NESTING) -> int:
    """Deepest nesting of {}, () and [] outside strings, IRIs and comments (stops counting past ``limit``)."""
    depth = deepest = 0
    for match in _TOKEN.finditer(text):
        if match.lastgroup != "other":
            continue
        char = match.group()
        if char in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
        elif char in _CLOSERS:
            depth = max(0, depth - 1)
    return deepest


def check_query(text: str) -> QueryShape:
    """Refusals that do not need the engine: empty text, updates, SERVICE, absurd nesting."""
    if not text.strip():
        raise _Refusal(400, "Missing query", "the query is empty", "query", "required")
    if nesting_depth(text) > MAX_NESTING:
        # Oxigraph's parser recurses per level: thousands of levels overflow a worker's stack and kill it
        raise _Refusal(400, "Query nested too deeply", f"the query nests groups or expressions more than {MAX_NESTING} levels deep", "query", "max-nesting")
    if operator_count(text) > MAX_OPERATORS:
        # long flat chains recurse in the parser too; the workers' large stack takes far more than this
        raise _Refusal(400, "Query too complex", f"the query chains more than {MAX_OPERATORS} operators (!, &&, ||, UNION, MINUS)", "query", "max-operators")
    shape = inspect_query(text)
    if shape.update:
        raise _Refusal(400, UPDATE_REFUSED, f"{shape.update} is an update operation; " + READ_ONLY, "query", "read-only")
    if shape.service:
        raise _Refusal(400, "SERVICE is not allowed", "federated queries (SERVICE) are disabled on this endpoint: it never fetches other endpoints", "query", "no-service")
    return shape


def _choose(accept: str | None, shape: QueryShape) -> tuple[str | None, str | None]:
    results_media = negotiate(accept, list(RESULT_TYPES))
    graph_media = negotiate(accept, list(GRAPH_TYPES))
    if shape.form in ("SELECT", "ASK") and results_media is None:
        raise _Refusal(406, "Not acceptable", f"a {shape.form} result can be served as: {', '.join(RESULT_TYPES)}", "accept", "media-type")
    if shape.form in ("CONSTRUCT", "DESCRIBE") and graph_media is None:
        raise _Refusal(406, "Not acceptable", f"a {shape.form} result can be served as: {', '.join(GRAPH_TYPES)}", "accept", "media-type")
    return results_media, graph_media


# --------------------------------------------------------------------------- engines


_REMOTE_MAX_BYTES = 256 * 1024 * 1024


class _Engine:
    def __init__(self, app: FastAPI, settings: Settings):
        self.app = app
        self.settings = settings
        self._pool: QueryPool | None = None
        self._lock = threading.Lock()
        self._http = None

    @property
    def store(self):
        return self.app.state.store

    @property
    def embedded(self) -> bool:
        return self.store.capabilities.in_process

    def pool(self) -> QueryPool:
        with self._lock:
            if self._pool is None:
                nquads = self.store.dump()
                self._pool = QueryPool(nquads, self.settings.workers, self.settings.worker_memory_mb)
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        if self._http is not None:
            self._http.close()
            self._http = None

    def run(self, job: dict) -> tuple:
        if self.embedded:
            return self.pool().run(job, self.settings.timeout)
        return self.proxy(job)

    # ----- remote store

    def proxy(self, job: dict) -> tuple:
        import httpx

        store = self.store
        if self._http is None:
            self._http = httpx.Client(timeout=httpx.Timeout(self.settings.timeout, connect=min(5.0, self.settings.timeout)))
        data = [("query", job["query"])]
        if job["default_graphs"] is not None or job["named_graphs"] is not None:
            data += [("default-graph-uri", g) for g in job["default_graphs"] or []]
            data += [("named-graph-uri", g) for g in job["named_graphs"] or []]
        elif not job["has_dataset"]:
            # the repository's graphs, not the remote store's whole union (Virtuoso adds its system graphs)
            graphs = store.capabilities.dataset_graphs
            data += [("default-graph-uri", g) for g in graphs]
            data += [("named-graph-uri", g) for g in graphs if len(graphs) > 1]
        accept = "application/sparql-results+json, application/n-triples;q=0.9, text/turtle;q=0.8"
        started = time.monotonic()
        headers = {"Accept": accept, "Content-Type": "application/x-www-form-urlencoded"}
        try:
            with self._http.stream("POST", store.capabilities.endpoint, content=urllib.parse.urlencode(data).encode("ascii"), headers=headers) as response:
                chunks, size = [], 0
                for chunk in response.iter_bytes():  # the time limit covers the whole transfer
                    chunks.append(chunk)
                    size += len(chunk)
                    if time.monotonic() - started > self.settings.timeout:
                        raise QueryTimeout()
                    if size > _REMOTE_MAX_BYTES:
                        return ("error", 422, "Result too large", f"the remote store's answer exceeds {_REMOTE_MAX_BYTES} bytes; add a LIMIT")
                body = b"".join(chunks)
        except httpx.TimeoutException:
            raise QueryTimeout() from None
        except httpx.HTTPError as exc:
            return ("error", 502, "Remote store unreachable", str(exc)[:500])
        if response.status_code == 400:
            return ("error", 400, "Malformed query", f"the remote store rejected the query: {body[:1000].decode('utf-8', 'replace')}")
        if response.status_code in (413, 422):
            return ("error", response.status_code, "Remote store refused the query", body[:1000].decode("utf-8", "replace"))
        if response.status_code in (503, 504):
            raise QueryTimeout()
        if response.status_code != 200:
            return ("error", 502, "Remote store error", f"the remote store answered {response.status_code}: {body[:500].decode('utf-8', 'replace')}")
        media, _ = _media_type(response.headers.get("content-type"))
        try:
            if media in ("application/sparql-results+json", "application/json"):
                return render(ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON), job)
            if media in ("application/sparql-results+xml", "application/xml"):
                return render(ox.parse_query_results(body, format=ox.QueryResultsFormat.XML), job)
            fmt = ox.RdfFormat.from_media_type(media) if media else None
            if fmt is None:
                return ("error", 502, "Remote store error", f"unexpected answer type {media!r} from the remote store")
            return render((ox.Triple(t.subject, t.predicate, t.object) for t in ox.parse(body, format=fmt)), job)
        except SyntaxError as exc:
            return ("error", 502, "Remote store error", f"unreadable answer from the remote store: {exc}"[:500])


# --------------------------------------------------------------------------- service description and browser page

SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS = "http://www.w3.org/ns/formats/"
VOID = "http://rdfs.org/ns/void#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
FORMAT_IRIS = ["SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV", "Turtle", "N-Triples", "RDF_XML", "JSON-LD"]


def service_description(endpoint: str, store) -> list[ox.Triple]:
    sd = lambda name: ox.NamedNode(SD + name)  # noqa: E731
    service = ox.NamedNode(endpoint)
    triples = [
        ox.Triple(service, RDF_TYPE, sd("Service")),
        ox.Triple(service, sd("endpoint"), service),
        ox.Triple(service, sd("supportedLanguage"), sd("SPARQL11Query")),
        ox.Triple(service, sd("feature"), sd("UnionDefaultGraph")),
        ox.Triple(service, sd("feature"), sd("EmptyGraphs")),
        ox.Triple(service, ox.NamedNode("http://purl.org/dc/terms/title"), ox.Literal("crlm-kg SPARQL endpoint (read-only)")),
    ]
    triples += [ox.Triple(service, sd("resultFormat"), ox.NamedNode(FORMATS + f)) for f in FORMAT_IRIS]
    dataset, default = ox.BlankNode("dataset"), ox.BlankNode("default")
    triples += [
        ox.Triple(service, sd("defaultDataset"), dataset),
        ox.Triple(dataset, RDF_TYPE, sd("Dataset")),
        ox.Triple(dataset, sd("defaultGraph"), default),
        ox.Triple(default, RDF_TYPE, sd("Graph")),
    ]
    capabilities = store.capabilities
    graphs = [paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE]
    counts: dict[str, int] = {}
    if capabilities.in_process:  # counting is cheap only in process
        graphs = sorted(set(capabilities.dataset_graphs) | set(graphs))
        counts = {str(r["g"]): int(r["n"]) for r in store.select("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")}
        triples.append(ox.Triple(default, ox.NamedNode(VOID + "triples"), ox.Literal(str(store.triple_count()), datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer"))))
    for i, graph in enumerate(graphs):
        named, g = ox.BlankNode(f"named{i}"), ox.BlankNode(f"graph{i}")
        triples += [
            ox.Triple(dataset, sd("namedGraph"), named),
            ox.Triple(named, RDF_TYPE, sd("NamedGraph")),
            ox.Triple(named, sd("name"), ox.NamedNode(graph)),
            ox.Triple(named, sd("graph"), g),
            ox.Triple(g, RDF_TYPE, sd("Graph")),
        ]
        if capabilities.in_process:
            count = counts.get(graph, 0)
            triples.append(ox.Triple(g, ox.NamedNode(VOID + "triples"), ox.Literal(str(count), datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer"))))
    return triples


def yasgui_dir():
    return paths.BUILD_DIR / "yasgui" / "node_modules" / "@zazuko" / "yasgui" / "build"


EXAMPLE_QUERY = "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in paths.PREFIXES.items() if p in ("crlm", "crlmd", "rdf", "rdfs", "skos")) + (
    "\nSELECT ?class ?label WHERE {\n  ?class a owl:Class ; rdfs:label ?label .\n  FILTER(STRSTARTS(STR(?class), STR(crlm:)))\n}\nORDER BY ?label\nLIMIT 50\n"
).replace("a owl:Class", "a <http://www.w3.org/2002/07/owl#Class>")

CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'self'"
)


def browser_page(endpoint: str, settings: Settings) -> str:
    limits = (f"Read-only. Queries stop after {settings.limit_text()}; results over {settings.max_results} rows or triples are refused "
              "(add a LIMIT); SERVICE is disabled.")
    if (yasgui_dir() / "yasgui.min.js").is_file():
        config = json.dumps({
            "requestConfig": {"endpoint": endpoint, "method": "POST"},
            "copyEndpointOnNewTab": False,
            "endpointCatalogueOptions": {"getData": None},
            "yasqe": {"value": EXAMPLE_QUERY},
            "persistenceId": "crlm-kg-sparql",
        })
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crlm-kg SPARQL</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{YASGUI_PATH}/yasgui.min.css">
<style>body{{font-family:system-ui,sans-serif;margin:0 1rem}} header p{{color:#555;margin:.25rem 0 .75rem}}</style>
</head><body>
<header><h1>crlm-kg SPARQL endpoint</h1><p>{html.escape(limits)} Service description: <code>curl -H 'Accept: text/turtle' {html.escape(endpoint)}</code></p></header>
<div id="yasgui"></div>
<script src="{YASGUI_PATH}/yasgui.min.js"></script>
<script>
const config = {config};
config.endpointCatalogueOptions = {{ getData: () => [{{ endpoint: config.requestConfig.endpoint }}] }};
new Yasgui(document.getElementById("yasgui"), config);
</script>
</body></html>
"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crlm-kg SPARQL</title></head>
<body style="font-family:system-ui,sans-serif;max-width:60rem;margin:auto">
<h1>crlm-kg SPARQL endpoint</h1>
<p>{html.escape(limits)}</p>
<form method="post" action="{html.escape(endpoint)}">
<p><textarea name="query" rows="16" cols="100" spellcheck="false">{html.escape(EXAMPLE_QUERY)}</textarea></p>
<p><button type="submit">Run query</button></p>
</form>
<p>(YASGUI is not installed; run <code>scripts/bootstrap.sh</code> for the full editor.)</p>
</body></html>
"""


# --------------------------------------------------------------------------- routes


def _endpoint_url(request: Request) -> str:
    return str(request.url.replace(query="", fragment=""))


def register(app: FastAPI, settings: Settings | None = None) -> None:
    from fastapi import Request
    from fastapi.responses import HTMLResponse, Response
    from starlette.concurrency import run_in_threadpool

    settings = settings or Settings.from_env()
    engine = _Engine(app, settings)
    app.state.sparql = engine

    directory = yasgui_dir()
    if directory.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount(YASGUI_PATH, StaticFiles(directory=str(directory)), name="yasgui")

    async def _start_pool() -> None:  # the workers load before the server takes requests
        if engine.embedded:
            await run_in_threadpool(engine.pool)

    async def _stop_pool() -> None:
        await run_in_threadpool(engine.close)

    app.router.add_event_handler("startup", _start_pool)
    app.router.add_event_handler("shutdown", _stop_pool)

    async def sparql(request: Request):
        try:
            parsed = await parse_protocol_request(request, settings)
            if parsed is None:
                return _describe(request)
            shape = check_query(parsed.query)
            results_media, graph_media = _choose(request.headers.get("accept"), shape)
        except _Refusal as refusal:
            return refusal.response()
        job = {
            "query": parsed.query,
            "base_iri": _endpoint_url(request),
            "default_graphs": parsed.default_graphs,
            "named_graphs": parsed.named_graphs,
            "has_dataset": shape.has_dataset,
            "results_media": results_media,
            "graph_media": graph_media,
            "max_results": settings.max_results,
        }
        try:
            reply = await run_in_threadpool(engine.run, job)
        except QueryTimeout:
            return _timeout_response(settings)
        except PoolBusy:
            response = problem_response(503, "Query service busy", f"every query worker stayed busy for {settings.limit_text()}; retry shortly")
            response.headers["Retry-After"] = "1"
            return response
        except WorkerCrashed:
            return problem_response(503, "Query too expensive", "the worker running this query died (out of memory, or a query nested or "
                                    "chained too deeply for the parser's stack); it has been replaced")
        if reply[0] == "ok":
            _, media, body = reply
            return Response(content=bytes(body), media_type=_content_type(media), headers={"Vary": "Accept"})
        _, status, title, detail = reply
        field = "accept" if status == 406 else "query"
        errors = [{"field": field, "rule": {400: "syntax", 406: "media-type", 422: "max-results"}.get(status, "query"), "message": detail}] if status in (400, 406, 422) else None
        return problem_response(status, title, detail, errors)

    def _describe(request: Request):
        endpoint = _endpoint_url(request)
        media = negotiate(request.headers.get("accept"), SD_TYPES)
        if media is None:
            return problem_response(406, "Not acceptable", f"the service description is served as: {', '.join(SD_TYPES)}",
                                    [{"field": "accept", "rule": "media-type", "message": "no acceptable type"}])
        if media in (HTML, "application/xhtml+xml"):
            return HTMLResponse(browser_page(endpoint, settings), headers={"Vary": "Accept", "Content-Security-Policy": CSP})
        fmt = getattr(ox.RdfFormat, GRAPH_TYPES[media])
        prefixes = {"sd": SD, "formats": FORMATS, "void": VOID, "dcterms": "http://purl.org/dc/terms/"}
        kwargs = {"prefixes": prefixes} if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML) else {}
        body = ox.serialize(service_description(endpoint, engine.store), format=fmt, **kwargs)
        return Response(content=body, media_type=_content_type(media), headers={"Vary": "Accept"})

    async def method_not_allowed(request: Request):
        response = problem_response(405, "Method not allowed", f"{request.method} is not a SPARQL 1.1 Protocol query operation; use GET or POST")
        response.headers["Allow"] = "GET, POST"
        return response

    sparql.__annotations__ = {"request": Request}
    method_not_allowed.__annotations__ = {"request": Request}
    for method, extra in (("GET", _OPENAPI_GET), ("POST", _OPENAPI_POST)):
        app.add_api_route(
            ENDPOINT_PATH,
            sparql,
            methods=[method],
            name=f"sparql_{method.lower()}",
            operation_id=f"sparql_{method.lower()}",
            tags=["sparql"],
            summary=f"SPARQL 1.1 Protocol query operation via {method} (read-only)",
            description=__doc__.split("Protection.")[0],
            response_class=Response,
            openapi_extra={**extra, "responses": _OPENAPI_RESPONSES},
        )
    # every other method (OPTIONS and TRACE too) gets 405 with the full Allow list; without this route
    # Starlette answers from the GET route alone, with "Allow: GET"
    app.add_api_route(ENDPOINT_PATH, method_not_allowed, methods=["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"], include_in_schema=False)


def _timeout_response(settings: Settings):
    return problem_response(
        503,
        f"query exceeded the {settings.limit_text()} limit",
        f"the query was stopped after {settings.limit_text()} (CRLM_KG_QUERY_TIMEOUT); narrow it or add a LIMIT",
    )


_DATASET_PARAMETERS = [
    {"name": "default-graph-uri", "in": "query", "required": False, "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True,
     "description": "graphs whose merge is the default graph (replaces the union default and FROM)"},
    {"name": "named-graph-uri", "in": "query", "required": False, "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True,
     "description": "the named graphs (replaces FROM NAMED)"},
]
_OPENAPI_GET = {
    "parameters": [
        {"name": "query", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "the SPARQL query; without it the answer is the service description (or the query editor for a browser)"},
        *_DATASET_PARAMETERS,
    ],
}
_OPENAPI_POST = {
    "parameters": _DATASET_PARAMETERS,
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {
                "query": {"type": "string"},
                "default-graph-uri": {"type": "array", "items": {"type": "string"}},
                "named-graph-uri": {"type": "array", "items": {"type": "string"}},
            }, "required": ["query"]}},
            "application/sparql-query": {"schema": {"type": "string"}},
        },
    },
}
_OPENAPI_RESPONSES = {
    "200": {"description": "query results or the service description", "content": {m: {} for m in list(RESULT_TYPES) + list(GRAPH_TYPES) + [HTML]}},
    "400": {"description": "missing, duplicated or malformed query; update; SERVICE", "content": {"application/problem+json": {}}},
    "405": {"description": "method other than GET or POST", "content": {"application/problem+json": {}}},
    "406": {"description": "no acceptable result format", "content": {"application/problem+json": {}}},
    "413": {"description": "request body over CRLM_KG_MAX_BODY_BYTES", "content": {"application/problem+json": {}}},
    "414": {"description": "query string over CRLM_KG_MAX_BODY_BYTES", "content": {"application/problem+json": {}}},
    "415": {"description": "body neither form-encoded nor application/sparql-query, or not UTF-8", "content": {"application/problem+json": {}}},
    "422": {"description": "result over CRLM_KG_MAX_RESULTS rows or triples (refused, not truncated)", "content": {"application/problem+json": {}}},
    "503": {"description": "query over CRLM_KG_QUERY_TIMEOUT seconds, or every worker busy", "content": {"application/problem+json": {}}},
}


# --------------------------------------------------------------------------- the service, as the app uses it


class SparqlService:
    """The ``/sparql`` endpoint behind the interface ``api.app`` uses: ``router`` (to include),
    ``start()``/``close()`` (from the app's lifespan) and ``status()`` (for ``/health``).

    A thin adapter over ``register`` and ``_Engine`` above: the project's settings are mapped
    onto this module's ``Settings``, and the routes ``register`` adds to a private app are
    handed over as an ``APIRouter``."""

    def __init__(self, settings: Any, store: Any):
        from fastapi import APIRouter, FastAPI

        self.settings = Settings(
            timeout=settings.query_timeout,
            max_results=settings.max_results,
            max_body_bytes=settings.max_body_bytes,
            workers=settings.query_workers,
            worker_memory_mb=settings.worker_memory_mb,
        )
        host = FastAPI()  # never served: it only collects the routes register() adds
        host.state.store = store
        register(host, self.settings)
        self.engine: _Engine = host.state.sparql
        self.router = APIRouter()
        self.router.routes.extend(r for r in host.router.routes if getattr(r, "path", "").startswith((ENDPOINT_PATH, YASGUI_PATH)))

    def start(self) -> None:
        """Start the query workers (each loads the graph); call before the server takes requests."""
        if self.engine.embedded:
            self.engine.pool()

    def close(self) -> None:
        self.engine.close()

    def status(self) -> dict:
        pool = self.engine._pool
        if not self.engine.embedded:
            return {"engine": "remote", "workers": 0, "idle": 0}
        if pool is None:
            return {"engine": "embedded", "workers": 0, "idle": 0}
        return {"engine": "embedded", "workers": pool.size, "idle": pool._idle.qsize()}
