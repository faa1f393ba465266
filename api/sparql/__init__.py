"""``/sparql``: a read-only SPARQL 1.1 Protocol endpoint, as a package of one concern per module.

What a client can rely on is ``routes.ENDPOINT_DESCRIPTION`` (the OpenAPI description too).

* ``service.py``      ``SparqlService(settings, store)``: ``.router``, ``.start()``, ``.close()``, ``.status()``
* ``routes.py``       the routes (an ``APIRouter``) and their OpenAPI documentation
* ``protocol.py``     SPARQL 1.1 Protocol request parsing (query, dataset, refusals of updates)
* ``formats.py``      the media types produced and content negotiation (``api/negotiation.py``)
* ``lexical.py``      the lexical guard: updates, SERVICE, nesting and operator chains, before the engine
* ``pool.py``         the worker pool (parent side): waiting, time limit, self-healing
* ``worker.py``       a worker process (child side): runs a query on its copy of the dataset
* ``render.py``       serialising answers within the row and byte caps
* ``proxy.py``        forwarding to a remote store under the same limits
* ``description.py``  the SPARQL 1.1 Service Description
* ``page.py``         the browser page (YASGUI, or a plain form)

Protection. Oxigraph cannot interrupt a running query, so user queries never
run in the server process: a small pool of worker processes (``spawn``
context, ``CRLM_KG_QUERY_WORKERS``, default 2-4) each load the dataset once
from ``EmbeddedStore.dump()``; a query that passes the time limit has
its worker killed (SIGKILL) and replaced while the other workers keep serving.
Workers also run under an address-space limit (``CRLM_KG_WORKER_MEMORY_MB``,
default 2048, 0 = none) so a query that explodes in memory kills its worker,
not the machine. With a ``RemoteStore`` the same checks run and the query is
forwarded to the remote endpoint with the same time limit; its answer is
parsed, counted and re-serialised here.

This ``__init__`` imports nothing eagerly: worker processes import ``api.sparql.worker`` and
should start without loading the web framework.
"""

from __future__ import annotations

import importlib

# name -> submodule, for ``from crlm_kg.api.sparql import SparqlService`` and the guard's unit tests
_EXPORTS = {
    "SparqlService": "service",
    "ENDPOINT_PATH": "routes",
    "MAX_NESTING": "lexical", "MAX_OPERATORS": "lexical", "check_query": "lexical", "inspect_query": "lexical",
    "keywords": "lexical", "nesting_depth": "lexical", "operator_count": "lexical",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
