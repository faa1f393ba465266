"""Propose structure for the curated figures (time points, CI levels, analysed populations) and apply
reviewed proposals to the Turtle files.

The Turtle in data/ is the source of truth; this script only reads label and quote patterns and
writes proposals for a curator to check against the seed. Usage (from the repository root):

    .venv/bin/python scripts/curate_structure.py propose > /tmp/proposals.json   # review, edit, delete
    .venv/bin/python scripts/curate_structure.py apply /tmp/proposals.json       # writes data/*.ttl

A proposal is {"node": "<local name>", "add": [[predicate, turtle object], ...], "why": "..."}.
``apply`` inserts the triples at the end of the node's block, and refuses a node it cannot find once.
Conversion rule for time points (documented in data/README.md): months = years x 12; weeks x 7 / 30.4375;
days / 30.4375 (a month is a twelfth of a 365.25-day year), rounded to two decimals.
"""

from __future__ import annotations

import json
import re
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crlm_kg import paths  # noqa: E402
from crlm_kg.store import EmbeddedStore  # noqa: E402

WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "ten": 10, "twelve": 12}
NUM = r"(?:\d+(?:\.\d+)?|" + "|".join(WORDS) + r")"
UNITS = {
    "Days": r"(?:days?|d)",
    "Weeks": r"(?:weeks?|wks?)",
    "Months": r"(?:months?|mos?)",
    "Years": r"(?:years?|yrs?|y)",
}
DAYS_PER_MONTH = Decimal("365.25") / 12

# A time point in a figure label: "90-day", "1.5-year", "at 8 weeks", "within one month", "after 4 weeks".
# The same pattern (without the word alternatives' \b) is in validation/evidence-shapes.ttl.
LABEL_TIME = re.compile(
    r"(?P<n1>\d+(?:\.\d+)?)-(?P<u1>day|week|month|year)\b"
    r"|\b(?:at|within|after) (?P<n2>" + NUM + r") (?P<u2>days?|weeks?|months?|years?)\b",
    re.I,
)


def number(text: str) -> Decimal:
    return Decimal(WORDS.get(text.lower(), text))


def unit_name(text: str) -> str:
    return {"d": "Days", "w": "Weeks", "m": "Months", "y": "Years"}[text.lower()[0]]


def to_months(value: Decimal, unit: str) -> Decimal:
    factor = {"Years": Decimal(12), "Months": Decimal(1), "Weeks": 7 / DAYS_PER_MONTH, "Days": 1 / DAYS_PER_MONTH}[unit]
    return (value * factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).normalize()


def turtle_number(value: Decimal) -> str:
    text = format(value, "f")
    return text


def wording_in(quote: str, value: Decimal, unit: str) -> str | None:
    """The verbatim phrase of the quote that states ``value`` ``unit`` (a list like '1-, 3-, and 5-year' kept whole)."""
    seq = NUM + r"(?:-?\s*(?:,|and|or|/|&)\s*(?:and\s+)?" + NUM + r")*"
    pattern = re.compile(r"(?:\b(?:at|within|after|by)\s+)?(?<![\w.])(" + seq + r")(?:-|\s)?" + UNITS[unit] + r"\b", re.I)
    for match in pattern.finditer(quote):
        numbers = [number(n) for n in re.findall(NUM, match.group(1), re.I)]
        if value in numbers:
            return match.group(0).strip()
    return None


FIGURES = """
SELECT ?x ?label ?quote ?tp ?lo ?lvl ?pop WHERE {
    { ?x a crlm:OutcomeMeasurement } UNION { ?x a/rdfs:subClassOf* crlm:Comparison }
    ?x rdfs:label ?label ; crlm:sourceQuote ?quote .
    OPTIONAL { ?x crlm:timePointMonths ?tp } OPTIONAL { ?x crlm:ciLower ?lo }
    OPTIONAL { ?x crlm:ciLevel ?lvl } OPTIONAL { ?x crlm:analysedPopulation ?pop }
    FILTER NOT EXISTS { ?x crlm:timePointWording ?w }
}"""

