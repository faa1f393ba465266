"""The one interface between the project and a SPARQL engine.

``Store`` (in ``base``) is the protocol every backend implements; like rdflib's
store plugins, a backend declares what it can do (``Capabilities``) instead of
callers probing its attributes. Two backends:

* ``EmbeddedStore``: the graph in pyoxigraph's store, in memory or read-only from the on-disk
  copy ``persisted`` builds once per change of the data files;
* ``RemoteStore``: any SPARQL 1.1 endpoint (Virtuoso in the integration tests),
  whose departures from the standard are a ``SparqlDialect`` strategy.

``open_store(settings)`` builds the one the settings ask for. A new backend is
a class implementing ``Store`` and a branch in ``open_store``.
"""

from __future__ import annotations

import logging

from ..settings import Settings
from .base import Capabilities, Store
from .dialects import DIALECTS, SparqlDialect, VirtuosoDialect, dialect_named
from .embedded import EmbeddedStore
from .remote import RemoteStore
from .terms import IRI, PREFIX_BLOCK, QueryError, bind_parameters, python_to_term, term_to_python, values_block


def open_store(settings: Settings) -> Store:
    """The store the settings ask for: ``sparql_url`` set means remote, in ``sparql_dialect``."""
    if settings.sparql_url:
        return RemoteStore(settings.sparql_url, graph=settings.graph_list, dialect=dialect_named(settings.sparql_dialect))
    if settings.store_dir_path is None:
        return EmbeddedStore.from_repository()
    try:
        return EmbeddedStore.from_store_dir(settings.store_dir_path)
    except PermissionError as exc:  # a read-only deployment: the graph in memory, as before
        logging.getLogger(__name__).warning("cannot write the on-disk store (%s): loading the graph into memory", exc)
        return EmbeddedStore.from_repository()


__all__ = [
    "Capabilities", "DIALECTS", "EmbeddedStore", "IRI", "PREFIX_BLOCK", "QueryError", "RemoteStore", "SparqlDialect",
    "Store", "VirtuosoDialect", "bind_parameters", "dialect_named", "open_store", "python_to_term", "term_to_python",
    "values_block",
]
