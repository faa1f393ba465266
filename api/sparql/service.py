"""``SparqlService``: the endpoint's state (worker pool or remote proxy, limits) behind its router.

The app builds one per store: ``SparqlService(settings, store)``, includes ``.router``,
calls ``.start()`` before serving (the workers load the dataset) and ``.close()`` at
shutdown; ``.status()`` is for ``/health``.

Isolation (what keeps a few clients from denying service to everyone): no request holds a
thread of the shared thread pool while it waits. The lexical checks run, after a size check,
in two threads of the service's own; a query waits for a worker on the event loop; at most
``query_queue`` wait and each client address has at most ``query_per_client`` queries in
flight, past which requests are refused at once with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from crlm_kg.settings import Settings

from .errors import PoolBusy, Refusal
from .lexical import QueryShape, check_query
from .pool import WorkerPool
from .proxy import forward

CHECK_THREADS = 2


class SparqlService:
    def __init__(self, settings: Settings, store):
        self.settings = settings
        self.store = store
        self._pool: WorkerPool | None = None
        self._start_lock = threading.Lock()
        self._cpu = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="crlm-kg-sparql-check")
        self._lock = threading.Lock()
        self._checking = 0
        self._remote_in_flight = 0
        self._per_client: dict[str, int] = {}
        from .routes import build_router  # routes need the service's type only at call time

        self.router = build_router(self)

    # ----------------------------------------------------------------- life cycle

    @property
    def embedded(self) -> bool:
        """Queries run in worker processes on a copy of the store (else they go to its remote endpoint)."""
        return self.store.capabilities.in_process

    def start(self) -> None:
        """Start the worker processes and wait until they have loaded the dataset (blocking, seconds)."""
        with self._start_lock:
            if self.embedded and self._pool is None:
                # a store on disk is opened read-only by each worker (shared through the page cache, seconds to
                # open); an in-memory one is sent to each as N-Quads, which it loads into its own copy
                path = self.store.capabilities.on_disk
                dataset = str(path) if path is not None else self.store.dump()
                pool = WorkerPool(dataset, self.settings.query_workers, self.settings.worker_memory_mb,
                                  queue_size=self.settings.query_queue)
                pool.start()
                self._pool = pool

    def close(self) -> None:
        with self._start_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def status(self) -> dict:
        with self._lock:
            clients = {"clients_in_flight": len(self._per_client), "checks_in_flight": self._checking}
        if not self.embedded:
            return {"backend": "remote", "remote_in_flight": self._remote_in_flight, **clients}
        pool = self._pool
        if pool is None:
            return {"backend": "embedded", "workers": self.settings.query_workers, "workers_alive": 0, "respawns": 0,
                    "queue_depth": 0, "queue_limit": self.settings.query_queue, "started": False, **clients}
        return {"backend": "embedded", **pool.status(), "started": True, **clients}

    # ----------------------------------------------------------------- per request

    @contextmanager
    def client_slot(self, client: str):
        """One of ``query_per_client`` places for this client address (429 when all are taken)."""
        limit = self.settings.query_per_client
        with self._lock:
            if self._per_client.get(client, 0) >= limit:
                raise Refusal(429, "Too many queries from this client",
                              f"this client already has {limit} queries running or waiting (CRLM_KG_QUERY_PER_CLIENT); retry when one has finished",
                              "query", "per-client-limit", headers={"Retry-After": "1"})
            self._per_client[client] = self._per_client.get(client, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._per_client[client] - 1
                if left:
                    self._per_client[client] = left
                else:
                    del self._per_client[client]

    async def check(self, text: str) -> QueryShape:
        """The lexical guard, off the event loop; its size limit first, on the loop (it is O(1) for str)."""
        limit = self.settings.max_query_bytes
        if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
            raise Refusal(400, "Query too long", f"the query is longer than {limit} bytes, the limit of this endpoint (CRLM_KG_MAX_QUERY_BYTES)",
                          "query", "max-length")
        with self._lock:
            if self._checking >= max(CHECK_THREADS, self.settings.query_queue):
                raise PoolBusy(f"{self._checking} queries are being checked")
            self._checking += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._cpu, check_query, text)
        finally:
            with self._lock:
                self._checking -= 1

    async def run(self, job: dict) -> tuple:
        """A reply (see ``render.py``) for ``job``; raises ``QueryTimeout``, ``PoolBusy`` or ``WorkerCrashed``."""
        job = {**job, "max_results": self.settings.max_results, "max_bytes": self.settings.max_answer_bytes}
        if not self.embedded:
            return await self._forward(job)
        if self._pool is None:  # an app served without its lifespan: start once, off the loop
            await asyncio.get_running_loop().run_in_executor(self._cpu, self.start)
        pool = self._pool
        if pool is None:
            raise PoolBusy("the query service is shutting down")
        return await pool.run(job, self.settings.query_timeout)

    async def _forward(self, job: dict) -> tuple:
        with self._lock:
            if self._remote_in_flight >= self.settings.query_workers + self.settings.query_queue:
                raise PoolBusy(f"{self._remote_in_flight} queries are already with the remote store")
            self._remote_in_flight += 1
        try:
            capabilities = self.store.capabilities
            return await forward(capabilities.endpoint, capabilities.dataset_graphs, job, self.settings.query_timeout, self._cpu)
        finally:
            with self._lock:
                self._remote_in_flight -= 1
