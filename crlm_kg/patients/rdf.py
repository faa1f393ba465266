"""rdflib as patient validation uses it: cached query parsing and quiet literal warnings."""

from __future__ import annotations

import contextvars
import logging
import threading
import warnings

import rdflib
from rdflib.plugins.sparql import prepareQuery



class DataGraph(rdflib.Graph):
    """The data graph of a batch. pyshacl runs a SHACL-SPARQL constraint once per focus
    node with the same query text and ``$this`` as an initial binding; rdflib would parse
    that text every time (≈ 14 ms), so the parsed query is cached."""

    def query(self, query_object, *args, **kwargs):
        if isinstance(query_object, str):
            query_object = prepared_query(query_object)
        return super().query(query_object, *args, **kwargs)


_PARSE_LOCK = threading.Lock()


_PER_THREAD = threading.local()
_MAX_PREPARED = 512


def prepared_query(text: str):
    """The parsed query, cached per thread. rdflib's SPARQL parser is pyparsing, which is not
    thread-safe: two threads parsing at once corrupt its shared parse actions for the life of
    the process, hence the lock. And a prepared query is not safe to evaluate from two threads
    at once (concurrent SHACL-SPARQL checks gave false violations, 2 in 600 validations on 8
    threads), hence one copy per thread."""
    cache = getattr(_PER_THREAD, "queries", None)
    if cache is None:
        cache = _PER_THREAD.queries = {}
    query = cache.get(text)
    if query is None:
        if len(cache) >= _MAX_PREPARED:
            cache.clear()
        with _PARSE_LOCK:
            query = cache[text] = prepareQuery(text)
    return query


_QUIET = contextvars.ContextVar("crlm_kg_quiet_rdflib", default=0)


class _QuietFilter(logging.Filter):
    """Drops rdflib.term's records while the current thread/task is inside ``quiet_rdflib``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _QUIET.get() == 0


def _install_quiet_filter() -> None:
    logger = logging.getLogger("rdflib.term")
    if not any(isinstance(f, _QuietFilter) for f in logger.filters):
        logger.addFilter(_QuietFilter())


def quiet_rdflib():
    """rdflib logs a traceback for each ill-typed literal, quoting the patient's value; those
    are reported by SHACL instead. Per thread (a context variable read by a logger filter),
    not by changing the logger's level: with concurrent requests, saving and restoring a
    shared level let one request's exit un-silence another that was still parsing."""
    _install_quiet_filter()

    class _Quiet:
        def __enter__(self):
            self.token = _QUIET.set(_QUIET.get() + 1)
            self.warnings = warnings.catch_warnings()
            self.warnings.__enter__()
            warnings.simplefilter("ignore", DeprecationWarning)  # rdflib's JSON-LD parser uses ConjunctiveGraph

        def __exit__(self, *exc):
            self.warnings.__exit__(*exc)
            _QUIET.reset(self.token)

    return _Quiet()
