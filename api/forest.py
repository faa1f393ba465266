"""Forest plots of ratio comparisons (hazard and odds ratios with their CIs), drawn by matplotlib as SVG
on the server: the page shows them without JavaScript and prints them as vectors.

One plot per (endpoint, kind of ratio): points at the estimate, lines across the CI, a log axis with
the line of no effect at 1. Conflicting figures are kept (each is a row); the table beside the plot flags them.
"""

from __future__ import annotations

import io
import math
import re
import threading
from functools import lru_cache
from typing import Any, Iterable

_LOCK = threading.Lock()  # matplotlib's font cache and text layout are not documented as thread-safe
_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def _row_label(row: dict[str, Any], with_study: bool) -> str:
    detail = row.get("label") or row["id"]
    if ":" in detail:  # "EORTC 40983: PFS hazard ratio, …": the study is named apart (or is the page's)
        detail = detail.split(":", 1)[1].strip()
    text = f"{row.get('studyLabel')} · {detail}" if with_study else detail
    # shortened in the middle: the end often says which population ("(ITT)", "(eligible patients)")
    return text if len(text) <= 56 else text[:30].rstrip() + "…" + text[-25:].lstrip()


def forest_svg(rows: list[dict[str, Any]], title: str, axis_label: str, with_study: bool = False) -> str:
    """An SVG forest plot of ``rows`` (each with value, ciLower, ciUpper > 0), as an inline ``<svg>`` element."""
    key = tuple((r["id"], r["value"], r["ciLower"], r["ciUpper"], _row_label(r, with_study)) for r in rows)
    return _draw(key, title, axis_label)


@lru_cache(maxsize=256)  # the graph is read-only while the service runs: a plot never changes
def _draw(rows: tuple[tuple[str, float, float, float, str], ...], title: str, axis_label: str) -> str:
    from matplotlib.figure import Figure  # the object API only: no pyplot state shared between threads
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    with _LOCK:
        height = 1.0 + 0.34 * len(rows)
        figure = Figure(figsize=(10, height))
        # the labels take the left half, the plot the right: long labels never squeeze the axes
        axes = figure.add_axes((0.52, 0.7 / height, 0.45, 1 - 0.9 / height))
        ys = list(range(len(rows)))[::-1]
        values = [r[1] for r in rows]
        lows = [r[2] for r in rows]
        highs = [r[3] for r in rows]
        axes.hlines(ys, lows, highs, color="#1f3b73", linewidth=2)
        axes.plot(values, ys, "s", color="#1f3b73", markersize=7)
        axes.axvline(1.0, color="#555555", linestyle="--", linewidth=1)
        axes.set_xscale("log")
        low, high = min(lows + [1.0]), max(highs + [1.0])
        axes.set_xlim(low / 1.25, high * 1.25)
        ticks = _ticks(low / 1.25, high * 1.25)
        axes.xaxis.set_major_locator(FixedLocator(ticks))
        axes.xaxis.set_minor_locator(NullLocator())
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xticklabels([f"{t:g}" for t in ticks])
        axes.set_yticks(ys)
        axes.set_yticklabels([f"{r[4]}   {r[1]:g} ({r[2]:g}–{r[3]:g})" for r in rows], fontsize=8.5)
        axes.set_ylim(-0.7, len(rows) - 0.3)
        axes.set_xlabel(axis_label, fontsize=9)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    svg = _XML_PROLOGUE.sub("", out.getvalue(), count=1)
    # a name for screen readers; the table beside the plot holds the same numbers
    return svg.replace("<svg ", f'<svg role="img" aria-label="Forest plot: {_escape(title)}" class="forest" ', 1)


def _ticks(low: float, high: float) -> list[float]:
    candidates: Iterable[float] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 50, 100)
    inside = [t for t in candidates if low <= t <= high]
    if len(inside) > 8:
        inside = [t for t in inside if math.log10(t) % 1 in (0.0,) or t in (0.5, 2, 5)]
    return inside or [1.0]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
