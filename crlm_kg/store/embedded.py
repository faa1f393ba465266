"""The graph in pyoxigraph's in-memory store (Oxigraph's own query engine, far faster than rdflib's)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import pyoxigraph as ox

from ..graphs import fingerprint, load_repository
from .base import Capabilities
from .terms import PREFIX_BLOCK, QueryError, bind_parameters, solutions_to_rows


class EmbeddedStore:
    """The dataset in this process, queried with the default graph as the union of its named graphs.

    Read-only once built: the quads are given to the constructor."""

    name = "embedded"

    def __init__(self, quads: Iterable[ox.Quad] = (), store: ox.Store | None = None):
        """A store of ``quads``, or the already filled ``store`` (which nothing else may change)."""
        self._store = store if store is not None else ox.Store()
        if store is None:
            self._store.extend(quads)
        # counting walks every quad (4 ms at 56 k, seconds at 100x); the store never changes after this
        self._triples = len(self._store)

    @classmethod
    def from_repository(cls) -> "EmbeddedStore":
        """The ontology, the curated evidence and their RDFS entailments, each in its named graph."""
        store = ox.Store()
        load_repository(store)
        return cls(store=store)

    @classmethod
    def from_nquads(cls, data: bytes) -> "EmbeddedStore":
        """A store holding a dump (``dump()``) of another store."""
        return cls(ox.parse(data, format=ox.RdfFormat.N_QUADS))

    @property
    def capabilities(self) -> Capabilities:
        graphs = tuple(sorted(g.value for g in self._store.named_graphs() if isinstance(g, ox.NamedNode)))
        return Capabilities(in_process=True, endpoint=None, dataset_graphs=graphs, dialect="standard")

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
        return fingerprint(self._store)

    def close(self) -> None:
        """Nothing to release: the dataset is freed with the object."""
