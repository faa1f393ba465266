"""What a remote engine needs done to standard SPARQL, as a strategy object.

Engines differ from the SPARQL 1.1 standard in ways the project has met, and
each difference is a rewrite of the query text before it is sent or a rule for
reading the answer. A ``SparqlDialect`` is the standard engine (nothing to
do); ``VirtuosoDialect`` carries Virtuoso 7.2's quirks. The setting
``sparql_dialect`` chooses one for a remote store (``DIALECTS`` maps its
values); a new engine's quirks are a new subclass here and a new entry there.

Both methods work on plain query strings, so each rewrite is unit-tested
without a server (tests/test_sparql_dialects.py).
"""

from __future__ import annotations

import re

from .terms import masked as _mask


class SparqlDialect:
    """A standard SPARQL 1.1 engine: queries are sent as written, answers read as typed."""

    name = "standard"

    def rewrite_select(self, query: str) -> str:
        """The SELECT query to send in place of ``query``."""
        return query

    def boolean_variables(self, query: str) -> frozenset[str]:
        """Projected variables whose integer 1/0 answers mean true/false (none for a standard engine)."""
        return frozenset()


class VirtuosoDialect(SparqlDialect):
    """Virtuoso 7.2: DISTINCT queries are ordered outside the DISTINCT (it drops OPTIONAL
    values otherwise), and boolean expressions come back as ``xsd:integer`` 1/0."""

    name = "virtuoso"

    def rewrite_select(self, query: str) -> str:
        return order_outside_distinct(query)

    def boolean_variables(self, query: str) -> frozenset[str]:
        return frozenset(boolean_variables(query))


DIALECTS: dict[str, SparqlDialect] = {d.name: d for d in (SparqlDialect(), VirtuosoDialect())}


def dialect_named(name: str) -> SparqlDialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown SPARQL dialect {name!r}; known: {', '.join(sorted(DIALECTS))}") from None


# --------------------------------------------------------------------------- scanning query text

_BOOLEAN_FUNCTIONS = {"EXISTS", "NOT", "BOUND", "ISIRI", "ISURI", "ISBLANK", "ISLITERAL", "ISNUMERIC", "REGEX", "CONTAINS",
                      "STRSTARTS", "STRENDS", "SAMETERM", "LANGMATCHES", "TRUE", "FALSE"}


def _split_top(expr: str, sep: str = ",") -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(expr[start:i])
            start = i + 1
    parts.append(expr[start:])
    return parts


def _is_boolean(expr: str, known: set[str], unbound: frozenset[str] = frozenset()) -> bool:
    """Whether a (masked) SPARQL expression has a boolean value, judged from its form.

    ``unbound`` holds variables used once in the query (never bound, so an error
    value in an IF or COALESCE branch): they do not decide the type."""
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")") and len(_split_top(expr[1:-1], "\0")) == 1 and _balanced(expr[1:-1]):
        expr = expr[1:-1].strip()
    top = "".join(ch if depth == 0 else " " for ch, depth in _depths(expr))
    if re.search(r"(<=|>=|!=|&&|\|\||[<>=])", top) or re.search(r"\b(NOT\s+)?IN\s*\(", top, re.I) and not top.strip().upper().startswith("IF"):
        return True
    if expr.startswith("!"):
        return True
    head = re.match(r"([A-Za-z_]+)\s*(\(|$|\{)", expr)
    if head:
        name = head.group(1).upper()
        if name in _BOOLEAN_FUNCTIONS:
            return True
        if name in ("IF", "COALESCE") and head.group(2) == "(":
            args = _split_top(expr[head.end():-1])
            branches = [a for a in (args[1:] if name == "IF" else args) if a.strip() not in unbound]
            return bool(branches) and all(_is_boolean(a, known, unbound) for a in branches)
    variable = re.fullmatch(r"[?$]([A-Za-z_][A-Za-z0-9_]*)", expr)
    return bool(variable and variable.group(1) in known)


def _depths(expr: str):
    depth = 0
    for ch in expr:
        if ch in "({[":
            depth += 1
            yield ch, depth
            continue
        if ch in ")}]":
            yield ch, depth
            depth -= 1
            continue
        yield ch, depth


def _balanced(expr: str) -> bool:
    depth = 0
    for ch in expr:
        depth += ch in "({[" and 1 or 0
        depth -= ch in ")}]" and 1 or 0
        if depth < 0:
            return False
    return depth == 0


def boolean_variables(query: str) -> set[str]:
    """Variables bound by ``(expr AS ?v)`` or ``BIND(expr AS ?v)`` whose expression is boolean.

    Virtuoso returns boolean values as ``xsd:integer`` 1/0, so the type alone cannot
    tell them from numbers; the query's form can.
    """
    masked = _mask(query)
    found: set[str] = set()
    assignments = []
    for match in re.finditer(r"\bAS\s+[?$]([A-Za-z_][A-Za-z0-9_]*)\s*\)", masked, flags=re.I):
        depth, i = 0, match.start() - 1
        while i >= 0:  # walk back to the parenthesis that opens this (expr AS ?v)
            ch = masked[i]
            if ch in ")}]":
                depth += 1
            elif ch in "({[":
                if depth == 0:
                    break
                depth -= 1
            i -= 1
        if i >= 0:
            assignments.append((match.group(1), masked[i + 1: match.start()]))
    counts: dict[str, int] = {}
    for name in re.findall(r"[?$]([A-Za-z_][A-Za-z0-9_]*)", masked):
        counts[name] = counts.get(name, 0) + 1
    unbound = frozenset(f"?{n}" for n, c in counts.items() if c == 1) | frozenset(f"${n}" for n, c in counts.items() if c == 1)
    for _ in range(3):  # variables defined from boolean variables, in any order
        for name, expr in assignments:
            if name not in found and _is_boolean(expr, found, unbound):
                found.add(name)
    return found


_TAIL = re.compile(r"\}\s*(ORDER\s+BY\s+[^{}]*?)\s*((?:(?:LIMIT|OFFSET)\s+\d+\s*)*)$", re.I)


def order_outside_distinct(query: str) -> str:
    """``SELECT DISTINCT … ORDER BY`` rewritten as an ordered ``SELECT *`` around the distinct query.

    Virtuoso 7.2 loses the values of an OPTIONAL variable that a DISTINCT query
    is also ordered by (``overall-survival-alpps-tsh`` came back without its
    time points); ordering outside the DISTINCT subquery gives the same rows in
    the same order.
    """
    masked = _mask(query)
    head = re.match(r"\s*SELECT\s+DISTINCT\s+(.*?)\s*(?:WHERE\s*)?\{", masked, flags=re.I | re.S)
    tail = _TAIL.search(masked)
    if not head or not tail or "*" in head.group(1) and head.group(1).strip() != "*":
        return query
    projected = set(re.findall(r"[?$]([A-Za-z_][A-Za-z0-9_]*)", head.group(1)))
    ordered = set(re.findall(r"[?$]([A-Za-z_][A-Za-z0-9_]*)", tail.group(1)))
    if head.group(1).strip() != "*" and not ordered <= projected:
        return query
    inner = query[: tail.start() + 1]
    return "SELECT * WHERE {\n{\n" + inner + "\n}\n}\n" + query[tail.start() + 1:]


