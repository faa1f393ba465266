"""Records per second: one batch (one data graph, one pyshacl run) against one pyshacl run per record.

    .venv/bin/python benchmarks/bench_validation.py [--sizes 1000 10000] [--one-by-one 1000]

The records are the valid examples of data/examples/patients/*.json, repeated
with distinct ids. "one by one with pyshacl" converts each record with the same
JSON-LD context and calls ``pyshacl.validate`` on its graph with the same
(pre-parsed) shapes graph, as a caller without the batch API would. One-by-one
runs are measured on at most ``--one-by-one`` records and extrapolated to the
larger sizes (said so in the output).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyshacl  # noqa: E402
import rdflib  # noqa: E402

from crlm_kg import patients  # noqa: E402


def make_records(n: int) -> list[dict]:
    examples = [json.loads(p.read_text()) for p in sorted((ROOT / "data" / "examples" / "patients").glob("*.json"))]
    return [dict(examples[i % len(examples)], id=f"bench-{i:06d}") for i in range(n)]


def batch_rate(records: list[dict]) -> tuple[float, float]:
    data = json.dumps(records).encode()
    start = time.perf_counter()
    # a document this large is past the service's limits (1 000 records): the batch API is measured, not the limits
    report = patients.validate_document(data, content_type="application/json", limits=patients.Limits(records=len(records)))
    elapsed = time.perf_counter() - start
    assert report.conforms, report.to_text()[:500]
    return len(records) / elapsed, elapsed


def one_by_one_pyshacl_rate(records: list[dict]) -> tuple[float, float]:
    shapes = patients.shapes_graph()
    start = time.perf_counter()
    for record in records:
        batch = patients.parse(json.dumps(record).encode(), None, "application/json")
        graph = rdflib.Graph()  # a plain rdflib graph: pyshacl as it comes
        for triple in batch.graph:
            graph.add(triple)
        conforms, _, _ = pyshacl.validate(graph, shacl_graph=shapes, inference="none")
        assert conforms
    elapsed = time.perf_counter() - start
    return len(records) / elapsed, elapsed


def one_by_one_api_rate(records: list[dict]) -> tuple[float, float]:
    start = time.perf_counter()
    for record in records:
        assert patients.validate_document(json.dumps(record).encode()).conforms
    elapsed = time.perf_counter() - start
    return len(records) / elapsed, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--one-by-one", type=int, default=300, help="records validated one by one (then extrapolated)")
    parser.add_argument("--api-sample", type=int, default=300, help="records for the validate_document-per-record figure")
    args = parser.parse_args()

    patients.validate_document(json.dumps(make_records(3)).encode())  # warm-up: shapes, context, prepared queries

    sample = make_records(args.one_by_one)
    single_rate, single_time = one_by_one_pyshacl_rate(sample)
    api_rate, _ = one_by_one_api_rate(make_records(args.api_sample))
    print(f"one by one with pyshacl: {len(sample)} records in {single_time:.1f} s = {single_rate:.1f} records/s")
    print(f"one by one with patients.validate_document (cached shapes and queries): {api_rate:.1f} records/s (on {args.api_sample} records)")
    print()
    print(f"{'records':>8} | {'batch rec/s':>11} | {'batch time':>10} | {'one-by-one rec/s':>16} | {'one-by-one time':>15} | {'speed-up':>8}")
    for n in args.sizes:
        rate, elapsed = batch_rate(make_records(n))
        measured = n <= len(sample)
        single_elapsed = n / single_rate
        note = "measured" if measured and n == len(sample) else f"extrapolated from {len(sample)}"
        print(f"{n:>8} | {rate:>11.1f} | {elapsed:>9.1f}s | {single_rate:>16.1f} | {single_elapsed:>9.1f}s ({note}) | {rate / single_rate:>7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
