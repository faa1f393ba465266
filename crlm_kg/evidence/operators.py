"""The comparison operators of the criterion model: one table, every use derived from it.

A criterion (or score component) names a patient characteristic, an operator
(``crlm:comparison``) and either a threshold (``crlm:thresholdValue``) or a set
of required coded values (``crlm:requiredValue``). This table is the only place
where an operator's meaning is written down; the SPARQL of the lookup's leaf
query, the comparison logic of the named queries ``trials-for-patient.rq`` and
``trials-meeting-criterion.rq`` (checked by ``tests/test_evidence_operators.py``)
and the Python comparison used for implied facts all come from it. An operator
that is not in the table compares as *unknown* (an unbound SPARQL variable,
``None`` in Python), never as some default comparison.
"""

from __future__ import annotations

import operator as _op
from dataclasses import dataclass
from typing import Any, Callable

from .. import paths


@dataclass(frozen=True)
class Operator:
    name: str  # local name in the ontology (crlm:Equal)
    sparql: str  # SPARQL comparison between the patient value and the threshold
    symbol: str  # how the rule is printed
    python: Callable[[Any, Any], bool]

    @property
    def iri(self) -> str:
        return paths.CRLM + self.name


OPERATORS: tuple[Operator, ...] = (
    Operator("Equal", "=", "=", _op.eq),
    Operator("NotEqual", "!=", "≠", _op.ne),
    Operator("LessThan", "<", "<", _op.lt),
    Operator("LessThanOrEqual", "<=", "≤", _op.le),
    Operator("GreaterThan", ">", ">", _op.gt),
    Operator("GreaterThanOrEqual", ">=", "≥", _op.ge),
)
BY_NAME = {o.name: o for o in OPERATORS}

# The two operators that, on a criterion with required coded values, test membership instead of comparing.
MEMBERSHIP = {"Equal": "?inRequired", "NotEqual": "!?inRequired"}
UNBOUND = "?unknownOperator"  # never bound: an operator outside the table leaves ?holds unbound


def symbol(name: str | None) -> str:
    operator = BY_NAME.get(name or "")
    return operator.symbol if operator else f"?{name}"


def holds(name: str | None, value: Any, threshold: Any) -> bool | None:
    """Python comparison of a value with a threshold; None when the operator or the types do not allow one."""
    operator = BY_NAME.get(name or "")
    if operator is None:
        return None
    try:
        return bool(operator.python(value, threshold))
    except TypeError:
        return None


def leaf_binds(indent: str = "  ") -> str:
    """The BIND lines of the leaf query: one BIND per operator, then a chain of IF that only chooses among
    variables (Virtuoso cannot compile a comparison inside IF or COALESCE)."""
    lines = []
    for o in OPERATORS:
        var = f"?cmp{o.name}"
        if o.name in MEMBERSHIP:
            lines.append(f"BIND(?pv {o.sparql} ?thr AS {var}Threshold)")
            lines.append(f"BIND({MEMBERSHIP[o.name]} AS {var}Required)")
            lines.append(f"BIND(IF(BOUND(?thr), {var}Threshold, {var}Required) AS {var})")
        else:
            lines.append(f"BIND(?pv {o.sparql} ?thr AS {var})")
    chain = UNBOUND
    for o in reversed(OPERATORS):
        chain = f"IF(?op = crlm:{o.name}, ?cmp{o.name}, {chain})"
    lines.append(f"BIND({chain} AS ?holds)")
    return "\n".join(indent + line for line in lines)


def inline_expression(value: str = "?pv", threshold: str = "?thr", required: str | None = "?inRequired", op: str = "?op") -> str:
    """One nested IF expression (for the named queries, which run on the embedded store and are read by people)."""
    chain = UNBOUND
    for o in reversed(OPERATORS):
        comparison = f"{value} {o.sparql} {threshold}"
        if required is not None and o.name in MEMBERSHIP:
            membership = MEMBERSHIP[o.name].replace("?inRequired", required)
            comparison = f"IF(BOUND({threshold}), {comparison}, {membership})"
        chain = f"IF({op} = crlm:{o.name}, {comparison},\n     {chain})"
    return chain


# The named queries whose comparison logic is generated from this table (between the markers below);
# ``python -m crlm_kg.evidence.operators`` rewrites them, tests/test_evidence_operators.py checks them.
BEGIN_MARK = "  # BEGIN generated comparison: crlm_kg/evidence/operators.py (python -m crlm_kg.evidence.operators)"
END_MARK = "  # END generated comparison"
NAMED_QUERY_COMPARISONS = {
    "trials-for-patient": {"value": "?pv", "threshold": "?thr", "required": "?inRequired", "result": "?holds"},
    "trials-meeting-criterion": {"value": "?value", "threshold": "?threshold", "required": None, "result": "?holds"},
}


def generated_block(name: str) -> str:
    spec = NAMED_QUERY_COMPARISONS[name]
    expression = inline_expression(spec["value"], spec["threshold"], spec["required"])
    return f"{BEGIN_MARK}\n  BIND({expression}\n    AS {spec['result']})\n{END_MARK}"


def regenerate(directory) -> list[str]:
    """Rewrite the generated block of each named query in ``directory``; returns the files changed."""
    from pathlib import Path

    changed = []
    for name in NAMED_QUERY_COMPARISONS:
        path = Path(directory) / f"{name}.rq"
        text = path.read_text(encoding="utf-8")
        start, end = text.index(BEGIN_MARK), text.index(END_MARK) + len(END_MARK)
        new = text[:start] + generated_block(name) + text[end:]
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(str(path))
    return changed


if __name__ == "__main__":
    print("\n".join(regenerate(paths.QUERIES_DIR)) or "named queries up to date")
