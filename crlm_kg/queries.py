"""The library of named SPARQL queries in ``queries/``.

Each ``.rq`` file starts with a header of ``#`` comment lines::

    # title: Randomised trials in a resectability setting
    # description: Every RCT whose setting is the given one, with design and size.
    # param: setting | iri | Resectable | the resectability setting
    # param: minSize | integer | 100 | smallest sample size | optional
    # values: setting | SELECT ?value ?label ?altLabel WHERE { ?value a crlm:ResectabilityCategory ; rdfs:label ?label OPTIONAL { ?value skos:altLabel ?altLabel } }
    # columns: study, label, design, randomised

A ``values`` line draws a parameter's allowed values from the graph: a given
value is matched case-insensitively on each allowed value's code (local name,
prefixed name or IRI) and labels, and one that matches none is refused with
the list of allowed ones (``setting=resectable`` is ``crlm:Resectable``).
Parameters are typed, converted from text with their declared type, and
bound as initial bindings (``substitutions`` on the embedded store, a VALUES
block of escaped terms on a remote one): never spliced into the query text.
"""

from __future__ import annotations

import csv
import io
import json
import re
import weakref
from dataclasses import dataclass, field
from xml.sax.saxutils import escape as xml_escape
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

from . import paths
from .store import IRI, QueryError, Store, python_to_term

PARAM_TYPES = ("iri", "entity", "string", "integer", "decimal", "boolean")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_LOCAL = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class QueryParameterError(ValueError):
    """A named query that does not exist, or a parameter that is missing or of the wrong type."""

    def __init__(self, message: str, parameter: str | None = None, allowed: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.parameter = parameter
        #: for a value outside a closed vocabulary: the values that are allowed ({"value", "label"})
        self.allowed = allowed


@dataclass(frozen=True)
class AllowedValue:
    """One value a parameter may take, with the names it is recognised by."""

    value: Any  # an IRI, or a literal as a Python value
    label: str | None
    names: frozenset[str]  # lower-cased: code, prefixed name, IRI, labels

    @property
    def code(self) -> str:
        return _short(self.value).split(":", 1)[-1] if isinstance(self.value, IRI) else str(self.value)

    def describe(self) -> dict[str, Any]:
        return {"value": self.code, "label": self.label}


class AllowedValues(list):
    """A parameter's allowed values, with an index by every name they are recognised by: a study parameter has
    17 600 names at 100x the evidence, and matching a value by scanning them took longer than the query."""

    def __init__(self, values: Iterable[AllowedValue] = ()):
        super().__init__(values)
        self.by_name: dict[str, list[AllowedValue]] = {}
        for value in self:
            for name in value.names:
                self.by_name.setdefault(name, []).append(value)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    example: str
    description: str
    optional: bool = False
    #: a SELECT of ?value and ?label (and optionally ?altLabel) giving the allowed values, or None for an open parameter
    values_query: str | None = None

    def resolve(self, raw: Any, allowed: list[AllowedValue]) -> Any:
        """The allowed value ``raw`` names (case-insensitively, by code or label); a
        ``QueryParameterError`` listing the allowed values when it names none or several."""
        key = str(raw).strip().lower()
        named = allowed.by_name.get(key, []) if isinstance(allowed, AllowedValues) else [a for a in allowed if key in a.names]
        matches = list(dict.fromkeys(named))
        exact = [a for a in matches if a.code == str(raw).strip()]
        if len(matches) == 1 or len(exact) == 1:
            return (exact or matches)[0].value
        listing = [a.describe() for a in (matches or allowed)]
        shown = ", ".join(f"{a['value']} ({a['label']})" if a["label"] and a["label"] != a["value"] else a["value"] for a in listing)
        if matches:
            raise QueryParameterError(f"parameter {self.name}: {raw!r} is ambiguous; it names {shown}", self.name, listing)
        raise QueryParameterError(f"parameter {self.name}: unknown value {raw!r}; allowed values: {shown}", self.name, listing)

    def convert(self, raw: Any) -> Any:
        """Turn a raw value (text from the CLI or URL, or JSON) into a typed binding."""
        text = raw if isinstance(raw, str) else json.dumps(raw)
        if self.type in ("iri", "entity"):
            # a bare name is an ontology term (type iri) or a curated entity such as a study (type entity)
            if isinstance(raw, str) and _LOCAL.match(raw):
                return IRI((paths.CRLM if self.type == "iri" else paths.CRLMD) + raw)
            if isinstance(raw, str) and raw.startswith("crlm:") and _LOCAL.match(raw[5:]):
                return IRI(paths.CRLM + raw[5:])
            if isinstance(raw, str) and raw.startswith("crlmd:") and _LOCAL.match(raw[6:]):
                return IRI(paths.CRLMD + raw[6:])
            if isinstance(raw, str) and re.match(r"^https?://[^\s<>\"{}|\\^`]+$", raw):
                return IRI(raw)
            raise QueryParameterError(
                f"parameter {self.name} must be an IRI (a full http(s) IRI, crlm:Name, crlmd:Name or a bare Name); got {text!r}", self.name
            )
        if self.type == "integer":
            if isinstance(raw, bool):
                raise QueryParameterError(f"parameter {self.name} must be an integer; got {text!r}", self.name)
            try:
                return int(raw) if not isinstance(raw, float) or raw.is_integer() else int("x")
            except (TypeError, ValueError):
                raise QueryParameterError(f"parameter {self.name} must be an integer; got {text!r}", self.name) from None
        if self.type == "decimal":
            try:
                value = Decimal(str(raw)) if not isinstance(raw, bool) else Decimal("x")
            except (InvalidOperation, ValueError):
                raise QueryParameterError(f"parameter {self.name} must be a decimal number; got {text!r}", self.name) from None
            if not value.is_finite() or abs(value.adjusted()) > 100:
                # NaN, Infinity (and 1e999999) are no xsd:decimal: bound as such they compared as garbage
                raise QueryParameterError(f"parameter {self.name} must be a finite decimal number; got {text!r}", self.name)
            return Decimal(format(value, "f"))  # xsd:decimal has no exponent: 1e3 is bound as 1000
        if self.type == "boolean":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "1", "yes"):
                return True
            if str(raw).lower() in ("false", "0", "no"):
                return False
            raise QueryParameterError(f"parameter {self.name} must be true or false; got {text!r}", self.name)
        if not isinstance(raw, str):
            raise QueryParameterError(f"parameter {self.name} must be a string; got {text!r}", self.name)
        if len(raw) > 500:
            raise QueryParameterError(f"parameter {self.name} must be at most 500 characters", self.name)
        return raw


