"""The release number and the data version (release number + a content hash of the graph).

A paper cites a data version: the same release loaded into any store gives the same
hash (``Store.fingerprint``: blank nodes canonicalised, N-Quads lines sorted), and any
changed quad changes it. It is computed once, when the service or the CLI opens the store; for the
on-disk store (``store/persisted.py``) once per change of the data files, and kept beside it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from . import __version__
from .store import QueryError, Store

#: Hex digits of the graph's SHA-256 shown in the data version (the full hash is in /health
#: and in the release's VoID description); 16 digits make an accidental collision negligible.
HASH_DIGITS = 16


@dataclass(frozen=True)
class DataVersion:
    release: str
    sha256: str | None  # None: the store could not be read whole (e.g. a remote endpoint's row cap)
    triples: int | None

    @property
    def label(self) -> str:
        """Semantic-version build metadata: ``0.2.0+sha256.<16 hex>``."""
        return f"{self.release}+sha256.{self.sha256[:HASH_DIGITS]}" if self.sha256 else f"{self.release}+unhashed"

    def to_json(self) -> dict:
        return {"dataVersion": self.label, "release": self.release, "sha256": self.sha256, "triples": self.triples}


def data_version(store: Store) -> DataVersion:
    """The data version of the graph ``store`` serves (about 0.2 s for the in-memory store; read from disk for the
    on-disk one)."""
    try:
        fingerprint = store.fingerprint()
    except QueryError as exc:  # a remote store that refuses to return every quad still serves
        logging.getLogger(__name__).warning("data version without a hash: %s", exc)
        return DataVersion(__version__, None, None)
    return DataVersion(__version__, fingerprint["sha256"], fingerprint["triples"])
