"""The evidence at 10× or 100×: every curated node cloned with new IRIs (issue 17's scale tests).

    .venv/bin/python benchmarks/scale_evidence.py FACTOR HOME

writes HOME, a copy of the repository's ontology/, data/, validation/ and queries/ whose data/
holds FACTOR - 1 more copies of the evidence (data/_scaled/copies.ttl): every crlmd: IRI of copy
k gets the suffix ``_xk`` and every blank node a fresh label, so each copy is a new set of
studies, arms, figures, criteria and statements with the same structure and provenance text
(ontology terms, crlm:, are shared). ``CRLM_KG_HOME=HOME crlm-kg serve`` then serves the scaled
graph. Not evidence: a load generator.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pyoxigraph as ox

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crlm_kg import paths  # noqa: E402
from crlm_kg.graphs import evidence_quads  # noqa: E402


def _renamer(k: int):
    suffix = f"_x{k}"

    def rename(term):
        if isinstance(term, ox.NamedNode) and term.value.startswith(paths.CRLMD):
            return ox.NamedNode(term.value + suffix)
        if isinstance(term, ox.BlankNode):
            return ox.BlankNode(f"{term.value}x{k}")
        return term

    return rename


def cloned_triples(factor: int, base: list[ox.Quad] | None = None):
    """The triples of copies 1 … factor-1 of the evidence (copy 0 is the repository's own)."""
    base = base if base is not None else evidence_quads()
    for k in range(1, factor):
        rename = _renamer(k)
        for q in base:
            yield ox.Triple(rename(q.subject), q.predicate, rename(q.object))


def scaled_quads(factor: int, base: list[ox.Quad] | None = None) -> list[ox.Quad]:
    """The clones as quads of the evidence graph (for an in-process store)."""
    graph = ox.NamedNode(paths.GRAPH_EVIDENCE)
    return [ox.Quad(t.subject, t.predicate, t.object, graph) for t in cloned_triples(factor, base)]


def write_home(factor: int, home: Path) -> Path:
    """A repository copy at ``home`` holding the evidence ``factor`` times."""
    if home.exists():
        shutil.rmtree(home)
    for folder in ("ontology", "data", "validation", "queries"):
        shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns("docs", "examples"))
    shutil.copytree(ROOT / "data" / "examples", home / "data" / "examples")  # the example patients (not loaded as evidence)
    if factor > 1:
        target = home / "data" / "_scaled" / "copies.ttl"
        target.parent.mkdir(parents=True)
        with target.open("wb") as out:
            ox.serialize(cloned_triples(factor), out, format=ox.RdfFormat.N_TRIPLES)  # N-Triples is Turtle
    return home


if __name__ == "__main__":
    factor, home = int(sys.argv[1]), Path(sys.argv[2])
    print(write_home(factor, home))
