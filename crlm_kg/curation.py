"""Quality of the curated evidence: counts, SHACL shapes, and quotes checked against the seeds.

The quote check is what makes provenance trustworthy: every ``crlm:sourceQuote``
must occur in the document it cites (pieces separated by "…" each occur), and
every number of a figure must be written in its quote. A figure whose value
cannot be found in its own quote is reported, not silently accepted.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import pyshacl
import rdflib

from . import paths
from .gates import GateResult
from .graphs import DataFileError, all_quads, evidence_quads, ontology_quads, to_rdflib
from .store import EmbeddedStore, Store

SHAPES = paths.VALIDATION_DIR / "evidence-shapes.ttl"
REFERENCES = paths.SEEDS_DIR.parent / "references.md"

COUNT_QUERIES = {
    "studies": "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a/rdfs:subClassOf* crlm:Study }",
    "arms": "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a crlm:StudyArm }",
    "outcome values": "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a crlm:OutcomeMeasurement }",
    "comparisons": "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a/rdfs:subClassOf* crlm:Comparison }",
    "criteria": "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a/rdfs:subClassOf* crlm:EligibilityCriterion }",
    "evaluable criteria": "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a/rdfs:subClassOf* crlm:EligibilityCriterion ; crlm:characteristic ?c }",
    "statements": "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a/rdfs:subClassOf* crlm:EvidenceStatement }",
    "recommendations": "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a/rdfs:subClassOf* crlm:Recommendation }",
    "conflict links": "SELECT (COUNT(*) AS ?n) WHERE { ?a crlm:conflictsWith ?b FILTER(STR(?a) < STR(?b)) }",
    "publications": "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a/rdfs:subClassOf* crlm:Publication FILTER NOT EXISTS { ?x a crlm:SourceDocument } }",
}

FIGURES = """
SELECT ?x ?doc ?quote WHERE {
    { ?x a crlm:OutcomeMeasurement } UNION { ?x a/rdfs:subClassOf* crlm:Comparison }
    OPTIONAL { ?x crlm:sourceDocument ?doc }
    OPTIONAL { ?x crlm:sourceQuote ?quote }
}"""


_FIGURE = "{ ?x a crlm:OutcomeMeasurement } UNION { ?x a/rdfs:subClassOf* crlm:Comparison }"
# The same label pattern as crlms:TimePointShape in validation/evidence-shapes.ttl.
_TIME_LABEL = ('"[0-9]+(\\\\.[0-9]+)?-(day|week|month|year)([^a-z]|$)|(^|[^a-z])(at|within|after) '
               '([0-9]+|one|two|three|four|five|six|seven|eight|ten|twelve) (day|week|month|year)", "i"')
STRUCTURE_QUERIES = {
    "figures with a structured population": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {_FIGURE} ?x crlm:analysedPopulation ?p }}",
    "figures with a named subgroup": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {_FIGURE} ?x crlm:analysedPopulation ?p . ?p a crlm:SubgroupPopulation }}",
    "figures with a time point": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {_FIGURE} ?x crlm:timePointMonths ?m }}",
    "time points with the source's wording": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {_FIGURE} ?x crlm:timePointMonths ?m ; crlm:timePointWording ?w }}",
    "labels naming a time point": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {_FIGURE} ?x rdfs:label ?l FILTER(REGEX(?l, {_TIME_LABEL})) }}",
    "labels naming a time point, in months": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {_FIGURE} ?x rdfs:label ?l FILTER(REGEX(?l, {_TIME_LABEL})) ?x crlm:timePointMonths ?m }}",
    "figures with a CI": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {_FIGURE} ?x crlm:ciLower ?lo }}",
    "CIs with a level": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {_FIGURE} ?x crlm:ciLower ?lo ; crlm:ciLevel ?lvl }}",
    "durations converted from years": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {_FIGURE} ?x crlm:originalUnit crlm:Years }}",
}


def _share(part: int, whole: int) -> str:
    return f"{(100.0 * part / whole) if whole else 100.0:.1f} %"


def structure_statistics(store: Store, figures: int) -> dict[str, object]:
    """How much of the figures' population, time and CI is structured (issue 15), as counts and shares."""
    counts = {}
    for name, query in STRUCTURE_QUERIES.items():
        rows = store.select(query)
        counts[name] = int(rows[0]["n"]) if rows else 0
    stats: dict[str, object] = dict(counts)
    stats["population share"] = _share(counts["figures with a structured population"], figures)
    stats["time point share"] = _share(counts["figures with a time point"], figures)
    stats["time-point labels in months share"] = _share(counts["labels naming a time point, in months"], counts["labels naming a time point"])
    stats["CI level share"] = _share(counts["CIs with a level"], counts["figures with a CI"])
    return stats


