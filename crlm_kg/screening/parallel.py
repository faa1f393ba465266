"""Screening a large cohort on every core: slices of the cohort in forked processes.

The evaluation holds the GIL, so threads would not help. The processes are forked after the
evidence lookup has read the graph's structure: each inherits the store and the structure
(copy-on-write) instead of loading them again, and receives only its slice's bounds.
"""

from __future__ import annotations

import multiprocessing
from typing import Any, Callable

from .. import patients
from . import engine

_SHARED: dict[str, Any] = {}  # what the forked processes inherit: set before the pool starts, read-only after


def _slice(bounds: tuple[int, int]) -> tuple[int, int, dict[str, Any]]:
    start, end = bounds
    s = _SHARED
    skip = {i - start for i in s["skip"] if start <= i < end}
    part = engine.screen_slice(s["lookup"], s["items"][start:end], s["holders"], s["statuses"], s["limits"],
                               s["labels"][start:end], skip, offset=start)
    return start, end, part


def screen_in_processes(lookup, items: list[Any], holders: list[dict[str, Any]], statuses: tuple[str, ...], limits: patients.Limits,
                        labels: list[Any], skip: set[int], workers: int, progress: Callable[[int], None] | None) -> list[dict[str, Any]]:
    lookup.warm()
    _SHARED.update(lookup=lookup, items=items, holders=holders, statuses=statuses, limits=limits, labels=labels, skip=skip)
    # a few slices per process: each slice rebuilds the per-slice caches (shared leaves and verdicts), so
    # slices of one batch each cost more than they gain; a few per process still keep the progress bar moving
    size = max(engine.BATCH, -(-len(items) // (workers * 3)))
    bounds = [(start, min(start + size, len(items))) for start in range(0, len(items), size)]
    parts: dict[int, dict[str, Any]] = {}
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for start, end, part in pool.imap_unordered(_slice, bounds):
                parts[start] = part
                if progress is not None:
                    progress(end - start)
    finally:
        _SHARED.clear()
    return [parts[start] for start, _ in bounds]
