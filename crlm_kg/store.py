"""The one interface between the project and a SPARQL engine.

``EmbeddedStore`` keeps the graph in pyoxigraph's in-memory store (Oxigraph's
own query engine, far faster than rdflib's); ``RemoteStore`` sends the same
queries to any SPARQL 1.1 endpoint (Virtuoso in the integration tests).
Callers get rows of plain Python values, so nothing above this module knows
which engine answered.

Parameters are never spliced into query text as strings: both stores bind
them with a VALUES block at the top of the WHERE clause, made of typed terms
serialised by pyoxigraph, which escapes them as N-Triples. (pyoxigraph's own
``substitutions`` would be neater but requires the variable to be projected.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Mapping, Protocol, Sequence

import pyoxigraph as ox

from . import paths
from .settings import Settings, get_settings

XSD = "http://www.w3.org/2001/XMLSchema#"
_INTEGER_TYPES = {XSD + t for t in ("integer", "int", "long", "short", "nonNegativeInteger", "positiveInteger", "gYear")}
_DECIMAL_TYPES = {XSD + t for t in ("decimal", "double", "float")}

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
            if dt in _INTEGER_TYPES:
                return int(term.value)
            if dt in _DECIMAL_TYPES:
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


def bind_parameters(query: str, bindings: Mapping[str, Any] | None) -> str:
    """Bind typed parameters with a VALUES block placed first in the (outermost) WHERE clause."""
    if not bindings:
        return query
    block = values_block(list(bindings), [list(bindings.values())])
    match = re.search(r"WHERE\s*\{", query, flags=re.IGNORECASE)
    if not match:
        raise QueryError("a parameterised query needs a WHERE { … } clause")
    return query[: match.end()] + "\n" + block + "\n" + query[match.end():]


class Store(Protocol):
    """What the service, the evidence lookup and the named queries need of a SPARQL engine."""

    name: str

    def select(self, query: str, bindings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT and return rows of Python values (unbound variables omitted)."""

    def ask(self, query: str) -> bool: ...

    def triple_count(self) -> int: ...