@dataclass(frozen=True)
class NamedQuery:
    name: str
    title: str
    description: str
    parameters: tuple[Parameter, ...]
    columns: tuple[str, ...]
    text: str
    path: Path = field(compare=False)

    def bindings(self, raw: dict[str, Any], allowed: dict[str, AllowedValues] | None = None) -> dict[str, Any]:
        """Typed bindings from raw values; a parameter with allowed values (``allowed``, from the
        graph) is resolved against them instead of converted."""
        allowed = allowed or {}
        known = {p.name for p in self.parameters}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise QueryParameterError(
                f"query {self.name} has no parameter {unknown[0]!r}; its parameters are: {', '.join(sorted(known)) or 'none'}", unknown[0]
            )
        result = {}
        for param in self.parameters:
            if param.name in raw and raw[param.name] not in (None, ""):
                if allowed.get(param.name):
                    result[param.name] = param.resolve(raw[param.name], allowed[param.name])
                else:
                    result[param.name] = param.convert(raw[param.name])
            elif not param.optional:
                raise QueryParameterError(f"query {self.name} needs parameter {param.name} ({param.type}, e.g. {param.example})", param.name)
        return result

    def describe(self, allowed: dict[str, list[AllowedValue]] | None = None) -> dict[str, Any]:
        allowed = allowed or {}
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "parameters": [
                {"name": p.name, "type": p.type, "example": p.example, "description": p.description, "required": not p.optional,
                 "allowedValues": [a.describe() for a in allowed[p.name]] if p.name in allowed else None}
                for p in self.parameters
            ],
            "columns": list(self.columns),
        }


