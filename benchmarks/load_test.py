"""Load test: concurrent clients mixing SPARQL queries, named queries and evidence lookups.

    .venv/bin/python benchmarks/load_test.py                      # 60 s, 32 clients, own uvicorn
    .venv/bin/python benchmarks/load_test.py --duration 10 --clients 8
    .venv/bin/python benchmarks/load_test.py --url http://127.0.0.1:8000   # an already running server

Without ``--url`` it starts a real uvicorn on loopback (``crlm_kg.api.app:create_app``, the
repository graph) and stops it at the end. Before the run it takes the single-client
answer of ``POST /evidence`` for every example patient (data/examples/patients/*.json)
and the graph's canonical fingerprint (``GET /health?fingerprint=true``). Then
``--clients`` asyncio clients (httpx, one connection each) send requests for
``--duration`` seconds, each picking SPARQL / named query / evidence at random
(weights 2:1:2). It reports requests, throughput and latency percentiles per kind,
and fails (exit status 1) if any request errs (transport error or non-200), if any
evidence answer differs from the single-client answer for that patient, or if the
fingerprint changed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

SPARQL_QUERIES = [
    "PREFIX crlm: <https://w3id.org/crlm-kg/ontology#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
    "SELECT ?study ?label WHERE { ?study a/rdfs:subClassOf* crlm:Study ; rdfs:label ?label } ORDER BY ?label LIMIT 100",
    "PREFIX crlm: <https://w3id.org/crlm-kg/ontology#>\n"
    "SELECT ?m ?value WHERE { ?m a crlm:OutcomeMeasurement ; crlm:value ?value } LIMIT 200",
    "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    "PREFIX owl: <http://www.w3.org/2002/07/owl#> ASK { ?c a owl:Class }",
    "PREFIX crlm: <https://w3id.org/crlm-kg/ontology#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
    "CONSTRUCT { ?c rdfs:label ?l } WHERE { ?c rdfs:subClassOf+ crlm:Treatment ; rdfs:label ?l }",
]
NAMED_QUERIES = [
    ("studies-by-design", {"design": "RandomisedControlledTrial"}),
    ("trials-for-patient", {"age": "62", "ecog": "1", "count": "3", "ras": "RasWildType"}),
    ("treatment-taxonomy", {"treatment": "Hepatectomy"}),
    ("recommendations-by-setting", {"setting": "Unresectable"}),
    ("trial-eligibility-criteria", {"study": "EORTC40983"}),
]
WEIGHTS = {"sparql": 2, "named": 1, "evidence": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workers: int, timeout: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), CRLM_KG_QUERY_WORKERS=str(workers), CRLM_KG_QUERY_TIMEOUT=str(timeout))
    env.pop("CRLM_KG_SPARQL_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "crlm_kg.api.app:create_app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError("uvicorn exited: " + proc.stdout.read().decode(errors="replace")[-2000:])
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("uvicorn did not start in 120 s")
        time.sleep(0.2)


def patients() -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted((ROOT / "data" / "examples" / "patients").glob("*.json"))}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def run_load(base: str, duration: float, clients: int, seed: int) -> dict:
    docs = patients()
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        fingerprint_before = (await http.get("/health", params={"fingerprint": "true"})).json()["fingerprint"]
        reference = {}
        for name, body in docs.items():  # the single-client answers
            response = await http.post("/evidence", content=body, headers={"content-type": "application/json"})
            response.raise_for_status()
            reference[name] = response.content

    latencies: dict[str, list[float]] = {kind: [] for kind in WEIGHTS}
    errors: list[str] = []
    mismatches: list[str] = []
    kinds, weights = zip(*WEIGHTS.items())
    deadline = time.monotonic() + duration

    async def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=1)) as http:
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                started = time.perf_counter()
                try:
                    if kind == "sparql":
                        query = rng.choice(SPARQL_QUERIES)
                        if rng.random() < 0.5:
                            response = await http.get("/sparql", params={"query": query})
                        else:
                            response = await http.post("/sparql", content=query.encode(), headers={"content-type": "application/sparql-query"})
                    elif kind == "named":
                        name, params = rng.choice(NAMED_QUERIES)
                        response = await http.get(f"/queries/{name}", params=params)
                    else:
                        patient = rng.choice(list(docs))
                        response = await http.post("/evidence", content=docs[patient], headers={"content-type": "application/json"})
                except httpx.HTTPError as exc:
                    errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                    continue
                latencies[kind].append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors.append(f"{kind}: HTTP {response.status_code}: {response.text[:200]}")
                elif kind == "evidence" and response.content != reference[patient]:
                    mismatches.append(patient)

    started = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.monotonic() - started

    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        fingerprint_after = (await http.get("/health", params={"fingerprint": "true"})).json()["fingerprint"]

    every = [x for values in latencies.values() for x in values]

    def summary(values: list[float]) -> dict:
        return {"requests": len(values), "per_second": round(len(values) / elapsed, 1),
                **{f"p{int(q * 100)}_ms": round(percentile(values, q) * 1000, 1) for q in (0.5, 0.9, 0.99)},
                "max_ms": round(max(values) * 1000, 1) if values else None,
                "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else None}

    return {
        "duration_s": round(elapsed, 1),
        "clients": clients,
        "total": summary(every),
        "by_kind": {kind: summary(values) for kind, values in latencies.items()},
        "errors": len(errors),
        "error_samples": errors[:10],
        "evidence_mismatches": len(mismatches),
        "patients": len(docs),
        "fingerprint_before": fingerprint_before,
        "fingerprint_after": fingerprint_after,
        "graph_unchanged": fingerprint_before == fingerprint_after,
    }


def report(result: dict) -> str:
    lines = [f"{result['clients']} clients for {result['duration_s']} s; {result['patients']} example patients"]
    lines.append(f"{'kind':<10}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, s in [*result["by_kind"].items(), ("total", result["total"])]:
        lines.append(f"{kind:<10}{s['requests']:>10}{s['per_second']:>9}{s['p50_ms']:>9}{s['p90_ms']:>9}{s['p99_ms']:>9}{s['max_ms']:>9}")
    lines.append(f"errors: {result['errors']}; evidence answers differing from the single-client answer: {result['evidence_mismatches']}")
    fp = result["fingerprint_after"]
    lines.append(f"graph: {fp['triples']} triples, sha256 {fp['sha256'][:16]}… — " + ("unchanged" if result["graph_unchanged"] else "CHANGED"))
    for sample in result["error_samples"]:
        lines.append(f"  error: {sample}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--url", help="an already running server (default: start uvicorn on loopback)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("CRLM_KG_QUERY_WORKERS", "2")), help="SPARQL worker processes of the started server")
    parser.add_argument("--timeout", type=float, default=5.0, help="CRLM_KG_QUERY_TIMEOUT of the started server")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    proc = None
    base = args.url
    if base is None:
        proc, base = start_server(args.workers, args.timeout)
    try:
        result = asyncio.run(run_load(base.rstrip("/"), args.duration, args.clients, args.seed))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(result, indent=2) if args.json else report(result))
    ok = result["errors"] == 0 and result["evidence_mismatches"] == 0 and result["graph_unchanged"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
