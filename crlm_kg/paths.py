"""Where the project's artifacts live.

The ontology, evidence, queries and shapes are files that people open
directly, so they stay in the repository's top-level folders rather than
inside the package; ``CRLM_KG_HOME`` points elsewhere for a deployment.
"""

from __future__ import annotations

from pathlib import Path

from .settings import get_settings

ROOT = get_settings().home
ONTOLOGY_DIR = ROOT / "ontology"
ONTOLOGY_TTL = ONTOLOGY_DIR / "crlm.ttl"
ONTOLOGY_OWL = ONTOLOGY_DIR / "crlm.owl"
ONTOLOGY_DOCS = ONTOLOGY_DIR / "docs" / "index.html"
DATA_DIR = ROOT / "data"
EXAMPLES_DIR = DATA_DIR / "examples"
QUERIES_DIR = ROOT / "queries"
VALIDATION_DIR = ROOT / "validation"
SEEDS_DIR = get_settings().seeds_dir
BUILD_DIR = ROOT / "build"
TOOLS_DIR = ROOT / "tools"

CRLM = "https://w3id.org/crlm-kg/ontology#"
CRLMD = "https://w3id.org/crlm-kg/data/"
ONTOLOGY_IRI = "https://w3id.org/crlm-kg/ontology"
GRAPH_ONTOLOGY = "https://w3id.org/crlm-kg/graph/ontology"
GRAPH_EVIDENCE = "https://w3id.org/crlm-kg/graph/evidence"
#: the RDFS entailments of the other two, materialised at load (``graphs.rdfs_entailments``)
GRAPH_INFERRED = "https://w3id.org/crlm-kg/graph/inferred"

PREFIXES = {
    "crlm": CRLM,
    "crlmd": CRLMD,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "sh": "http://www.w3.org/ns/shacl#",
}


def evidence_files() -> list[Path]:
    """Every Turtle file of curated evidence, in a stable order."""
    return sorted(p for p in DATA_DIR.rglob("*.ttl") if "examples" not in p.parts)