def parse_query_file(path: Path) -> NamedQuery:
    header: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            if line.strip():
                break
            continue
        match = re.match(r"#\s*(title|description|param|values|columns):\s*(.*)$", line)
        if match:
            header.setdefault(match.group(1), []).append(match.group(2).strip())
        elif header.get("description") and line.startswith("#   "):
            header["description"][-1] += " " + line[1:].strip()
    name = path.stem
    if not _NAME.match(name):
        raise ValueError(f"{path}: query file names are lower-case words joined by '-'")
    for key in ("title", "description", "columns"):
        if key not in header:
            raise ValueError(f"{path}: header lacks '# {key}:'")
    params = []
    for spec in header.get("param", []):
        parts = [p.strip() for p in spec.split("|")]
        if len(parts) < 4 or parts[1] not in PARAM_TYPES:
            raise ValueError(f"{path}: '# param: {spec}' must be 'name | {'/'.join(PARAM_TYPES)} | example | description [| optional]'")
        params.append(Parameter(parts[0], parts[1], parts[2], parts[3], optional=len(parts) > 4 and parts[4] == "optional"))
        if parts[0] == "format":
            raise ValueError(f"{path}: 'format' is reserved (it chooses the answer's format over HTTP)")
    values = {}
    for spec in header.get("values", []):
        name_part, _, query_part = spec.partition("|")
        values[name_part.strip()] = query_part.strip()
    unknown = sorted(set(values) - {p.name for p in params})
    if unknown:
        raise ValueError(f"{path}: '# values: {unknown[0]} | …' names no parameter")
    params = [Parameter(p.name, p.type, p.example, p.description, p.optional, values.get(p.name)) for p in params]
    columns = tuple(c.strip() for c in header["columns"][0].split(","))
    # the query without its header: a WHERE in a header line must not be taken for the query's
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), len(lines))
    return NamedQuery(name, header["title"][0], " ".join(header["description"]), tuple(params), columns, "\n".join(lines[start:]) + "\n", path)