def statistics(store: Store) -> dict[str, object]:
    stats: dict[str, object] = {}
    for name, query in COUNT_QUERIES.items():
        rows = store.select(query)
        stats[name] = int(rows[0]["n"]) if rows else 0
    figures: dict[str, bool] = {}
    for row in store.select(FIGURES):
        key = str(row["x"])
        figures[key] = figures.get(key, False) or ("doc" in row and "quote" in row)
    with_provenance = sum(figures.values())
    stats["figures"] = len(figures)
    stats["figures with provenance"] = with_provenance
    stats["provenance share"] = f"{(100.0 * with_provenance / len(figures)) if figures else 100.0:.1f} %"
    stats.update(structure_statistics(store, len(figures)))
    per_seed = store.select(
        """SELECT ?doc (COUNT(DISTINCT ?x) AS ?n) WHERE {
               { ?x a crlm:OutcomeMeasurement } UNION { ?x a/rdfs:subClassOf* crlm:Comparison }
               ?x crlm:sourceDocument ?doc } GROUP BY ?doc ORDER BY ?doc"""
    )
    for row in per_seed:
        stats[f"figures from {str(row['doc']).rsplit('/', 1)[-1]}"] = int(row["n"])
    return stats


def shacl_report(graph=None) -> tuple[bool, list[str]]:
    """Validate ontology + evidence against validation/evidence-shapes.ttl with pyshacl."""
    data = graph if graph is not None else to_rdflib(all_quads())
    shapes = rdflib.Graph().parse(SHAPES, format="turtle")
    conforms, results, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none", advanced=True, allow_warnings=True)
    problems = []
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    for result in results.subjects(rdflib.RDF.type, sh.ValidationResult):
        focus = results.value(result, sh.focusNode)
        message = results.value(result, sh.resultMessage)
        problems.append(f"{_short(focus)}: {message}")
    return bool(conforms), sorted(set(problems))


def _short(node) -> str:
    text = str(node)
    for prefix, iri in (("crlmd:", paths.CRLMD), ("crlm:", paths.CRLM)):
        if text.startswith(iri):
            return prefix + text[len(iri):]
    return text


