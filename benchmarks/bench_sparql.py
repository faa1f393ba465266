"""Throughput and latency of the service under concurrent clients, on loopback.

    .venv/bin/python benchmarks/bench_sparql.py [--duration 10] [--concurrency 16] [--json out.json]

Each *scenario* is one HTTP request sent over and over by ``--concurrency``
clients (asyncio + httpx, keep-alive) for ``--duration`` seconds against one or
more *targets*: real uvicorn servers started here as subprocesses on free
loopback ports. Reported per target: requests/s, latency p50/p95/p99 and
errors; with a baseline target, the ratio to it.

Scenario ``sparql``: the crlm-kg app (``crlm_kg.api.app:create_app``; Oxigraph in
worker processes) against a minimal rdflib-backed SPARQL endpoint defined in
this file (``rdflib_app``), both serving the repository graph with the union
default graph, answering the same query as SPARQL JSON results.

Scenario ``evidence``: ``POST /evidence`` for one example patient, the crlm-kg
app on its embedded Oxigraph store against the *same app* whose store answers
the evidence lookup's SPARQL with rdflib's engine (``RdflibStore``). The lookup
reads the graph's structure once, at start-up, and queries no engine per
request: a ratio near 1 shows that the request path no longer depends on it.

Both engines serve the same graph: the ontology, the evidence and their RDFS
entailments (``crlm_kg.graphs.repository_quads``).

To add a scenario, append a ``Scenario`` to ``SCENARIOS`` with its request and
the targets it runs against.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent

SPARQL_QUERY = """PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?type (COUNT(DISTINCT ?s) AS ?n) (SAMPLE(?label) AS ?example)
WHERE { ?s a ?type . OPTIONAL { ?s rdfs:label ?label } }
GROUP BY ?type ORDER BY DESC(?n) ?type LIMIT 25"""


# --------------------------------------------------------------------------- the rdflib baseline


def rdflib_app():
    """A minimal SPARQL endpoint on rdflib's engine: GET/POST ?query=, JSON results."""
    import rdflib
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response
    from starlette.requests import Request

    sys.path.insert(0, str(ROOT))
    from crlm_kg.graphs import repository_quads  # what the stores serve, with the RDFS entailments

    dataset = rdflib.Dataset(default_union=True)
    for quad in repository_quads():
        graph = dataset.graph(rdflib.URIRef(quad.graph_name.value))
        graph.add(tuple(_to_rdflib(t) for t in (quad.subject, quad.predicate, quad.object)))
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"status": "ok", "triples": len(dataset)}

    async def sparql(request):
        query = request.query_params.get("query")
        if query is None and request.method == "POST":
            query = (await request.form()).get("query")
        if not query:
            return JSONResponse({"error": "missing query"}, status_code=400)
        from starlette.concurrency import run_in_threadpool

        body = await run_in_threadpool(lambda: dataset.query(query).serialize(format="json"))
        return Response(body, media_type="application/sparql-results+json")

    sparql.__annotations__ = {"request": Request}  # resolved here: this module uses string annotations
    app.add_api_route("/sparql", sparql, methods=["GET", "POST"])
    return app