class EmbeddedStore:
    """The graph in pyoxigraph's in-memory store, queried with the default graph as the union."""

    name = "embedded"

    def __init__(self, quads: Iterable[ox.Quad] = ()):
        self.store = ox.Store()
        self.store.extend(quads)

    @classmethod
    def from_repository(cls) -> "EmbeddedStore":
        from .graphs import all_quads

        return cls(all_quads())

    def _run(self, query: str, bindings: Mapping[str, Any] | None = None):
        try:
            return self.store.query(PREFIX_BLOCK + bind_parameters(query, bindings), use_default_graph_as_union=True)
        except SyntaxError as exc:
            raise QueryError(f"SPARQL syntax error: {exc}") from None
        except OSError as exc:
            raise QueryError(f"store error: {exc}") from None

    def select(self, query: str, bindings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        solutions = self._run(query, bindings)
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

    def ask(self, query: str) -> bool:
        return bool(self._run(query))

    def triple_count(self) -> int:
        return len(self.store)

    def dump_nquads(self) -> bytes:
        """The whole dataset as canonical-order N-Quads (for hashing and worker processes)."""
        return self.store.dump(format=ox.RdfFormat.N_QUADS)


class RemoteStore:
    """A SPARQL 1.1 Protocol endpoint (e.g. Virtuoso) holding the same graph.

    ``graph`` names the graph(s) that make up the dataset: one IRI, several
    separated by commas (``CRLM_KG_GRAPH`` may hold such a list) or a sequence
    of IRIs. Each is sent as a ``default-graph-uri`` protocol parameter, so the
    default graph is their merge, as the embedded store's is the union of its
    named graphs; without one the endpoint's own default graph is queried
    (for Virtuoso the union of every graph, its system graphs included).

    Answers are mapped to the same Python values the embedded store gives, so
    rows compare equal whichever engine answered (see ``_json_term_to_python``).
    """

    name = "remote"

    def __init__(self, endpoint: str, graph: str | Sequence[str] | None = None, timeout: float = 30.0):
        import httpx

        self.endpoint = endpoint
        self.graphs: tuple[str, ...] = _graph_list(graph)
        # one graph stays available as ``graph`` for callers that forward it (api.sparql's proxy)
        self.graph = self.graphs[0] if len(self.graphs) == 1 else None
        self.client = httpx.Client(timeout=timeout)

    def _post(self, query: str, accept: str) -> Any:
        import httpx

        data: dict[str, Any] = {"query": PREFIX_BLOCK + query}
        if self.graphs:
            data["default-graph-uri"] = list(self.graphs)  # the parameter repeated, once per graph
        try:
            response = self.client.post(self.endpoint, data=data, headers={"Accept": accept})
        except httpx.HTTPError as exc:
            raise QueryError(f"remote store unreachable: {exc}") from None
        if response.status_code != 200:
            raise QueryError(f"remote store answered {response.status_code}: {response.text[:300]}")
        try:
            return response.json()
        except ValueError:
            raise QueryError(f"remote store answered with something other than JSON: {response.text[:300]}") from None

    def select(self, query: str, bindings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        query = bind_parameters(query, bindings)
        payload = self._post(_order_outside_distinct(query), "application/sparql-results+json")
        booleans = _boolean_variables(query)
        rows = []
        for binding in payload["results"]["bindings"]:
            row = {}
            for k, v in binding.items():
                value = _json_term_to_python(v)
                if k in booleans and type(value) is int and value in (0, 1):
                    value = bool(value)  # Virtuoso answers a boolean expression with xsd:integer 1 or 0
                row[k] = value
            rows.append(row)
        return rows

    def ask(self, query: str) -> bool:
        return _json_boolean(self._post(query, "application/sparql-results+json")["boolean"])

    def triple_count(self) -> int:
        rows = self.select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
        return int(rows[0]["n"]) if rows else 0

    def close(self) -> None:
        self.client.close()


_STRINGS_AND_IRIS = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^\'\\]|\\.|\'(?!\'\'))*\'\'\''
                               r'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|<[^<>"{}|^`\\\s]*>|#[^\n]*')
_BOOLEAN_FUNCTIONS = {"EXISTS", "NOT", "BOUND", "ISIRI", "ISURI", "ISBLANK", "ISLITERAL", "ISNUMERIC", "REGEX", "CONTAINS",
                      "STRSTARTS", "STRENDS", "SAMETERM", "LANGMATCHES", "TRUE", "FALSE"}


def _mask(query: str) -> str:
    """The query with string literals, IRIs and comments blanked out (same length), for scanning."""
    return _STRINGS_AND_IRIS.sub(lambda m: " " * len(m.group(0)), query)


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


def _boolean_variables(query: str) -> set[str]:
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


def _order_outside_distinct(query: str) -> str:
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


def _graph_list(graph: str | Sequence[str] | None) -> tuple[str, ...]:
    if not graph:
        return ()
    items = graph.split(",") if isinstance(graph, str) else list(graph)
    return tuple(dict.fromkeys(g.strip() for g in items if g and g.strip()))


def _json_boolean(value: Any) -> bool:
    """An ASK answer: JSON true/false, or (from some stores) a number or a string."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _json_term_to_python(term: Mapping[str, str]) -> Any:
    """A SPARQL JSON results term as the embedded store would give it.

    Virtuoso's answers differ from Oxigraph's in form, not in value; the
    differences met are normalised here:

    * ``typed-literal`` is the old (SPARQL 2005 draft) name of ``literal``;
    * numeric literals come back with the type Virtuoso stores them as
      (``xsd:int`` for ``xsd:integer`` data, ``xsd:double`` for ``xsd:decimal``
      data or arithmetic): every integer type maps to ``int`` and every
      decimal, float and double to ``float``, as for the embedded store;
    * results of comparisons and ``EXISTS`` come back as ``xsd:integer`` 1 or 0,
      not ``xsd:boolean``: they cannot be told from numbers by their type, so
      the callers treat them with ``bool()`` (the evidence lookup does); a
      ``xsd:boolean`` literal written ``1``/``0`` maps to True/False;
    * a blank node in a result keeps Virtuoso's label, prefixed ``_:`` like
      the embedded store's (labels differ between engines in any case).
    """
    kind = term.get("type")
    if kind == "uri":
        return IRI(term["value"])
    if kind == "bnode":
        value = term["value"]
        return value if value.startswith("_:") else "_:" + value
    dt = term.get("datatype")
    value = term["value"]
    if dt and dt.startswith(XSD):
        local = dt[len(XSD):]
        try:
            if dt in _INTEGER_TYPES or local in ("byte", "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte",
                                                  "negativeInteger", "nonPositiveInteger"):
                return int(value)
            if dt in _DECIMAL_TYPES:
                return float(Decimal(value.strip()))
            if local == "boolean":
                return value.strip().lower() in ("true", "1")
        except (ValueError, ArithmeticError):
            return value
    literal = ox.Literal(value, datatype=ox.NamedNode(dt)) if dt else ox.Literal(value)
    return term_to_python(literal)


def open_store(settings: Settings | None = None) -> Store:
    """The store the settings ask for: ``sparql_url`` set means remote (default: the process's settings)."""
    settings = settings if settings is not None else get_settings()
    if settings.sparql_url:
        return RemoteStore(settings.sparql_url, graph=settings.graph)
    return EmbeddedStore.from_repository()


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=str)
