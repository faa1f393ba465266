"""The interface every store backend implements, and what it declares it can do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

import pyoxigraph as ox


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared by it rather than probed by callers
    (as rdflib's store plugins declare ``context_aware`` or ``transaction_aware``)."""

    #: The dataset lives in this process: ``dump()`` and ``fingerprint()`` are cheap, and the
    #: SPARQL endpoint answers arbitrary queries from copies of it in worker processes.
    in_process: bool
    #: A SPARQL 1.1 Protocol endpoint that answers protocol requests as sent; the SPARQL
    #: endpoint forwards arbitrary queries to it (None for the embedded store).
    endpoint: str | None
    #: The named graphs whose merge is the default graph the store queries (the embedded
    #: store: all of its named graphs; a remote store: the configured graphs, or none for
    #: the engine's own default graph).
    dataset_graphs: tuple[str, ...]
    #: The name of the SPARQL dialect the engine speaks (see ``crlm_kg.store.dialects``).
    dialect: str
    #: The on-disk dataset other processes may open read-only (``pyoxigraph.Store.read_only``), beside which
    #: what is derived from it can be kept; None: the dataset is in memory, or remote.
    on_disk: Path | None = None


@runtime_checkable
class Store(Protocol):
    """What the service, the evidence lookup, the named queries and the quality gates need
    of a SPARQL engine. Rows hold plain Python values (``IRI``, int, float, bool, str), so
    nothing above the store knows which engine answered. Every method may raise ``QueryError``."""

    name: str

    @property
    def capabilities(self) -> Capabilities: ...

    def select(self, query: str, bindings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT and return rows of Python values (unbound variables omitted)."""
        ...

    def ask(self, query: str, bindings: Mapping[str, Any] | None = None) -> bool: ...

    def construct(self, query: str, bindings: Mapping[str, Any] | None = None) -> list[ox.Triple]:
        """Run a CONSTRUCT or DESCRIBE and return its triples."""
        ...

    def triple_count(self) -> int:
        """Triples in the store's dataset (all the graphs it queries)."""
        ...

    def dump(self) -> bytes:
        """The dataset as N-Quads, each triple in its named graph."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """``{"triples": n, "sha256": hex}``: the triple count and the SHA-256 of the canonical
        N-Quads (blank nodes canonicalised, lines sorted); equal for equal datasets."""
        ...

    def close(self) -> None: ...
