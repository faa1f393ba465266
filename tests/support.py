"""What the tests share besides fixtures: the time factor of the machine, waiting on an
event instead of sleeping, the graph as the SPARQL workers see it, and uvicorn servers
whose output goes to a log file (its tail is attached to the report of a failing test).

``CRLM_KG_TIME_FACTOR`` (default 1) multiplies every time limit a test asserts and every
deadline it waits for: a slow or loaded machine sets 3 instead of editing the tests. When
pytest-xdist runs the suite on several workers (``make test``), they share the cores, so the
factor is multiplied by the number of workers.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import httpx
import pyoxigraph as ox
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class TestEnvironment(BaseSettings):
    """Variables only the test suite reads (the service's own are in ``crlm_kg.settings``)."""

    __test__ = False  # not a test class, whatever its name
    model_config = SettingsConfigDict(env_prefix="CRLM_KG_", frozen=True, extra="ignore")

    time_factor: float = Field(1.0, gt=0, description="multiplies the time limits the tests assert and the deadlines they wait for")
    fuzz_examples: int = Field(40, ge=1, description="schemathesis examples per operation and mode")


class XdistWorker(BaseSettings):
    """Set by pytest-xdist in each worker process (absent when the suite runs in one process)."""

    __test__ = False
    model_config = SettingsConfigDict(env_prefix="PYTEST_XDIST_", frozen=True, extra="ignore")

    worker_count: int = 1


ENV = TestEnvironment()
#: workers sharing the machine's cores with this one
SHARING = XdistWorker().worker_count


def scaled(seconds: float) -> float:
    """``seconds`` on this machine: a time limit or deadline times ``CRLM_KG_TIME_FACTOR``,
    times the xdist workers that share the cores."""
    return seconds * ENV.time_factor * SHARING


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something truthy (and return it); fail the test
    naming ``what`` when ``scaled(timeout)`` seconds pass first."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server the test started, and kill it if it does not stop within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# --------------------------------------------------------------------------- the graph the workers answer from

# Per named graph and predicate: the number of triples and a SHA-256 of their sorted lines.
# Blank nodes are written as "_:" (each worker parses its own copy, with its own labels), so
# the digest sees any added, removed or changed triple except a pure relabelling of blank
# nodes. The predicates are digested in chunks of about CHUNK triples so that each query
# stays well inside the workers' time limit on a loaded machine.
PREDICATE_COUNTS = "SELECT ?p (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?p ORDER BY STR(?p)"
DIGEST_QUERY = """
SELECT ?g ?p (COUNT(*) AS ?triples) (SHA256(GROUP_CONCAT(?line; separator="\\n")) AS ?sha256) WHERE {
  { SELECT ?g ?p ?line WHERE {
      VALUES ?p { %s }
      GRAPH ?g { ?s ?p ?o }
      BIND(IF(isBLANK(?s), "_:", STR(?s)) AS ?subject)
      BIND(IF(isBLANK(?o), "_:", IF(isLITERAL(?o), CONCAT(STR(?o), "^^", STR(DATATYPE(?o)), "@", LANG(?o)), STR(?o))) AS ?object)
      BIND(CONCAT(?subject, " ", ?object) AS ?line)
    } ORDER BY ?line }
} GROUP BY ?g ?p ORDER BY ?g ?p
"""
CHUNK = 4000
Digest = list[tuple[str, str, int, str]]


def _digest(select: Callable[[str], list[dict[str, str]]]) -> Digest:
    """The digest through ``select`` (a SPARQL query -> rows of plain string values)."""
    chunks: list[list[str]] = [[]]
    size = 0
    for row in select(PREDICATE_COUNTS):
        if size >= CHUNK:
            chunks.append([])
            size = 0
        chunks[-1].append(row["p"])
        size += int(row["n"])
    digest: Digest = []
    for chunk in chunks:
        values = " ".join(f"<{p}>" for p in chunk)
        digest += [(r["g"], r["p"], int(r["triples"]), r["sha256"]) for r in select(DIGEST_QUERY % values)]
    return sorted(digest)


def store_digest(store) -> Digest:
    """The digest of an in-process store (an ``EmbeddedStore`` or a ``pyoxigraph.Store``)."""
    if isinstance(store, ox.Store):
        def select(query: str) -> list[dict[str, str]]:
            result = store.query(query)
            return [{v.value: row[v].value for v in result.variables} for row in result]
    else:  # a crlm-kg Store, through its protocol
        def select(query: str) -> list[dict[str, str]]:
            return [{k: str(v) for k, v in row.items()} for row in store.select(query)]

    return _digest(select)


def worker_digest(client, workers: int) -> Digest:
    """The digest as the ``/sparql`` workers compute it, from their own copies of the graph.

    ``client`` is a ``TestClient`` or an ``httpx.Client`` with a base URL. Each query is sent
    ``workers`` times in a row (the pool hands out idle workers in turn, so each one answers)
    and the answers must be the same: a worker whose copy drifted fails here."""

    def select(query: str) -> list[dict[str, str]]:
        answers = []
        for _ in range(workers):
            response = client.get("/sparql", params={"query": query}, headers={"accept": "application/sparql-results+json"})
            assert response.status_code == 200, response.text[:500]
            answers.append([{name: term["value"] for name, term in row.items()} for row in response.json()["results"]["bindings"]])
        assert all(answer == answers[0] for answer in answers), f"the SPARQL workers disagree about the graph:\n{query}"
        return answers[0]

    digest = _digest(select)
    assert digest, "the workers hold no named graph"
    return digest


@functools.cache
def repository_digest() -> Digest:
    """The digest of a fresh load of the repository's files (once per test process)."""
    from crlm_kg.store import EmbeddedStore

    return store_digest(EmbeddedStore.from_repository())


# --------------------------------------------------------------------------- uvicorn with a log file

RUNNING_LOGS: dict[str, Path] = {}  # server name -> its log file, while it runs (read by the report hook)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def wait_healthy(proc: subprocess.Popen, base: str, name: str, log_file: Path, timeout: float) -> None:
    """Wait until ``base``/health answers 200; fail at once, with the log's tail, if ``proc`` exits first."""
    def healthy() -> bool:
        assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{log_tail(log_file)}"
        try:
            return httpx.get(base + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout, f"{name} to answer /health (log: {log_file})", interval=0.2)


@contextlib.contextmanager
def running_server(log_dir: Path, env: dict[str, str], *, name: str = "uvicorn", command: list[str] | None = None,
                   start_timeout: float = 60, cwd: Path = ROOT) -> Iterator[str]:
    """A real server on a free loopback port, its output in ``log_dir/<name>.log``; yields its
    base URL once ``/health`` answers. ``command`` (default: uvicorn on ``crlm_kg.api.app:create_app``)
    gets ``--port`` appended. Any failure while it runs shows the log's tail in the report."""
    port = free_port()
    command = command or [sys.executable, "-m", "uvicorn", "--factory", "crlm_kg.api.app:create_app", "--host", "127.0.0.1", "--log-level", "warning"]
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{name}.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_file, "wb") as out:
        proc = subprocess.Popen([*command, "--port", str(port)], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        RUNNING_LOGS[name] = log_file
        try:
            wait_healthy(proc, base, name, log_file, start_timeout)
            yield base
        finally:
            RUNNING_LOGS.pop(name, None)
            stop(proc)
