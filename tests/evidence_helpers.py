"""Shared helpers for the evidence tests."""

from __future__ import annotations

import pyoxigraph as ox

from crlm_kg import patients, paths
from crlm_kg.store import EmbeddedStore

CASES = paths.EXAMPLES_DIR / "patients"
EXAMPLE_FILES = sorted(CASES.glob("*.json"))


def record(name_or_dict):
    import json

    data = json.dumps(name_or_dict).encode() if isinstance(name_or_dict, dict) else (CASES / name_or_dict).read_bytes()
    report, records = patients.parse_and_validate(data)
    assert report.conforms, report.to_text()
    return records[0]


def store_with(turtle: str, base: EmbeddedStore | None = None) -> EmbeddedStore:
    """A store holding ``base``'s quads (or nothing) plus the given Turtle in the evidence graph."""
    quads = list(ox.parse(base.dump(), format=ox.RdfFormat.N_QUADS)) if base is not None else []
    prefixes = (f"@prefix crlm: <{paths.CRLM}> . @prefix crlmd: <{paths.CRLMD}> . "
                "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> . @prefix owl: <http://www.w3.org/2002/07/owl#> .\n")
    quads += [ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(paths.GRAPH_EVIDENCE))
              for t in ox.parse(prefixes + turtle, format=ox.RdfFormat.TURTLE)]
    return EmbeddedStore(quads)


def by_id(entries, entry_id):
    return next(e for e in entries if e["id"] == entry_id)
