"""DOIs, PubMed ids and trial registry ids: their patterns and the IRIs of their public pages.

The one place where an identifier literal becomes a link. ``python -m crlm_kg.identifiers`` writes,
after every ``crlm:doi`` / ``crlm:pmid`` / ``crlm:registryId`` line of the curated Turtle, the line
with its IRIs (``crlm:doiIRI`` / ``crlm:pubmedIRI`` / ``crlm:registryIRI``); ``--check`` only reports
files whose IRIs are missing or stale (the tests run the same check). The literals stay: they are
what a reader searches for, the IRIs what a machine follows.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable

from . import paths

# Crossref's recommended pattern for modern DOIs; every character it allows is legal in an IRI,
# so the IRI is https://doi.org/ followed by the DOI unchanged.
DOI = re.compile(r"^10\.\d{4,9}/[-._;()/:A-Za-z0-9]+$")
PMID = re.compile(r"^[1-9][0-9]{0,8}$")

# (pattern of the literal, the page it links to). UMIN-CTR's own page is addressed by a receipt
# number (R0000…) that cannot be derived from the UMIN id, so a UMIN id links to the WHO ICTRP
# record, which the Japan Primary Registries Network feeds (JPRN-UMIN…).
REGISTRIES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^(NCT[0-9]{8})$"), lambda m: f"https://clinicaltrials.gov/study/{m[1]}"),
    (re.compile(r"^(ISRCTN[0-9]{8})$"), lambda m: f"https://www.isrctn.com/{m[1]}"),
    (re.compile(r"^EudraCT ([0-9]{4}-[0-9]{6}-[0-9]{2})$"),
     lambda m: f"https://www.clinicaltrialsregister.eu/ctr-search/search?query=eudract_number:{m[1]}"),
    (re.compile(r"^(UMIN[0-9]{9})$"), lambda m: f"https://trialsearch.who.int/Trial2.aspx?TrialID=JPRN-{m[1]}"),
    (re.compile(r"^(jRCT[a-z]?[0-9]{9,10})$"), lambda m: f"https://jrct.niph.go.jp/latest-detail/{m[1]}"),
]


class BadIdentifier(ValueError):
    """A literal that does not have the form of its kind of identifier."""


def doi_iri(doi: str) -> str:
    if not DOI.match(doi):
        raise BadIdentifier(f"not a DOI (10.NNNN/…): {doi!r}")
    return "https://doi.org/" + doi


def pubmed_iri(pmid: str) -> str:
    if not PMID.match(pmid):
        raise BadIdentifier(f"not a PubMed id (digits): {pmid!r}")
    return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


def registry_iri(registry_id: str) -> str:
    for pattern, page in REGISTRIES:
        match = pattern.match(registry_id)
        if match:
            return page(match)
    raise BadIdentifier(f"not a registry id of a known form (NCT…, ISRCTN…, EudraCT …, UMIN…, jRCT…): {registry_id!r}")


# literal property → (IRI property, how to build the IRI); local names in the crlm: namespace
LINKS: dict[str, tuple[str, Callable[[str], str]]] = {
    "doi": ("doiIRI", doi_iri),
    "pmid": ("pubmedIRI", pubmed_iri),
    "registryId": ("registryIRI", registry_iri),
}

_LITERAL_LINE = re.compile(r'^(?P<indent>\s+)crlm:(?P<prop>doi|pmid|registryId)\s+(?P<values>"[^"]*"(?:\s*,\s*"[^"]*")*)\s*(?P<end>[;.])\s*$')
_IRI_LINE = re.compile(r"^\s+crlm:(?:doiIRI|pubmedIRI|registryIRI)\s")


def with_iris(text: str) -> str:
    """The Turtle text with an IRI line after each identifier line (an existing one is rewritten)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _LITERAL_LINE.match(line)
        i += 1
        if not match:
            out.append(line)
            continue
        prop, build = LINKS[match["prop"]]
        values = re.findall(r'"([^"]*)"', match["values"])
        end = match["end"]
        if i < len(lines) and _IRI_LINE.match(lines[i]):
            end = lines[i].rstrip()[-1]  # the previous IRI line ended the statement or not: replaced by the new one
            i += 1
        out.append(f'{match["indent"]}crlm:{match["prop"]} {match["values"]} ;')
        out.append(f'{match["indent"]}crlm:{prop} ' + " , ".join(f"<{build(v)}>" for v in values) + f" {end}")
    return "\n".join(out)


def stale_files() -> list[Path]:
    """Curated files whose identifier IRIs are missing or do not match their literals."""
    return [p for p in paths.evidence_files() if with_iris(p.read_text(encoding="utf-8")) != p.read_text(encoding="utf-8")]


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--check":
        stale = stale_files()
        for path in stale:
            print(f"{path.relative_to(paths.ROOT)}: identifier IRIs missing or stale (python -m crlm_kg.identifiers writes them)")
        return 1 if stale else 0
    for path in paths.evidence_files():
        text = path.read_text(encoding="utf-8")
        new = with_iris(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"wrote {path.relative_to(paths.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
