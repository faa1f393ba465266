"""Values in and out of a store: rows of plain Python values, parameters bound as escaped terms.

Parameters are never spliced into query text as strings: every store binds
them with a VALUES block at the top of the WHERE clause, made of typed terms
serialised by pyoxigraph, which escapes them as N-Triples. (pyoxigraph's own
``substitutions`` would be neater but requires the variable to be projected.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

import pyoxigraph as ox

from .. import paths

XSD = "http://www.w3.org/2001/XMLSchema#"
INTEGER_TYPES = {XSD + t for t in ("integer", "int", "long", "short", "nonNegativeInteger", "positiveInteger", "gYear")}
DECIMAL_TYPES = {XSD + t for t in ("decimal", "double", "float")}

PREFIX_BLOCK = "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in paths.PREFIXES.items())


class QueryError(Exception):
    """A query the engine rejected (syntax) or could not finish (timeout, store error)."""


@dataclass(frozen=True)
class IRI:
    """An IRI value in a row, kept distinct from a plain string literal."""

    value: str

    def __str__(self) -> str:
        return self.value


def term_to_python(term: Any) -> Any:
    """Map a pyoxigraph term to a plain Python value (IRI, int, float, bool or str)."""
    if term is None:
        return None
    if isinstance(term, ox.NamedNode):
        return IRI(term.value)
    if isinstance(term, ox.BlankNode):
        return "_:" + term.value
    if isinstance(term, ox.Literal):
        dt = term.datatype.value if term.datatype else None
        try:
            if dt in INTEGER_TYPES:
                return int(term.value)
            if dt in DECIMAL_TYPES:
                return float(Decimal(term.value))
            if dt == XSD + "boolean":
                return term.value in ("true", "1")
        except (ValueError, ArithmeticError):
            return term.value
        return term.value
    return str(term)


def python_to_term(value: Any) -> ox.NamedNode | ox.Literal:
    """Map a Python value to an RDF term for a parameter binding."""
    if isinstance(value, (ox.NamedNode, ox.Literal)):
        return value
    if isinstance(value, IRI):
        return ox.NamedNode(value.value)
    if isinstance(value, bool):
        return ox.Literal("true" if value else "false", datatype=ox.NamedNode(XSD + "boolean"))
    if isinstance(value, int):
        return ox.Literal(str(value), datatype=ox.NamedNode(XSD + "integer"))
    if isinstance(value, float):
        return ox.Literal(repr(value), datatype=ox.NamedNode(XSD + "decimal"))
    if isinstance(value, Decimal):
        return ox.Literal(str(value), datatype=ox.NamedNode(XSD + "decimal"))
    return ox.Literal(str(value))


def values_block(variables: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A SPARQL VALUES block whose terms are escaped by pyoxigraph (None = UNDEF)."""
    for var in variables:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            raise ValueError(f"not a SPARQL variable name: {var!r}")
    lines = []
    for row in rows:
        cells = ["UNDEF" if v is None else str(python_to_term(v)) for v in row]
        lines.append("(" + " ".join(cells) + ")")
    head = " ".join("?" + v for v in variables)
    return f"VALUES ({head}) {{\n  " + "\n  ".join(lines) + "\n}"


_STRINGS_IRIS_AND_COMMENTS = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^\'\\]|\\.|\'(?!\'\'))*\'\'\''
    r'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|<[^<>"{}|^`\\\s]*>|#[^\n]*')


def masked(query: str) -> str:
    """The query with string literals, IRIs and comments blanked out (same length), for scanning."""
    return _STRINGS_IRIS_AND_COMMENTS.sub(lambda m: " " * len(m.group(0)), query)


def bind_parameters(query: str, bindings: Mapping[str, Any] | None) -> str:
    """Bind typed parameters with a VALUES block placed first in the (outermost) WHERE clause."""
    if not bindings:
        return query
    block = values_block(list(bindings), [list(bindings.values())])
    # found in the masked text: a comment or a string may say "WHERE {" before the clause does
    match = re.search(r"WHERE\s*\{", masked(query), flags=re.IGNORECASE)
    if not match:
        raise QueryError("a parameterised query needs a WHERE { … } clause")
    return query[: match.end()] + "\n" + block + "\n" + query[match.end():]


def solutions_to_rows(solutions: ox.QuerySolutions) -> list[dict[str, Any]]:
    """pyoxigraph solutions as rows of Python values (unbound variables omitted)."""
    names = [v.value for v in solutions.variables]
    rows = []
    for solution in solutions:
        row = {}
        for name in names:
            term = solution[name]
            if term is not None:
                row[name] = term_to_python(term)
        rows.append(row)
    return rows
