"""The child side of the worker pool: a process that opens the dataset and answers jobs.

Oxigraph cannot interrupt a running query, so user queries never run in the server process;
the parent kills a worker that runs over the time limit (``pool.py``). This module imports
no web framework: a worker starts in a fraction of a second plus the dataset load.
"""

from __future__ import annotations

import threading
from typing import Any

import pyoxigraph as ox

from .render import render

# Oxigraph's parser recurses once per nesting level or chained operator: queries run on a
# thread with a large stack so that deep but legal queries get an answer, not a crashed worker.
WORKER_STACK_BYTES = 256 * 1024 * 1024
# An answer travels to the parent in pieces, so that the parent's event loop never blocks on
# one large read.
CHUNK_BYTES = 1 << 20


def execute(store: ox.Store, job: dict) -> tuple:
    """Run one job against ``store``: ("ok", media, body) or ("error", status, title, detail, rule)."""
    kwargs: dict[str, Any] = {"base_iri": job["base_iri"]}
    if job["default_graphs"] is not None or job["named_graphs"] is not None:
        kwargs["default_graph"] = [ox.NamedNode(g) for g in job["default_graphs"] or []]
        kwargs["named_graphs"] = [ox.NamedNode(g) for g in job["named_graphs"] or []]
    elif not job["has_dataset"]:
        kwargs["use_default_graph_as_union"] = True
    try:
        result = store.query(job["query"], **kwargs)
        return render(result, job)
    except SyntaxError as exc:
        return ("error", 400, "Malformed query", f"SPARQL syntax error: {exc}"[:2000], "syntax")
    except (OSError, RuntimeError, ValueError) as exc:
        return ("error", 400, "Query evaluation failed", str(exc)[:2000], "query")


def worker_main(conn, dataset: bytes | str, memory_mb: int) -> None:  # pragma: no cover - runs in a child
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    if memory_mb:
        try:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):
            pass  # no address-space limit on this platform: the time limit still holds
    if isinstance(dataset, str):  # an on-disk store, never written again: shared with the server through the page cache
        store = ox.Store.read_only(dataset)
    else:
        store = ox.Store()
        if dataset:
            store.load(dataset, format=ox.RdfFormat.N_QUADS)
    del dataset
    threading.stack_size(WORKER_STACK_BYTES)
    serving = threading.Thread(target=serve_jobs, args=(conn, store), name="crlm-kg-sparql-jobs")
    serving.start()
    serving.join()


def serve_jobs(conn, store: ox.Store) -> None:  # pragma: no cover - runs in a child
    """Answer jobs until the parent sends ``None`` or goes away. An "ok" reply is sent as
    ("ok", media, pieces) followed by that many byte strings."""
    conn.send(("ready",))  # no quad count: counting walks an on-disk store of millions of quads
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            reply = execute(store, job)
        except MemoryError:
            reply = ("error", 503, "Query too expensive", "the query ran out of memory", "memory")
        except Exception as exc:  # never let one query kill the loop silently
            reply = ("error", 500, "Query failed", f"{type(exc).__name__}: {exc}"[:2000], "query")
        try:
            if reply[0] == "ok":
                body = bytes(reply[2])
                pieces = [body[i:i + CHUNK_BYTES] for i in range(0, len(body), CHUNK_BYTES)] or [b""]
                conn.send(("ok", reply[1], len(pieces)))
                for piece in pieces:
                    conn.send_bytes(piece)
            else:
                conn.send(reply)
        except (OSError, ValueError):
            return