class RdflibStore:
    """The project's Store interface answered by rdflib's SPARQL engine (for the comparison only): the evidence
    lookup runs on it; the SPARQL endpoint, the data version and the dump are not part of the comparison."""

    name = "rdflib"

    @property
    def capabilities(self):
        from crlm_kg.store.base import Capabilities

        # not in process for the endpoint (no worker pool is started on a copy of it), no remote endpoint either
        return Capabilities(in_process=False, endpoint=None, dataset_graphs=(), dialect="standard")

    def __init__(self):
        import rdflib

        sys.path.insert(0, str(ROOT))
        from crlm_kg.graphs import repository_quads  # what the stores serve, with the RDFS entailments

        self.dataset = rdflib.Dataset(default_union=True)
        for quad in repository_quads():
            graph = self.dataset.graph(rdflib.URIRef(quad.graph_name.value))
            graph.add(tuple(_to_rdflib(t) for t in (quad.subject, quad.predicate, quad.object)))

    def select(self, query, bindings=None):
        from decimal import Decimal

        import rdflib
        from crlm_kg.store import IRI, PREFIX_BLOCK, bind_parameters

        rows = []
        result = self.dataset.query(PREFIX_BLOCK + bind_parameters(query, bindings))
        names = [str(v) for v in result.vars]
        for solution in result:
            row = {}
            for name, term in zip(names, solution):
                if term is None:
                    continue
                if isinstance(term, rdflib.URIRef):
                    row[name] = IRI(str(term))
                elif isinstance(term, rdflib.Literal):
                    value = term.toPython()
                    row[name] = float(value) if isinstance(value, Decimal) else (value if isinstance(value, (int, float, bool, str)) else str(term))
                else:
                    row[name] = "_:" + str(term)
            rows.append(row)
        return rows

    def ask(self, query, bindings=None):
        from crlm_kg.store import PREFIX_BLOCK, bind_parameters

        return bool(self.dataset.query(PREFIX_BLOCK + bind_parameters(query, bindings)).askAnswer)

    def triple_count(self):
        return len(self.dataset)

    def construct(self, query, bindings=None):
        raise self._outside_the_comparison("construct")

    def dump(self):
        raise self._outside_the_comparison("dump")

    def fingerprint(self):
        raise self._outside_the_comparison("fingerprint")  # the app then serves a data version without a hash

    def close(self):
        self.dataset.close()

    @staticmethod
    def _outside_the_comparison(what):
        from crlm_kg.store import QueryError

        return QueryError(f"{what}: not offered by the comparison's rdflib store")


def rdflib_evidence_app():
    """The crlm-kg app whose evidence lookup runs on rdflib's SPARQL engine."""
    sys.path.insert(0, str(ROOT))
    from crlm_kg.api.app import create_app

    return create_app(store=RdflibStore())


def _to_rdflib(term):
    import pyoxigraph as ox
    import rdflib

    if isinstance(term, ox.NamedNode):
        return rdflib.URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return rdflib.BNode(term.value)
    if term.language:
        return rdflib.Literal(term.value, lang=term.language)
    return rdflib.Literal(term.value, datatype=rdflib.URIRef(term.datatype.value))


# --------------------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Target:
    name: str
    factory: str  # module:function for uvicorn --factory
    app_dir: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    base: str = ""

    def start(self, timeout: float = 120) -> None:
        port = _free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT), **self.env)
        env.pop("CRLM_KG_SPARQL_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", self.factory, "--app-dir", str(self.app_dir),
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env,
        )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: server exited with {self.process.returncode}")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: server did not start in {timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


# --------------------------------------------------------------------------- load


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    params: dict | None = None
    data: dict | None = None
    json_body: dict | None = None
    headers: dict = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)  # target names; the first is measured against the last (baseline)
    check: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200
    fingerprint: Callable[[httpx.Response], object] | None = None  # compared across targets before the load


@dataclass
class Result:
    scenario: str
    target: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def row(self) -> dict:
        return {"scenario": self.scenario, "target": self.target, "requests": self.requests, "errors": self.errors,
                "rps": round(self.rps, 1), "p50_ms": round(self.pct(50), 2), "p95_ms": round(self.pct(95), 2),
                "p99_ms": round(self.pct(99), 2), "mean_ms": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else None}


async def _load(base: str, scenario: Scenario, concurrency: int, duration: float, warmup: int = 20) -> Result:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def once() -> tuple[float, bool]:
            started = time.perf_counter()
            response = await client.request(scenario.method, scenario.path, params=scenario.params, data=scenario.data,
                                            json=scenario.json_body, headers=scenario.headers)
            await response.aread()
            return (time.perf_counter() - started) * 1000, scenario.check(response)

        for _ in range(warmup):
            _, ok = await once()
            if not ok:
                response = await client.request(scenario.method, scenario.path, params=scenario.params, json=scenario.json_body,
                                                headers=scenario.headers)
                raise RuntimeError(f"{scenario.name} @ {base}: the warm-up request failed: {response.status_code} {response.text[:300]}")
        latencies: list[float] = []
        errors = 0
        stop_at = time.perf_counter() + duration

        async def worker():
            nonlocal errors
            while time.perf_counter() < stop_at:
                try:
                    ms, ok = await once()
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(ms)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - started
    return Result(scenario.name, "", len(latencies), errors, elapsed, latencies)


