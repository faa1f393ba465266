"""Evidence-lookup latency and throughput on the embedded store.

Prints the median and 95th percentile latency over 1 000 generated patients,
in process (validation excluded and included) and through HTTP against a real
uvicorn server on loopback, and patients per second for a batch. The target
is a median under 5 ms in process (issue 10).

    .venv/bin/python benchmarks/bench_evidence.py [--patients 1000]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crlm_kg import patients  # noqa: E402
from crlm_kg.evidence import EvidenceLookup  # noqa: E402
from crlm_kg.store import EmbeddedStore  # noqa: E402

LOCATIONS = ["caecum", "ascending", "hepatic-flexure", "transverse", "splenic-flexure", "descending", "sigmoid", "rectosigmoid", "rectum"]


def make_patient(rng: random.Random, i: int) -> dict:
    """A plausible, valid record; about a third of the optional fields are left out."""
    record: dict = {"id": f"bench-{i:05d}"}

    def maybe(key, value, holder=record):
        if rng.random() < 0.7:
            holder[key] = value

    maybe("age", rng.randint(25, 90))
    maybe("ecog", rng.randint(0, 3))
    primary: dict = {}
    maybe("location", rng.choice(LOCATIONS), primary)
    maybe("nodePositive", rng.random() < 0.5, primary)
    if primary:
        record["primaryTumor"] = primary
    liver: dict = {"count": rng.randint(1, 15)}
    maybe("largestDiameterMm", round(rng.uniform(5, 120), 1), liver)
    maybe("distribution", "unilobar" if liver["count"] == 1 else rng.choice(["unilobar", "bilobar"]), liver)
    maybe("resectability", rng.choice(["resectable", "borderline", "unresectable"]), liver)
    maybe("diseaseFreeIntervalMonths", rng.randint(1, 48), liver)
    liver["timing"] = "metachronous"
    record["liverMetastases"] = liver
    maybe("extrahepaticDisease", False)
    maybe("ceaNgPerMl", round(rng.uniform(1, 400), 1))
    maybe("molecular", {"ras": rng.choice(["wild-type", "mutant", "unknown"])})
    maybe("liver", {"futureLiverRemnantPercent": rng.randint(15, 70), "chemotherapyAssociatedInjury": rng.random() < 0.3,
                    "fibrosisOrCirrhosis": rng.random() < 0.1})
    return record


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(20261123)
    records_json = [make_patient(rng, i) for i in range(args.patients)]

    t0 = time.perf_counter()
    store = EmbeddedStore.from_repository()
    lookup = EvidenceLookup(store).warm()
    load_s = time.perf_counter() - t0
    parsed = []
    for rec in records_json:
        report, recs = patients.parse_and_validate(json.dumps(rec).encode())
        assert report.conforms, report.to_text()
        parsed.append(recs[0])
    lookup.evaluate(parsed[0])  # reads the graph's structure once
    gc.collect()
    gc.freeze()  # as the service does once started (api/app.py): start-up objects out of the collector's sight

    lookup_ms = []
    for record in parsed:
        t = time.perf_counter()
        lookup.evaluate(record)
        lookup_ms.append((time.perf_counter() - t) * 1000)

    full_ms = []
    for rec in records_json[:200]:
        t = time.perf_counter()
        report, recs = patients.parse_and_validate_fast(json.dumps(rec).encode())  # the request path's validation
        lookup.evaluate(recs[0])
        full_ms.append((time.perf_counter() - t) * 1000)

    t = time.perf_counter()
    report, batch = patients.parse_and_validate_fast(json.dumps(records_json).encode())  # as /evidence/batch does
    results = [lookup.evaluate(r) for r in batch]
    batch_s = time.perf_counter() - t
    assert len(results) == len(records_json)

    print(f"graph: {store.triple_count()} triples loaded in {load_s:.2f} s")
    print(f"in process, lookup only ({len(lookup_ms)} patients): median {statistics.median(lookup_ms):.2f} ms, p95 {percentile(lookup_ms, 0.95):.2f} ms (target: median < 5 ms)")
    print(f"in process, validate (compiled shapes, as the service does) + lookup (200 patients): median {statistics.median(full_ms):.2f} ms, p95 {percentile(full_ms, 0.95):.2f} ms")
    print(f"batch of {len(records_json)} (one validation run + lookups): {len(records_json) / batch_s:.0f} patients/s")

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "crlm_kg.api.app:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
    )
    try:
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(300):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            http_ms, summary_ms, summary_bytes, summary_gzip_bytes, full_bytes = [], [], [], [], []
            for rec in records_json:
                t = time.perf_counter()
                response = client.post("/evidence", json=rec, headers={"accept-encoding": "identity"})
                http_ms.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, response.text[:300]
                full_bytes.append(len(response.content))
                t = time.perf_counter()
                response = client.post("/evidence", params={"view": "summary"}, json=rec, headers={"accept-encoding": "identity"})
                summary_ms.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, response.text[:300]
                summary_bytes.append(len(response.content))
                summary_gzip_bytes.append(len(gzip.compress(response.content)))
            examples = sorted(patients.EXAMPLES.glob("*.json"))
            example_bytes = [len(client.post("/evidence", params={"view": "summary"}, content=p.read_bytes(),
                                             headers={"content-type": "application/json", "accept-encoding": "identity"}).content)
                             for p in examples]
        print(f"through HTTP, one client, full view ({len(http_ms)} patients): median {statistics.median(http_ms):.2f} ms, "
              f"p95 {percentile(http_ms, 0.95):.2f} ms; answer median {statistics.median(full_bytes) / 1024:.0f} KB")
        print(f"through HTTP, one client, summary view: median {statistics.median(summary_ms):.2f} ms, p95 {percentile(summary_ms, 0.95):.2f} ms; "
              f"size median {statistics.median(summary_bytes) / 1024:.1f} KB, max {max(summary_bytes) / 1024:.1f} KB "
              f"(gzip median {statistics.median(summary_gzip_bytes) / 1024:.1f} KB); "
              f"example patients: max {max(example_bytes) / 1024:.1f} KB over {len(examples)} (limit 30 KB)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