_TAGS = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Whitespace, HTML tags, markdown emphasis, escapes and typographic variants folded away."""
    text = html.unescape(_TAGS.sub(" ", text))
    text = text.replace("*", "").replace("\\", "").replace("\u2009", " ").replace("\u00a0", " ")
    for a, b in (("\u2013", "-"), ("\u2014", "-"), ("\u2212", "-"), ("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"')):
        text = text.replace(a, b)
    return _SPACE.sub(" ", text).strip().lower()


@lru_cache(maxsize=None)
def document_text(file_name: str) -> str | None:
    for candidate in (paths.SEEDS_DIR / file_name, REFERENCES if file_name == "references.md" else None):
        if candidate is not None and candidate.exists():
            return normalise(candidate.read_text(encoding="utf-8"))
    return None


QUOTED_NODES = """
SELECT ?x ?file ?quote WHERE {
    ?x crlm:sourceQuote ?quote ; crlm:sourceDocument ?doc .
    ?doc crlm:fileName ?file .
}"""

FIGURE_NUMBERS = """
SELECT ?x ?p ?lexical ?original WHERE {
    { ?x a crlm:OutcomeMeasurement } UNION { ?x a/rdfs:subClassOf* crlm:Comparison }
    VALUES ?p { crlm:value crlm:ciLower crlm:ciUpper crlm:pValue crlm:minimumValue crlm:maximumValue crlm:originalValue }
    ?x ?p ?v .
    FILTER(isLiteral(?v))
    BIND(STR(?v) AS ?lexical)
    OPTIONAL { ?x crlm:originalUnit ?original }
}"""

# A duration the source states in years is stored in months (data/README.md): its numbers are
# checked against the quote in the source's unit, so the conversion can never hide a wrong number.
MONTHS_PER = {paths.CRLM + "Years": Decimal(12)}
CONVERTED = ("value", "ciLower", "ciUpper", "minimumValue", "maximumValue")


def number_forms(lexical: str) -> set[str]:
    """The ways a stated number can be written: 0.058 as '.058', 42.0 as '42'."""
    forms = {lexical}
    if lexical.startswith("0."):
        forms.add(lexical[1:])
    if lexical.startswith("-"):
        forms.add("\u2212" + lexical[1:])
    if "." in lexical:
        trimmed = lexical.rstrip("0").rstrip(".")
        forms.add(trimmed)
        if trimmed.startswith("0."):
            forms.add(trimmed[1:])
    # the store keeps decimals in canonical form (0.50 becomes 0.5): the quote may show the zeros
    base = lexical if "." in lexical else lexical + "."
    for zeros in ("0", "00", "000"):
        forms.add(base + zeros)
        if base.startswith("0."):
            forms.add(base[1:] + zeros)
    return forms


def quote_problems(store: Store) -> tuple[int, list[str]]:
    """Check every quote against the documents its node cites; every figure's numbers against its quotes."""
    quotes: dict[str, list[tuple[str, str]]] = {}
    for row in store.select(QUOTED_NODES):
        quotes.setdefault(str(row["x"]), []).append((row["file"], row["quote"]))
    problems: list[str] = []
    checked = 0
    for node, entries in quotes.items():
        files = {f for f, _ in entries}
        texts = [t for t in (document_text(f) for f in files) if t is not None]
        if not texts:
            continue
        for quote in {q for _, q in entries}:
            checked += 1
            pieces = [normalise(p) for p in re.split(r"…|\.\.\.", quote) if normalise(p)]
            missing = [p for p in pieces if not any(p in t for t in texts)]
            if missing:
                problems.append(f"{_short(node)}: quote not found in {', '.join(sorted(files))}: {missing[0][:90]!r}")
    # numbers: the lexical form as written in the Turtle file must be in one of the node's quotes
    lexical = _figure_lexicals(store)
    for node, prop, value in lexical:
        node_quotes = [normalise(q) for _, q in quotes.get(node, [])]
        if not node_quotes:
            continue
        forms = number_forms(value)
        if not any(_contains_number(q, f) for q in node_quotes for f in forms):
            problems.append(f"{_short(node)}: {prop} {value} is not written in its source quote")
    # a time point's wording is the source's: it must be written in the figure's own quote
    for row in store.select("SELECT ?x ?w WHERE { ?x crlm:timePointWording ?w }"):
        node_quotes = [normalise(q) for _, q in quotes.get(str(row["x"]), [])]
        if node_quotes and not any(normalise(row["w"]) in q for q in node_quotes):
            problems.append(f"{_short(row['x'])}: timePointWording {row['w']!r} is not written in its source quote")
    return checked, problems


def _contains_number(text: str, number: str) -> bool:
    return re.search(r"(?<![0-9.])" + re.escape(number.lower()) + r"(?![0-9])", text) is not None


def _figure_lexicals(store: Store) -> list[tuple[str, str, str]]:
    """(node, property name, the number as written) of every figure: ``STR`` keeps the lexical
    form, which the quote must contain (a float would print 0.05 as 0.05 but 1e-3 as 0.001)."""
    lexicals = []
    for row in store.select(FIGURE_NUMBERS):
        prop, lexical = str(row["p"]).rsplit("#", 1)[-1], row["lexical"]
        factor = MONTHS_PER.get(str(row.get("original")))
        if factor is not None and prop in CONVERTED:
            lexical = format((Decimal(lexical) / factor).normalize(), "f")
        lexicals.append((str(row["x"]), prop, lexical))
    return lexicals


