"""The parent side of the worker pool: processes that each open the dataset, one query at a time each.

The dataset is either the path of an on-disk Oxigraph store (``str``), which every worker opens read-only,
or N-Quads (``bytes``), which every worker loads into a copy of its own.

* Requests wait for a worker on the event loop (a future per waiter), never in a thread of the
  shared thread pool; at most ``queue_size`` wait, and the next is refused at once (``PoolBusy``,
  answered 503 with ``Retry-After``).
* Replies are read when the worker's pipe is readable (``loop.add_reader``), so a waiting
  request costs no thread either.
* A query that passes the time limit has its worker killed (SIGKILL).
* The pool heals itself: a supervisor thread watches every worker process and starts a
  replacement for each one that dies, whatever killed it; workers that die on their own soon
  after starting (a broken dataset, memory too tight) are replaced with exponential backoff
  instead of in a tight loop.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
import weakref
from collections import deque

from .errors import PoolBusy, QueryTimeout, WorkerCrashed
from .worker import worker_main

log = logging.getLogger("crlm_kg.api.sparql")

HEALTHY_SECONDS = 10.0  # a worker that served this long after loading died of a query, not of its start-up
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0


class _Worker:
    def __init__(self, ctx, dataset: bytes | str, memory_mb: int):
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=worker_main, args=(child, dataset, memory_mb), daemon=True, name="crlm-kg-sparql")
        self.process.start()
        child.close()
        self.ready_at: float | None = None
        self.killed_by_pool = False

    def wait_ready(self, timeout: float) -> None:
        """Block until the worker has loaded the dataset (start-up and supervisor threads only)."""
        if not self.conn.poll(timeout):
            raise RuntimeError("a SPARQL worker did not load the dataset in time")
        message = self.conn.recv()
        if not (isinstance(message, tuple) and message[0] == "ready"):
            raise RuntimeError(f"a SPARQL worker failed to start: {message!r}")
        self.ready_at = time.monotonic()

    def kill(self) -> None:
        """SIGKILL without waiting: the supervisor reaps the process when its sentinel fires."""
        try:
            if self.process.is_alive():
                self.process.kill()
        except (OSError, ValueError):  # already reaped
            pass


def _kill_all(workers: set) -> None:
    for worker in list(workers):
        worker.kill()


class WorkerPool:
    def __init__(self, dataset: bytes | str, size: int, memory_mb: int = 0, queue_size: int = 16, start_timeout: float = 120.0):
        self._ctx = multiprocessing.get_context("spawn")
        self._dataset = dataset
        self._memory_mb = memory_mb
        self._start_timeout = start_timeout
        self.size = size
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._workers: set[_Worker] = set()  # every process not yet reaped, starting ones included
        self._idle: deque[_Worker] = deque()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()
        self._closed = False
        self.respawns = 0
        self._failures = 0  # consecutive workers that died on their own soon after starting
        self._next_spawn = 0.0
        self._wake_r, self._wake_w = os.pipe()
        self._supervisor: threading.Thread | None = None
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)

    # ----------------------------------------------------------------- life cycle

    def start(self) -> None:
        """Start every worker and wait until each has loaded the dataset (a failure here stops start-up)."""
        started = [self._spawn() for _ in range(self.size)]
        try:
            for worker in started:
                worker.wait_ready(self._start_timeout)
        except Exception:
            _kill_all(self._workers)
            raise
        for worker in started:
            self._release(worker)
        self._supervisor = threading.Thread(target=self._supervise, name="crlm-kg-sparql-supervisor", daemon=True)
        self._supervisor.start()

    def close(self) -> None:
        self._closed = True
        self._wake()
        with self._lock:
            workers, waiters = list(self._workers), list(self._waiters)
            self._waiters.clear()
            self._idle.clear()
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_fail, future, PoolBusy("the query service is shutting down"))
            except RuntimeError:  # that loop is closed
                pass
        for worker in workers:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        for worker in workers:
            worker.process.join(1)
            worker.kill()
            worker.process.join(5)
        if self._supervisor is not None:
            self._supervisor.join(5)
        with self._lock:
            self._workers.clear()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def status(self) -> dict:
        with self._lock:
            ready = [w for w in self._workers if w.ready_at is not None and w.process.is_alive()]
            return {
                "workers": self.size,
                "workers_alive": len(ready),
                "workers_idle": len(self._idle),
                "workers_starting": sum(1 for w in self._workers if w.ready_at is None),
                "respawns": self.respawns,
                "queue_depth": len(self._waiters),
                "queue_limit": self.queue_size,
                "respawn_backoff_seconds": round(max(0.0, self._next_spawn - time.monotonic()), 3),
            }

    # ----------------------------------------------------------------- running a job

    async def run(self, job: dict, timeout: float) -> tuple:
        """Run ``job`` on a worker; ``timeout`` bounds the wait for a worker and, again, the query
        (whose worker is killed when it runs over)."""
        worker = await self._acquire(timeout)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            worker.conn.send(job)  # an idle worker is blocked in recv: this completes as it reads
            reply = await _receive(worker.conn, deadline)
            if reply[0] == "ok":
                pieces = [await _receive(worker.conn, deadline, raw=True) for _ in range(reply[2])]
                reply = ("ok", reply[1], b"".join(pieces))
        except QueryTimeout:
            self._kill(worker)
            raise
        except (EOFError, OSError):
            self._kill(worker)
            raise WorkerCrashed() from None
        except BaseException:  # cancelled half-way: the worker's pipe is in an unknown state
            self._kill(worker)
            raise
        self._release(worker)
        return reply

    async def _acquire(self, timeout: float) -> _Worker:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise PoolBusy("the query service is shutting down")
            while self._idle:
                worker = self._idle.popleft()
                if worker.process.is_alive():
                    return worker
            if len(self._waiters) >= self.queue_size:
                raise PoolBusy(f"{len(self._waiters)} queries already wait for a worker")
            future = loop.create_future()
            self._waiters.append((loop, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise PoolBusy("every worker stayed busy") from None
        finally:
            with self._lock:
                try:
                    self._waiters.remove((loop, future))
                except ValueError:
                    pass

    def _release(self, worker: _Worker) -> None:
        """Give ``worker`` to the longest waiter, or make it idle. Safe from any thread."""
        with self._lock:
            if self._closed:
                worker.kill()
                return
            while self._waiters:
                loop, future = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._deliver, future, worker)
                    return
                except RuntimeError:  # the waiter's loop is closed
                    continue
            self._idle.append(worker)

    def _deliver(self, future: asyncio.Future, worker: _Worker) -> None:
        if future.done():  # the waiter gave up meanwhile: the next one gets the worker
            self._release(worker)
        else:
            future.set_result(worker)

    def _kill(self, worker: _Worker) -> None:
        with self._lock:
            worker.killed_by_pool = True
            self.respawns += 1
        worker.kill()
        self._wake()

    def _wake(self) -> None:
        """Make the supervisor look at the workers now rather than at its next tick."""
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # closed: the pool is shutting down
            pass

    # ----------------------------------------------------------------- healing

    def _supervise(self) -> None:
        while not self._closed:
            with self._lock:
                workers = list(self._workers)
            now = time.monotonic()
            missing = self.size - len(workers)
            if missing > 0 and now >= self._next_spawn:
                for _ in range(missing):
                    self._spawn_in_background()
                continue
            wait = min(1.0, max(0.05, self._next_spawn - now)) if missing > 0 else 1.0
            ready = multiprocessing.connection.wait([w.process.sentinel for w in workers] + [self._wake_r], wait)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            for worker in workers:
                if worker.process.sentinel in ready:
                    self._reap(worker)

    def _reap(self, worker: _Worker) -> None:
        worker.process.join(1)
        try:
            worker.conn.close()
        except OSError:
            pass
        now = time.monotonic()
        with self._lock:
            self._workers.discard(worker)
            try:
                self._idle.remove(worker)
            except ValueError:
                pass
            if worker.killed_by_pool or self._closed:
                return
            self.respawns += 1  # died on its own (memory limit, crash, killed from outside)
            if worker.ready_at is None or now - worker.ready_at < HEALTHY_SECONDS:
                self._failures += 1
                self._next_spawn = now + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
            else:
                self._failures = 0
        log.warning("a SPARQL worker died (exit code %s); replacing it", worker.process.exitcode)

    def _spawn(self) -> _Worker:
        worker = _Worker(self._ctx, self._dataset, self._memory_mb)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _spawn_in_background(self) -> None:
        try:
            worker = self._spawn()
        except OSError:
            log.exception("could not start a SPARQL worker")
            with self._lock:
                self._failures += 1
                self._next_spawn = time.monotonic() + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
            return

        def wait() -> None:
            try:
                worker.wait_ready(self._start_timeout)
            except (RuntimeError, EOFError, OSError):
                log.exception("a replacement SPARQL worker failed to start")
                worker.kill()  # the supervisor reaps it and backs off
                return
            self._release(worker)

        threading.Thread(target=wait, name="crlm-kg-sparql-respawn", daemon=True).start()


def _fail(future: asyncio.Future, exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


async def _receive(conn, deadline: float, raw: bool = False):
    """The next message from a worker, waiting on the event loop until ``deadline``."""
    loop = asyncio.get_running_loop()
    if not conn.poll(0):
        readable = loop.create_future()
        fd = conn.fileno()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            await asyncio.wait_for(readable, max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            raise QueryTimeout() from None
        finally:
            loop.remove_reader(fd)
            # uvloop (libuv) leaves a watched descriptor non-blocking; ``Connection`` reads a message with blocking
            # reads, and a message still arriving would fail half-read (EAGAIN) and look like a dead worker
            os.set_blocking(fd, True)
    return conn.recv_bytes() if raw else conn.recv()
