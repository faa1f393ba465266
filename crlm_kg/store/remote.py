"""A SPARQL 1.1 Protocol endpoint (e.g. Virtuoso) holding the same graph as the embedded store."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping, Sequence

import httpx
import pyoxigraph as ox

from ..graphs import fingerprint
from .base import Capabilities
from .dialects import SparqlDialect
from .terms import DECIMAL_TYPES, INTEGER_TYPES, IRI, PREFIX_BLOCK, XSD, QueryError, bind_parameters, term_to_python

_JSON_RESULTS = "application/sparql-results+json"
_QUADS_QUERY = "SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }"


class RemoteStore:
    """A SPARQL 1.1 Protocol endpoint holding the same graph.

    ``graph`` names the graph(s) that make up the dataset: one IRI, several
    separated by commas (``CRLM_KG_GRAPH`` may hold such a list) or a sequence
    of IRIs. Each is sent as a ``default-graph-uri`` protocol parameter, so the
    default graph is their merge, as the embedded store's is the union of its
    named graphs; without one the endpoint's own default graph is queried
    (for Virtuoso the union of every graph, its system graphs included).

    ``dialect`` handles the engine's departures from the standard (``VirtuosoDialect``).
    Answers are mapped to the same Python values the embedded store gives, so
    rows compare equal whichever engine answered (see ``_json_term_to_python``).
    """

    name = "remote"

    def __init__(self, endpoint: str, graph: str | Sequence[str] | None = None, timeout: float = 30.0,
                 dialect: SparqlDialect | None = None):
        self.endpoint = endpoint
        self.graphs: tuple[str, ...] = _graph_list(graph)
        self.dialect = dialect if dialect is not None else SparqlDialect()
        self.client = httpx.Client(timeout=timeout)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(in_process=False, endpoint=self.endpoint, dataset_graphs=self.graphs, dialect=self.dialect.name)

    def _request(self, query: str, accept: str, named_graphs: bool = False) -> httpx.Response:
        data: dict[str, Any] = {"query": PREFIX_BLOCK + query}
        if self.graphs:  # the parameter repeated, once per graph
            data["named-graph-uri" if named_graphs else "default-graph-uri"] = list(self.graphs)
        try:
            response = self.client.post(self.endpoint, data=data, headers={"Accept": accept})
        except httpx.HTTPError as exc:
            raise QueryError(f"remote store unreachable: {exc}") from None
        if response.status_code != 200:
            raise QueryError(f"remote store answered {response.status_code}: {response.text[:300]}")
        return response

    def _json(self, query: str, named_graphs: bool = False) -> Any:
        response = self._request(query, _JSON_RESULTS, named_graphs)
        try:
            return response.json()
        except ValueError:
            raise QueryError(f"remote store answered with something other than JSON: {response.text[:300]}") from None

    def select(self, query: str, bindings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        query = bind_parameters(query, bindings)
        payload = self._json(self.dialect.rewrite_select(query))
        booleans = self.dialect.boolean_variables(query)
        rows = []
        for binding in payload["results"]["bindings"]:
            row = {}
            for k, v in binding.items():
                value = _json_term_to_python(v)
                if k in booleans and type(value) is int and value in (0, 1):
                    value = bool(value)
                row[k] = value
            rows.append(row)
        return rows

    def ask(self, query: str, bindings: Mapping[str, Any] | None = None) -> bool:
        return _json_boolean(self._json(bind_parameters(query, bindings))["boolean"])

    def construct(self, query: str, bindings: Mapping[str, Any] | None = None) -> list[ox.Triple]:
        response = self._request(bind_parameters(query, bindings), "application/n-triples, text/turtle;q=0.9")
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        fmt = ox.RdfFormat.from_media_type(media) if media else None
        if fmt is None:
            raise QueryError(f"remote store answered a CONSTRUCT with {media or 'no content type'!r}")
        try:
            return [ox.Triple(t.subject, t.predicate, t.object) for t in ox.parse(response.content, format=fmt)]
        except SyntaxError as exc:
            raise QueryError(f"unreadable answer from the remote store: {exc}") from None

    def triple_count(self) -> int:
        rows = self.select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
        return int(rows[0]["n"]) if rows else 0

    def dump(self) -> bytes:
        """Every quad of the dataset's graphs, read with one SELECT (an engine may change literals'
        datatypes on load, e.g. Virtuoso stores xsd:integer as xsd:int: the dump shows what it holds)."""
        return ox.serialize(self._quads(), format=ox.RdfFormat.N_QUADS)

    def _quads(self) -> list[ox.Quad]:
        blank: dict[str, ox.BlankNode] = {}
        quads = []
        for b in self._json(_QUADS_QUERY, named_graphs=True)["results"]["bindings"]:
            g, s, p, o = (_json_term(b[k], blank) for k in ("g", "s", "p", "o"))
            quads.append(ox.Quad(s, p, o, g))
        return quads

    def fingerprint(self) -> dict[str, Any]:
        return fingerprint(self._quads())

    def close(self) -> None:
        self.client.close()


def _json_term(term: Mapping[str, str], blank: dict[str, ox.BlankNode]) -> Any:
    """A SPARQL JSON results term as a pyoxigraph term (blank-node labels mapped to fresh nodes)."""
    kind = term.get("type")
    if kind == "uri":
        return ox.NamedNode(term["value"])
    if kind == "bnode":
        return blank.setdefault(term["value"], ox.BlankNode())
    if "xml:lang" in term:
        return ox.Literal(term["value"], language=term["xml:lang"])
    if term.get("datatype"):
        return ox.Literal(term["value"], datatype=ox.NamedNode(term["datatype"]))
    return ox.Literal(term["value"])


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
            if dt in INTEGER_TYPES or local in ("byte", "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte",
                                                  "negativeInteger", "nonPositiveInteger"):
                return int(value)
            if dt in DECIMAL_TYPES:
                return float(Decimal(value.strip()))
            if local == "boolean":
                return value.strip().lower() in ("true", "1")
        except (ValueError, ArithmeticError):
            return value
    literal = ox.Literal(value, datatype=ox.NamedNode(dt)) if dt else ox.Literal(value)
    return term_to_python(literal)


