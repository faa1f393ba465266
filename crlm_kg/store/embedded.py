"""The graph in pyoxigraph's in-memory store (Oxigraph's own query engine, far faster than rdflib's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import pyoxigraph as ox

from ..graphs import fingerprint, load_repository
from .base import Capabilities
from .terms import PREFIX_BLOCK, QueryError, bind_parameters, solutions_to_rows


class EmbeddedStore:
    """The dataset in this process, queried with the default graph as the union of its named graphs.

    Read-only once built: the quads are given to the constructor."""

    name = "embedded"

    def __init__(self, quads: Iterable[ox.Quad] = (), store: ox.Store | None = None,
                 fingerprint: dict[str, Any] | None = None, path: Path | None = None):
        """A store of ``quads``, or the already filled ``store`` (which nothing else may change); ``fingerprint``
        and ``path`` for a store read from disk (``persisted.open_persisted``), whose fingerprint is known."""
        self._store = store if store is not None else ox.Store()
        if store is None:
            self._store.extend(quads)
        self._fingerprint = fingerprint
        #: the on-disk dataset other processes may open read-only (``Store.read_only``); None: in memory only
        self.path = path
        # counting walks every quad (4 ms at 56 k, seconds at 100x); the store never changes after this
        self._triples = fingerprint["triples"] if fingerprint is not None else len(self._store)

    @classmethod
    def from_repository(cls) -> "EmbeddedStore":
        """The ontology, the curated evidence and their RDFS entailments, each in its named graph."""
        store = ox.Store()
        load_repository(store)
        return cls(store=store)

    @classmethod
    def from_store_dir(cls, store_dir: Path) -> "EmbeddedStore":
        """The same dataset as ``from_repository``, read-only from the on-disk store in ``store_dir`` (built there
        first if the data files changed since): seconds instead of minutes at 100x the evidence, the data
        version included."""
        from .persisted import open_persisted

        store, fingerprint, path = open_persisted(store_dir)
        return cls(store=store, fingerprint=fingerprint, path=path)

    @classmethod
    def from_nquads(cls, data: bytes) -> "EmbeddedStore":
        """A store holding a dump (``dump()``) of another store."""
        return cls(ox.parse(data, format=ox.RdfFormat.N_QUADS))

    @property
    def capabilities(self) -> Capabilities:
        graphs = tuple(sorted(g.value for g in self._store.named_graphs() if isinstance(g, ox.NamedNode)))
        return Capabilities(in_process=True, endpoint=None, dataset_graphs=graphs, dialect="standard", on_disk=self.path)

    def _run(self, query: str, bindings: Mapping[str, Any] | None = None):
        try:
            return self._store.query(PREFIX_BLOCK + bind_parameters(query, bindings), use_default_graph_as_union=True)
        except SyntaxError as exc:
            raise QueryError(f"SPARQL syntax error: {exc}") from None
        except OSError as exc:
            raise QueryError(f"store error: {exc}") from None

    def select(self, query: str, bindings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        solutions = self._run(query, bindings)
        if not isinstance(solutions, ox.QuerySolutions):
            raise QueryError("select() needs a SELECT query")
        return solutions_to_rows(solutions)

    def ask(self, query: str, bindings: Mapping[str, Any] | None = None) -> bool:
        answer = self._run(query, bindings)
        if not isinstance(answer, ox.QueryBoolean):
            raise QueryError("ask() needs an ASK query")
        return bool(answer)

    def construct(self, query: str, bindings: Mapping[str, Any] | None = None) -> list[ox.Triple]:
        triples = self._run(query, bindings)
        if not isinstance(triples, ox.QueryTriples):
            raise QueryError("construct() needs a CONSTRUCT or DESCRIBE query")
        return list(triples)

    def triple_count(self) -> int:
        return self._triples

    def dump(self) -> bytes:
        """The whole dataset as N-Quads (for hashing and for the SPARQL worker processes)."""
        return self._store.dump(format=ox.RdfFormat.N_QUADS)

    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:  # the store never changes: computed once
            self._fingerprint = fingerprint(self._store)
        return dict(self._fingerprint)

    def close(self) -> None:
        """Nothing to release: the dataset is freed with the object."""
