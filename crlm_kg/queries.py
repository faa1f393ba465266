"""The library of named SPARQL queries in ``queries/``.

Each ``.rq`` file starts with a header of ``#`` comment lines::

    # title: Randomised trials in a resectability setting
    # description: Every RCT whose setting is the given one, with design and size.
    # param: setting | iri | Resectable | the resectability setting
    # param: minSize | integer | 100 | smallest sample size | optional
    # columns: study, label, design, randomised

Parameters are typed, converted from text with their declared type, and
bound as initial bindings (``substitutions`` on the embedded store, a VALUES
block of escaped terms on a remote one): never spliced into the query text.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from . import paths
from .store import IRI, QueryError, Store

PARAM_TYPES = ("iri", "entity", "string", "integer", "decimal", "boolean")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_LOCAL = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class QueryParameterError(ValueError):
    """A named query that does not exist, or a parameter that is missing or of the wrong type."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    example: str
    description: str
    optional: bool = False

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

    def bindings(self, raw: dict[str, Any]) -> dict[str, Any]:
        known = {p.name for p in self.parameters}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise QueryParameterError(
                f"query {self.name} has no parameter {unknown[0]!r}; its parameters are: {', '.join(sorted(known)) or 'none'}", unknown[0]
            )
        result = {}
        for param in self.parameters:
            if param.name in raw and raw[param.name] not in (None, ""):
                result[param.name] = param.convert(raw[param.name])
            elif not param.optional:
                raise QueryParameterError(f"query {self.name} needs parameter {param.name} ({param.type}, e.g. {param.example})", param.name)
        return result

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "parameters": [
                {"name": p.name, "type": p.type, "example": p.example, "description": p.description, "required": not p.optional}
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
        match = re.match(r"#\s*(title|description|param|columns):\s*(.*)$", line)
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
    columns = tuple(c.strip() for c in header["columns"][0].split(","))
    return NamedQuery(name, header["title"][0], " ".join(header["description"]), tuple(params), columns, path.read_text(encoding="utf-8"), path)


class QueryLibrary:
    def __init__(self, queries: dict[str, NamedQuery]):
        self.queries = queries

    @classmethod
    def load(cls, directory: Path = paths.QUERIES_DIR) -> "QueryLibrary":
        return cls({q.name: q for q in (parse_query_file(p) for p in sorted(directory.glob("*.rq")))})

    def all(self) -> list[NamedQuery]:
        return list(self.queries.values())

    def get(self, name: str) -> NamedQuery:
        if name not in self.queries:
            raise QueryParameterError(f"no named query {name!r}; `crlm-kg query` lists them", "name")
        return self.queries[name]

    def run(self, store: Store, name: str, raw_params: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
        query = self.get(name)
        bindings = query.bindings(raw_params)
        rows = store.select(query.text, bindings)
        for row in rows:  # the bound parameters are part of the answer even though the engine substituted them
            for key, value in bindings.items():
                if key in query.columns and key not in row:
                    row[key] = value
        return list(query.columns), rows


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


def format_table(columns: list[str], rows: list[dict[str, Any]], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps([{c: plain(r.get(c)) for c in columns if c in r} for r in rows], indent=2, ensure_ascii=False)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else plain(row.get(c)) for c in columns])
        return out.getvalue().rstrip("\n")
    cells = [[_short(row.get(c)) for c in columns] for row in rows]
    widths = [min(60, max([len(c)] + [len(r[i]) for r in cells])) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)), "-+-".join("-" * w for w in widths)]
    for r in cells:
        lines.append(" | ".join((v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(r, widths)))
    lines.append(f"({len(rows)} rows)")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = str(plain(value))
    for prefix, iri in (("crlmd:", paths.CRLMD), ("crlm:", paths.CRLM)):
        if text.startswith(iri):
            return prefix + text[len(iri):]
    return text


__all__ = ["QueryLibrary", "NamedQuery", "Parameter", "QueryParameterError", "QueryError", "format_table", "parse_cli_params"]
