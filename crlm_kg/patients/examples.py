"""The example records in ``data/examples`` and the patient quality gates of ``crlm-kg check``."""

from __future__ import annotations

import json
from pathlib import Path

import pyshacl
import rdflib
from rdflib import URIRef

from .. import paths
from ..gates import GateResult
from .contract import SHAPES_FILE
from .parsing import short_error
from .rdf import quiet_rdflib
from .validation import private_shapes, shapes_graph, validate_document


EXAMPLES = paths.EXAMPLES_DIR / "patients"
INVALID_EXAMPLES = paths.EXAMPLES_DIR / "invalid"
_EXAMPLE_SUFFIXES = (".json", ".jsonld", ".ttl")


def _example_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in _EXAMPLE_SUFFIXES and not p.name.endswith(".expected.json"))


def shape_gates():
    """``crlm-kg check``: the shapes are well-formed SHACL and every example validates as expected."""
    results = []
    problems: list[str] = []
    try:
        shapes = shapes_graph()
        with quiet_rdflib():
            conforms, _, text = pyshacl.validate(rdflib.Graph(), shacl_graph=private_shapes(), meta_shacl=True, inference="none")
        if not conforms:
            problems.append(text.strip()[:2000])
        for s in set(shapes.subjects()):
            if isinstance(s, URIRef) and str(s).startswith(paths.CRLM):
                problems.append(f"{s}: the shapes graph says something about an ontology IRI")
    except Exception as exc:  # a shapes file that does not parse is a failed gate
        problems.append(f"{SHAPES_FILE.name}: {short_error(exc)}")
    results.append(GateResult("patient shapes well-formed", not problems, f"{SHAPES_FILE.name}: meta-SHACL " + ("passed" if not problems else "failed"), problems))

    problems = []
    valid = _example_files(EXAMPLES)
    invalid = _example_files(INVALID_EXAMPLES)
    for path in valid:
        report = validate_document(path.read_bytes(), filename=path.name)
        if not report.conforms:
            problems.extend(f"{path.name}: {line}" for line in report.to_text().splitlines())
    for path in invalid:
        expected_file = path.with_name(path.stem + ".expected.json")
        if not expected_file.exists():
            problems.append(f"{path.name}: no {expected_file.name} stating the violations it must produce")
            continue
        expected = {(e["field"], e["rule"]) for e in json.loads(expected_file.read_text(encoding="utf-8"))}
        report = validate_document(path.read_bytes(), filename=path.name)
        got = {(v.field, v.rule) for v in report.violations}
        if report.conforms:
            problems.append(f"{path.name}: expected violations {sorted(expected)} but the record conforms")
        elif got != expected:
            problems.append(f"{path.name}: expected {sorted(expected)}, got {sorted(got)}")
    ok = not problems and bool(valid) and bool(invalid)
    if not valid or not invalid:
        problems.append(f"no examples found in {EXAMPLES} or {INVALID_EXAMPLES}")
    summary = f"{len(valid)} valid and {len(invalid)} invalid examples " + ("validate as expected" if ok else "do not all validate as expected")
    results.append(GateResult("patient examples", ok, summary, problems))
    return results