DANGLING = """
SELECT DISTINCT ?s ?p ?o WHERE {
    ?s ?p ?o . FILTER(isIRI(?o) && STRSTARTS(STR(?o), "%s"))
    FILTER NOT EXISTS { ?o ?anyP ?anyO }
}""" % paths.CRLMD


def dangling_references(store: Store) -> list[str]:
    """Links to curated nodes that no file defines (a renamed or deleted node)."""
    return [f"{_short(r['s'])} {_short(r['p'])} {_short(r['o'])}: the target is not defined in data/" for r in store.select(DANGLING)]


def evidence_gates() -> list[GateResult]:
    quads = all_quads()
    store = EmbeddedStore(quads)
    stats = statistics(store)
    results = [GateResult("evidence statistics", stats["provenance share"] == "100.0 %",
                          ", ".join(f"{k} {v}" for k, v in stats.items() if not k.startswith("figures from")))]
    dangling = dangling_references(store)
    results.append(GateResult("links resolve", not dangling, f"{len(dangling)} links to undefined nodes", dangling))
    conforms, problems = shacl_report(to_rdflib(quads))
    results.append(GateResult("evidence shapes (SHACL)", conforms, f"{len(problems)} violations", problems))
    if not paths.SEEDS_DIR.exists():
        results.append(GateResult("quotes match seeds", False, f"skipped: seeds not found at {paths.SEEDS_DIR}", skipped=True))
    else:
        checked, quote_issues = quote_problems(store)
        results.append(GateResult("quotes match seeds", not quote_issues, f"{checked} quotes checked, {len(quote_issues)} problems", quote_issues))
    return results


# --------------------------------------------------------------------------- start-up validation


class ShapesViolation(DataFileError):
    """Curated evidence that breaks ``validation/evidence-shapes.ttl``; names the file and line of
    the first offending node (``problems`` holds every violation)."""

    def __init__(self, path: Path, message: str, line: int | None, problems: list[str]):
        super().__init__(path, message, line)
        self.problems = problems


def _locate(short: str, files: list[Path]) -> tuple[Path | None, int | None]:
    """The file and line where a focus node (``crlmd:Name``, ``crlm:Name`` or a full IRI) is first written."""
    iri = short
    for prefix, base in (("crlmd:", paths.CRLMD), ("crlm:", paths.CRLM)):
        if short.startswith(prefix):
            iri = base + short[len(prefix):]
            break
    local = iri[len(paths.CRLMD):] if iri.startswith(paths.CRLMD) else None
    patterns = [re.compile(re.escape(f"<{iri}>"))]
    if local:
        patterns.append(re.compile(r"(?<![\w:-])crlmd:" + re.escape(local) + r"(?![\w-])"))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if any(p.search(line) for p in patterns):
                return path, number
    return None, None


def check_evidence_shapes() -> None:
    """Validate the ontology and the evidence against the evidence shapes; raise
    ``ShapesViolation`` naming the file and line of the first violation. (3-5 s: pyshacl.)"""
    files = paths.evidence_files()
    conforms, problems = shacl_report(to_rdflib(ontology_quads() + evidence_quads(files)))
    if conforms:
        return
    problems = problems or ["the evidence does not conform to the evidence shapes"]
    located = [(problem, *_locate(problem.split(": ", 1)[0], files)) for problem in problems]
    first = next(((p, f, n) for p, f, n in located if f is not None), (problems[0], paths.DATA_DIR, None))
    problem, path, line = first
    more = f" (and {len(problems) - 1} more violation{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    raise ShapesViolation(path, f"violates {paths.VALIDATION_DIR.name}/evidence-shapes.ttl: {problem}{more}", line, problems)
