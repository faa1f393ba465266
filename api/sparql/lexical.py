"""The lexical guard: what a query is and whether it is safe to hand to the engine, read from its tokens.

Cheap refusals that need no engine: empty text, updates, ``SERVICE``, absurd nesting and
operator chains (Oxigraph's parser recurses once per nesting level or chained operator, so
thousands of them overflow a worker's stack). Everything here is linear in the query's
length; the routes run it off the event loop, after the size limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import Refusal

UPDATE_REFUSED = "SPARQL Update is not accepted"
READ_ONLY = "this endpoint is read-only: it answers queries (SELECT, ASK, CONSTRUCT, DESCRIBE) and never changes the graph"

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n\r]*)
  | (?P<string>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\" | '''(?:[^'\\]|\\.|'(?!''))*'''
              | "(?:[^"\\\n\r]|\\.)*" | '(?:[^'\\\n\r]|\\.)*')
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][^\s{}()\[\];,.<>"'=!&|+*/^#]+)
  | (?P<lang>@[A-Za-z]+(?:-[A-Za-z0-9]+)*)
  | (?P<bnode>_:[^\s{}()\[\];,<>"'#]+)
  | (?P<name>[^\s{}()\[\];,<>"'\#?$@:=!&|+*/^]+(?::[^\s{}()\[\];,<>"'\#=!&|+*/^]*)?)
  | (?P<pname>:[^\s{}()\[\];,<>"'\#=!&|+*/^]*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# A run of name characters is one token, whatever follows it, so tokenizing is linear: with
# "a prefix, then ':'" and "a word" as separate alternatives, a long run without a colon
# ("-" * 50000) was rescanned from every position (13 s of regex on the event loop).
# A run with a colon is a prefixed name; in a run without one, the bare words are its
# [A-Za-z_][A-Za-z0-9_]* pieces ("1SERVICE" holds SERVICE, as the SPARQL lexer reads it).
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
UPDATE_KEYWORDS = {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH"}
QUERY_FORMS = {"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"}
_UNICODE_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def keywords(text: str) -> list[str]:
    """Bare words of a query (upper-cased), outside strings, IRIs, comments,
    variables, prefixed names, blank nodes and language tags."""
    words = []
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "name" and ":" not in match.group():
            words.extend(w.upper() for w in _WORD.findall(match.group()))
    return words


@dataclass(frozen=True)
class QueryShape:
    form: str | None  # SELECT, ASK, CONSTRUCT, DESCRIBE, or None if not recognisable
    update: str | None  # the update keyword the text starts with
    service: bool
    has_dataset: bool  # FROM / FROM NAMED


def inspect_query(text: str) -> QueryShape:
    """What the text is, read lexically (the engine still parses it): enough to
    refuse updates and SERVICE before anything runs and to negotiate early.
    SPARQL allows \\u escapes anywhere, so the unescaped text is checked too."""
    words = keywords(text)
    unescaped = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)
    if unescaped != text:
        words_unescaped = keywords(unescaped)
    else:
        words_unescaped = words
    first = next((w for w in words if w not in ("BASE", "PREFIX")), None)
    first_u = next((w for w in words_unescaped if w not in ("BASE", "PREFIX")), None)
    update = first if first in UPDATE_KEYWORDS else (first_u if first_u in UPDATE_KEYWORDS else None)
    form = first if first in QUERY_FORMS else None
    service = "SERVICE" in words or "SERVICE" in words_unescaped
    return QueryShape(form=form, update=update, service=service, has_dataset="FROM" in words)



MAX_NESTING = 200
_OPENERS, _CLOSERS = "{([", "})]"
MAX_OPERATORS = 20_000
# Every operator chains in the parser: the boolean ones, comparisons, arithmetic (20 000 "+" held a
# worker for the whole time limit, a 1 MB chain killed it) and property-path operators.
_ONE_OPERATOR = set("!=<>+-*/^")
_HALF_OPERATOR = set("&|")  # && and || are one operator in two characters (a lone | is a path alternative)
_CHAIN_WORDS = ("UNION", "MINUS")


def operator_count(text: str, limit: int = MAX_OPERATORS) -> int:
    """Operators outside strings, IRIs and comments (stops counting past ``limit``). A ``-`` inside
    a bare word or variable counts too: the tokenizer keeps ``1-1-1`` as one word, the parser does not."""
    halves = 0
    glued_to = -1  # where an operator character that "=" completes (!=, <=, >=) ended
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        token = match.group()
        if kind == "other":
            if token in _HALF_OPERATOR:
                halves += 1
            elif token == "=" and match.start() == glued_to:
                pass
            elif token in _ONE_OPERATOR:
                halves += 2
                if token in "!<>":
                    glued_to = match.end()
        elif kind == "name":
            if token.upper() in _CHAIN_WORDS:
                halves += 2
            elif ":" not in token:
                halves += 2 * token.count("-")
        elif kind == "var":
            halves += 2 * token.count("-")
        if halves > 2 * limit:
            return limit + 1
    return halves // 2


def nesting_depth(text: str, limit: int = MAX_NESTING) -> int:
    """Deepest nesting of {}, () and [] outside strings, IRIs and comments (stops counting past ``limit``)."""
    depth = deepest = 0
    for match in _TOKEN.finditer(text):
        if match.lastgroup != "other":
            continue
        char = match.group()
        if char in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
        elif char in _CLOSERS:
            depth = max(0, depth - 1)
    return deepest


def check_query(text: str) -> QueryShape:
    """Refusals that do not need the engine: empty text, absurd nesting or chains, updates, SERVICE."""
    if not text.strip():
        raise Refusal(400, "Missing query", "the query is empty", "query", "required")
    if nesting_depth(text) > MAX_NESTING:
        raise Refusal(400, "Query nested too deeply", f"the query nests groups or expressions more than {MAX_NESTING} levels deep", "query", "max-nesting")
    if operator_count(text) > MAX_OPERATORS:
        # long flat chains recurse in the parser too; the workers' large stack takes far more than this
        raise Refusal(400, "Query too complex", f"the query chains more than {MAX_OPERATORS} operators "
                      "(boolean, comparison, arithmetic, path, UNION, MINUS)", "query", "max-operators")
    shape = inspect_query(text)
    if shape.update:
        raise Refusal(400, UPDATE_REFUSED, f"{shape.update} is an update operation; " + READ_ONLY, "query", "read-only")
    if shape.service:
        raise Refusal(400, "SERVICE is not allowed", "federated queries (SERVICE) are disabled on this endpoint: it never fetches other endpoints", "query", "no-service")
    return shape
