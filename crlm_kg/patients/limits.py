"""How much work one patient document may ask for, checked before the expensive step.

Parsing is cheap next to what follows it (building RDF, one pyshacl run over every record,
the evidence lookup per record), so the limits are checked as early as each format allows:

- JSON: an object with more than ``keys`` keys stops ``json.loads`` at that object (the
  object hook raises); a list of more than ``records`` records is refused before any record
  is converted; a record with more than ``keys`` keys in all is refused before conversion.
- JSON-LD: the same count of top-level nodes (or ``@graph`` members) before the JSON-LD
  processor runs, and the store count below while it runs.
- Turtle (and JSON-LD): the parser writes into a ``LimitedMemory`` store, which stops the
  parse at the first triple that makes one record too many, or the document more than
  ``records × keys`` triples.
- The report lists the first ``violations`` violations and counts them all.

The API builds ``Limits`` from the settings (``max_records``, ``max_record_keys``,
``max_report_violations``); ``POST /evidence`` uses ``records=1``, so a multi-record document
is refused while it is parsed, before anything is validated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rdflib.namespace import RDF
from rdflib.plugins.stores.memory import Memory


@dataclass(frozen=True)
class Limits:
    records: int = 1000  # records per document
    keys: int = 64  # JSON keys per record (nested objects included); RDF: records × keys triples per document
    violations: int = 200  # violations listed in a report (the total is always counted)
    #: keys a whole JSON document may have, counted before it is parsed; 0: (records + 1) × keys.
    #: ``POST /evidence`` (records=1) keeps the service's budget here, so that a list of many small
    #: records is parsed (cheaply) and refused as more than one record, not as too many keys
    document_keys: int = 0

    @classmethod
    def from_settings(cls, settings: Any, records: int | None = None) -> "Limits":
        """The limits a ``Settings`` gives (``records``: a route's own cap, e.g. 1 for ``/evidence``)."""
        return cls(records=records if records is not None else settings.max_records, keys=settings.max_record_keys,
                   violations=settings.max_report_violations, document_keys=(settings.max_records + 1) * settings.max_record_keys)

    @property
    def triples(self) -> int:
        return self.records * self.keys

    @property
    def keys_per_document(self) -> int:
        return self.document_keys or (self.records + 1) * self.keys


DEFAULT_LIMITS = Limits()


class TooMuchWork(ValueError):
    """A document past a limit; ``rule`` is the violation's rule name."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


def too_many_records(limit: int, got: int | None = None) -> TooMuchWork:
    counted = f"; got {got}" if got is not None else f"; got more than {limit}"
    return TooMuchWork("maxRecords", f"a document holds at most {limit} patient record{'s' if limit != 1 else ''}{counted}")


def too_many_keys(limit: int, got: int | None) -> TooMuchWork:
    counted = f"got an object with {got}" if got is not None else f"got more than {limit}"
    return TooMuchWork("maxKeys", f"a patient record has at most {limit} fields (nested objects included); {counted}")


class LimitedMemory(Memory):
    """rdflib's in-memory store, stopping a parse that adds too many records or triples.

    ``patient_class`` and ``properties`` (IRIs) say what makes a subject a record, as
    ``parsing._graph_batch`` counts them. ``done()`` lifts the limits once the parse is over
    (pyshacl may add to the graph)."""

    def __init__(self, limits: Limits, patient_class: Any, properties: set) -> None:
        super().__init__()
        self._limits: Limits | None = limits
        self._patient_class = patient_class
        self._properties = properties
        self._records: set = set()
        self._triples = 0

    def add(self, triple, context, quoted=False):  # noqa: ANN001 (rdflib's signature)
        limits = self._limits
        if limits is not None:
            s, p, o = triple
            if (p == RDF.type and o == self._patient_class) or p in self._properties:
                self._records.add(s)
                if len(self._records) > limits.records:
                    raise too_many_records(limits.records)
            self._triples += 1
            if self._triples > limits.triples:
                raise TooMuchWork("maxTriples", f"a document holds at most {limits.triples} triples "
                                                f"({limits.records} records of at most {limits.keys} values)")
        return super().add(triple, context, quoted)

    def done(self) -> None:
        self._limits = None