class QueryLibrary:
    def __init__(self, queries: dict[str, NamedQuery]):
        self.queries = queries
        # allowed values per store (the stores are read-only once built, so computed once each)
        self._allowed: "weakref.WeakKeyDictionary[Any, dict[str, dict[str, AllowedValues]]]" = weakref.WeakKeyDictionary()

    @classmethod
    def load(cls, directory: Path = paths.QUERIES_DIR) -> "QueryLibrary":
        return cls({q.name: q for q in (parse_query_file(p) for p in sorted(directory.glob("*.rq")))})

    def all(self) -> list[NamedQuery]:
        return list(self.queries.values())

    def get(self, name: str) -> NamedQuery:
        if name not in self.queries:
            raise QueryParameterError(f"no named query {name!r}; `crlm-kg query` lists them", "name")
        return self.queries[name]

    def allowed_values(self, store: Store, name: str) -> dict[str, AllowedValues]:
        """The allowed values of each parameter of query ``name`` that declares them, read from ``store``."""
        try:
            per_store = self._allowed.setdefault(store, {})
        except TypeError:  # a store that cannot be weakly referenced: no cache
            per_store = {}
        if name not in per_store:
            per_store[name] = {p.name: _allowed_values(store, p.values_query) for p in self.get(name).parameters if p.values_query}
        return per_store[name]

    def run(self, store: Store, name: str, raw_params: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
        query = self.get(name)
        bindings = query.bindings(raw_params, self.allowed_values(store, name))
        rows = store.select(query.text, bindings)
        for row in rows:  # the bound parameters are part of the answer even though the engine substituted them
            for key, value in bindings.items():
                if key in query.columns and key not in row:
                    row[key] = value
        return list(query.columns), rows


def _allowed_values(store: Store, values_query: str) -> AllowedValues:
    names: dict[Any, set[str]] = {}
    labels: dict[Any, str | None] = {}
    for row in store.select(values_query):
        value = row["value"]
        known = names.setdefault(value, set())
        labels.setdefault(value, row.get("label"))
        for name in (row.get("label"), row.get("altLabel"), str(plain(value))):
            if name is not None:
                known.add(str(name).lower())
        if isinstance(value, IRI):
            known.update({_short(value).lower(), _short(value).split(":", 1)[-1].lower()})
    allowed = [AllowedValue(v, labels[v], frozenset(n)) for v, n in names.items()]
    return AllowedValues(sorted(allowed, key=lambda a: a.code.lower()))


def parse_cli_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise QueryParameterError(f"--param takes KEY=VALUE; got {pair!r}")
        key, value = pair.split("=", 1)
        params[key.strip()] = value
    return params


def plain(value: Any) -> Any:
    if isinstance(value, IRI):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    return value


#: the formats a named query's answer is given in, by name, with their media types (the HTTP API negotiates these)
FORMATS = {"json": "application/json", "csv": "text/csv", "tsv": "text/tab-separated-values", "xml": "application/sparql-results+xml"}


def result_document(name: str, columns: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON answer of a named query, the same from the CLI and over HTTP: every column in
    every row, null where the query left it unbound."""
    return {"query": name, "columns": list(columns), "rows": [{c: plain(r.get(c)) for c in columns} for r in rows]}


def format_table(columns: list[str], rows: list[dict[str, Any]], fmt: str = "table", name: str = "") -> str:
    """The answer as text: ``json`` (``result_document``), ``csv`` and ``tsv`` (a header of the
    columns, plain values, empty where unbound), ``xml`` (SPARQL Query Results XML, typed terms)
    or an aligned ``table`` for the terminal."""
    if fmt == "json":
        return json.dumps(result_document(name, columns, rows), indent=2, ensure_ascii=False)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else plain(row.get(c)) for c in columns])
        return out.getvalue().rstrip("\n")
    if fmt == "tsv":
        # a TSV cell cannot hold a tab or a line break: they become spaces, as spreadsheets expect
        cell = lambda v: "" if v is None else re.sub(r"[\t\r\n]+", " ", str(plain(v)))  # noqa: E731
        return "\n".join(["\t".join(columns)] + ["\t".join(cell(row.get(c)) for c in columns) for row in rows])
    if fmt == "xml":
        return _results_xml(columns, rows)
    cells = [[_short(row.get(c)) for c in columns] for row in rows]
    widths = [min(60, max([len(c)] + [len(r[i]) for r in cells])) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)), "-+-".join("-" * w for w in widths)]
    for r in cells:
        lines.append(" | ".join((v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(r, widths)))
    lines.append(f"({len(rows)} rows)")
    return "\n".join(lines)


def _results_xml(columns: list[str], rows: list[dict[str, Any]]) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<sparql xmlns="http://www.w3.org/2005/sparql-results#">', "  <head>"]
    lines += [f'    <variable name="{xml_escape(c)}"/>' for c in columns]
    lines += ["  </head>", "  <results>"]
    for row in rows:
        lines.append("    <result>")
        for column in columns:
            if row.get(column) is None:
                continue  # an unbound variable has no binding element
            term = python_to_term(row[column])
            if isinstance(row[column], IRI):
                body = f"<uri>{xml_escape(term.value)}</uri>"
            elif term.datatype.value == "http://www.w3.org/2001/XMLSchema#string":
                body = f"<literal>{xml_escape(term.value)}</literal>"
            else:
                body = f'<literal datatype="{xml_escape(term.datatype.value)}">{xml_escape(term.value)}</literal>'
            lines.append(f'      <binding name="{xml_escape(column)}">{body}</binding>')
        lines.append("    </result>")
    lines += ["  </results>", "</sparql>"]
    return "\n".join(lines)


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = str(plain(value))
    for prefix, iri in (("crlmd:", paths.CRLMD), ("crlm:", paths.CRLM)):
        if text.startswith(iri):
            return prefix + text[len(iri):]
    return text


__all__ = ["AllowedValue", "FORMATS", "QueryLibrary", "NamedQuery", "Parameter", "QueryParameterError", "QueryError", "format_table",
           "parse_cli_params", "result_document"]