POPULATION_PATTERNS = [
    (re.compile(r"\bmodified intention[- ]to[- ]treat|\bmITT\b", re.I), "crlm:ModifiedIntentionToTreatPopulation"),
    (re.compile(r"(?<!modified )\bintention[- ]to[- ]treat|\bITT\b", re.I), "crlm:IntentionToTreatPopulation"),
    (re.compile(r"per[- ]protocol", re.I), "crlm:PerProtocolPopulation"),
    (re.compile(r"\beligible patients\b", re.I), "crlm:EligiblePopulation"),
]
CI_LEVEL = re.compile(r"(\d{2}(?:\.\d+)?)\s?%\s?(?:CI|confidence interval)|\bCI\s?(\d{2}(?:\.\d+)?)\s?%", re.I)


def propose(store: EmbeddedStore) -> list[dict]:
    figures: dict[str, dict] = {}
    for row in store.select(FIGURES):
        node = str(row["x"]).rsplit("/", 1)[-1]
        fig = figures.setdefault(node, {"label": str(row["label"]), "quotes": set(), "row": row})
        fig["quotes"].add(str(row["quote"]))
    proposals = []
    for node, fig in sorted(figures.items()):
        row, quote = fig["row"], " … ".join(sorted(fig["quotes"]))
        add: list[list[str]] = []
        why: list[str] = []
        match = LABEL_TIME.search(fig["label"])
        value = unit = None
        if match:
            value = number(match.group("n1") or match.group("n2"))
            unit = unit_name(match.group("u1") or match.group("u2"))
        elif "tp" in row:
            value, unit = Decimal(str(row["tp"])), "Months"
            if value % 12 == 0 and wording_in(quote, value / 12, "Years"):
                value, unit = value / 12, "Years"
        if value is not None:
            wording = wording_in(quote, value, unit)
            months = to_months(value, unit)
            if "tp" in row and Decimal(str(row["tp"])) != months:
                why.append(f"EXISTING timePointMonths {row['tp']} differs from {months}")
            if wording is None:
                why.append("NO WORDING in quote: check the source")
            else:
                add.append(["crlm:timePointWording", json.dumps(wording, ensure_ascii=False)])
            add.append(["crlm:timePointValue", turtle_number(value)])
            add.append(["crlm:timePointUnit", f"crlm:{unit}"])
            if "tp" not in row:
                add.append(["crlm:timePointMonths", turtle_number(months)])
        if "lo" in row and "lvl" not in row:
            level = CI_LEVEL.search(quote)
            if level:
                add.append(["crlm:ciLevel", turtle_number(Decimal(level.group(1) or level.group(2)) / 100)])
                why.append(f"CI level from {level.group(0)!r}: check it belongs to this interval")
        if "pop" not in row:
            for pattern, population in POPULATION_PATTERNS:
                hit = pattern.search(quote)
                if hit:
                    add.append(["crlm:analysedPopulation", population])
                    why.append(f"population from {hit.group(0)!r}")
                    break
        if add or why:
            proposals.append({"node": node, "label": fig["label"], "add": add, "why": "; ".join(why), "quote": quote[:300]})
    return proposals


def apply(proposals: list[dict]) -> int:
    files = {path: path.read_text(encoding="utf-8") for path in paths.evidence_files() if path.suffix == ".ttl"}
    changed = 0
    for proposal in proposals:
        if not proposal.get("add"):
            continue
        # the typed block ("crlmd:X a crlm:Y ;" or "crlmd:X\n    a crlm:Y ;"), not a later link statement
        start = re.compile(r"^crlmd:" + re.escape(proposal["node"]) + r"\s+a\s", re.M)
        hits = [(path, m) for path, text in files.items() for m in start.finditer(text)]
        if len(hits) != 1:
            raise SystemExit(f"{proposal['node']}: found {len(hits)} times as a subject, expected once")
        path, m = hits[0]
        text = files[path]
        end = re.compile(r" \.[ \t]*$", re.M).search(text, m.end())
        lines = "".join(f" ;\n    {p} {o}" for p, o in proposal["add"])
        files[path] = text[: end.start()] + lines + text[end.start():]
        changed += 1
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str]) -> int:
    if argv[:1] == ["propose"]:
        print(json.dumps(propose(EmbeddedStore.from_repository()), indent=1, ensure_ascii=False))
        return 0
    if argv[:1] == ["apply"] and len(argv) == 2:
        print(f"applied to {apply(json.loads(Path(argv[1]).read_text(encoding='utf-8')))} nodes", file=sys.stderr)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