# --------------------------------------------------------------------------- configuration


def _sparql_ok(response: httpx.Response) -> bool:
    return response.status_code == 200 and len(response.json()["results"]["bindings"]) > 0


def _sparql_counts(response: httpx.Response) -> list:
    return [(b["type"]["value"], int(b["n"]["value"])) for b in response.json()["results"]["bindings"]]


TARGETS = {
    "crlm-kg": lambda: Target("crlm-kg (pyoxigraph workers)", "crlm_kg.api.app:create_app"),
    "rdflib": lambda: Target("rdflib endpoint (baseline)", "bench_sparql:rdflib_app", app_dir=HERE),
    "crlm-kg-rdflib": lambda: Target("crlm-kg on rdflib's engine", "bench_sparql:rdflib_evidence_app", app_dir=HERE),
}

EVIDENCE_PATIENT = json.loads((ROOT / "data" / "examples" / "patients" / "case-borderline-small-flr.json").read_text())


def _evidence_statuses(response: httpx.Response) -> list:
    return sorted((t["id"], t["status"]) for t in response.json()["trials"])

SCENARIOS = [
    Scenario("sparql", "GET", "/sparql", params={"query": SPARQL_QUERY},
             headers={"Accept": "application/sparql-results+json"}, targets=["crlm-kg", "rdflib"], check=_sparql_ok,
             fingerprint=_sparql_counts),
    Scenario("evidence", "POST", "/evidence", json_body=EVIDENCE_PATIENT, targets=["crlm-kg", "crlm-kg-rdflib"],
             fingerprint=_evidence_statuses),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per scenario and target")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--scenario", action="append", help="run only these scenarios (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    needed = {name for s in scenarios for name in s.targets}
    targets = {name: TARGETS[name]() for name in needed}
    results: list[Result] = []
    try:
        for target in targets.values():
            print(f"starting {target.name} …", file=sys.stderr)
            target.start()
        for scenario in scenarios:
            if scenario.fingerprint:  # sanity: every target gives the same answer
                answers = {name: scenario.fingerprint(httpx.request(scenario.method, targets[name].base + scenario.path, params=scenario.params,
                                                                     json=scenario.json_body, headers=scenario.headers, timeout=120))
                           for name in scenario.targets}
                if len({json.dumps(a, sort_keys=True, default=str) for a in answers.values()}) > 1:
                    print(f"WARNING: the targets answer {scenario.name} differently: {answers}", file=sys.stderr)
            for name in scenario.targets:
                target = targets[name]
                result = asyncio.run(_load(target.base, scenario, args.concurrency, args.duration))
                result.target = target.name
                results.append(result)
            _print(scenario, [r for r in results if r.scenario == scenario.name], args)
    finally:
        for target in targets.values():
            target.stop()
    if args.json:
        args.json.write_text(json.dumps([r.row() for r in results], indent=2))
    return 0 if all(r.errors == 0 for r in results) else 1


def _print(scenario: Scenario, results: list[Result], args) -> None:
    print(f"\nscenario {scenario.name}: {scenario.method} {scenario.path}, {args.concurrency} concurrent clients, {args.duration:g} s, loopback")
    print(f"{'target':34} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in results:
        print(f"{r.target:34} {r.rps:9.1f} {r.pct(50):8.2f} {r.pct(95):8.2f} {r.pct(99):8.2f} {r.errors:7d}")
    if len(results) > 1:
        ours, base = results[0], results[-1]
        if base.rps:
            print(f"ratio {ours.target} / {base.target}: throughput x{ours.rps / base.rps:.1f}, "
                  f"p50 latency x{base.pct(50) / ours.pct(50):.1f} lower, p99 latency x{base.pct(99) / ours.pct(99):.1f} lower")


if __name__ == "__main__":
    sys.exit(main())
