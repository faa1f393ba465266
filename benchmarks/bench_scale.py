"""The evidence at 1×, 10× and 100× (issue 17), and cohort screening: every figure printed, none asserted.

    .venv/bin/python benchmarks/bench_scale.py [--factors 1 10 100] [--patients 10000] [--skip-serve] [--virtuoso]

For each factor, ``scale_evidence.write_home`` writes a repository copy holding the evidence that many
times (studies cloned with new IRIs), and
- a fresh process loads it (load time), reads the lookup's structure, runs the start-up structural
  check, times every named query (median of 3, example parameters) and the summary-view lookup of the
  example patients in process;
- ``crlm-kg serve`` starts on it (one SPARQL worker): the time until /health answers, the resident memory
  of the server and of each of its worker processes, and the summary view over HTTP (median, p95).
- with ``--virtuoso`` (needs Debian's virtuoso-opensource), bench_virtuoso.py: the same graph bulk-loaded into a
  throwaway Virtuoso, the evidence answers through the remote store compared with the embedded store's, the
  latency of both (a differing answer makes the exit status 1).
Then each named query's time at the largest factor as a ratio to its 1× time (target ≤ 10×), and the
screening throughput of generated patients at 1× (one process, and one per core).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale_evidence import write_home  # noqa: E402

# runs in a fresh process with CRLM_KG_HOME set (the paths are read when crlm_kg is imported)
IN_PROCESS = r"""
import json, statistics, sys, time
t = time.perf_counter()
from crlm_kg.store import EmbeddedStore
store = EmbeddedStore.from_repository()
out = {"triples": store.triple_count(), "load_s": time.perf_counter() - t}
from crlm_kg import startup_check
t = time.perf_counter(); startup_check.check_store(store); out["startup_check_s"] = time.perf_counter() - t
from crlm_kg.evidence import EvidenceLookup
t = time.perf_counter(); lookup = EvidenceLookup(store).warm(); out["lookup_warm_s"] = time.perf_counter() - t
out["trials"] = len(lookup.structure.trials)
from crlm_kg.queries import QueryLibrary
library = QueryLibrary.load()
out["queries"] = {}
for query in library.all():
    raw = {p.name: p.example for p in query.parameters if not p.optional}
    times = []
    for _ in range(3):
        t = time.perf_counter(); _, rows = library.run(store, query.name, raw); times.append((time.perf_counter() - t) * 1000)
    out["queries"][query.name] = [statistics.median(times), len(rows)]
from tests.evidence_helpers import EXAMPLE_FILES, record
records = [record(p.name) for p in EXAMPLE_FILES]
def median_ms(view):
    times = []
    for r in records:
        t = time.perf_counter(); lookup.evaluate(r, view); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)
# as /evidence?view=summary computes it: each patient the first time (the tree results it needs are computed), then
# again (they are kept), then the full answer
out["summary_first_ms"] = median_ms("summary")
out["summary_ms"] = median_ms("summary")
out["full_ms"] = median_ms("full")
import resource
out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the parent's pid
            found.append(int(stat.parent.name))
    return found


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ, CRLM_KG_HOME=str(home), PYTHONPATH=str(ROOT), CRLM_KG_QUERY_WORKERS="1")
    env.pop("CRLM_KG_SPARQL_URL", None)
    return env


def in_process(home: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", IN_PROCESS], cwd=ROOT, env=env_for(home), capture_output=True, text=True)
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(line[len("RESULT "):])


def serve(home: Path, timeout: float, examples: list[dict], worker_memory_mb: int | None = None) -> dict:
    """Start ``crlm-kg serve`` on ``home``; a start-up that fails is reported (``startup_error``), not raised."""
    try:
        return _serve(home, timeout, examples, worker_memory_mb)
    except RuntimeError as exc:
        lines = [x for x in str(exc).splitlines() if x.strip()]
        return {"startup_s": None, "startup_error": " / ".join(lines[-3:])[-400:]}


def _serve(home: Path, timeout: float, examples: list[dict], worker_memory_mb: int | None) -> dict:
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    env = env_for(home)
    if worker_memory_mb:
        env["CRLM_KG_WORKER_MEMORY_MB"] = str(worker_memory_mb)
    proc = subprocess.Popen([sys.executable, "-m", "crlm_kg.cli", "serve", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    out: dict = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            while time.perf_counter() - start < timeout:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode()[-2000:])
                try:
                    if client.get("/health").status_code == 200:
                        out["startup_s"] = time.perf_counter() - start
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                out["startup_s"] = None  # not up within the timeout
                return out
            out["server_rss_mb"] = rss_mb(proc.pid)
            out["worker_rss_mb"] = [rss_mb(c) for c in children(proc.pid)]
            times = []
            for _ in range(3):
                for rec in examples:
                    t = time.perf_counter()
                    r = client.post("/evidence", params={"view": "summary"}, json=rec)
                    times.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text[:300]
            times.sort()
            out["http_summary_p50_ms"] = statistics.median(times)
            out["http_summary_p95_ms"] = times[int(0.95 * (len(times) - 1))]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def screening_throughput(n: int) -> list[str]:
    from crlm_kg.evidence import EvidenceLookup
    from crlm_kg.screening import screen
    from crlm_kg.screening.synthetic import synthetic_cohort
    from crlm_kg.store import EmbeddedStore

    lookup = EvidenceLookup(EmbeddedStore.from_repository()).warm()
    cohort = synthetic_cohort(n, seed=1, invalid_share=0.01)
    lines = []
    for workers in (1, os.cpu_count() or 1):
        start, cpu = time.perf_counter(), time.process_time()
        result = screen(lookup, cohort, workers=workers)
        wall = time.perf_counter() - start
        matches = sum(len(t["matches"]) for t in result.trials)
        lines.append(f"screening {n} generated patients (every trial, {len(result.invalid)} invalid), {workers} process(es): "
                     f"{wall:.1f} s, {n / wall:,.0f} patients/s (target ≥ 1 000 on 2 cores); {matches} eligible (patient, trial) pairs")
        if workers == 1:
            lines.append(f"  one process: {n / (time.process_time() - cpu):,.0f} patients per CPU-second")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--patients", type=int, default=10_000, help="generated patients for the screening figure (0: skip)")
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--serve-timeout", type=float, default=300, help="seconds a start on a built store may take")
    parser.add_argument("--build-timeout", type=float, default=900,
                        help="seconds the first start may take: it builds the on-disk store (about 5 minutes at 100x)")
    parser.add_argument("--virtuoso", action="store_true", help="also serve each factor's graph from Virtuoso (bench_virtuoso.py)")
    parser.add_argument("--worker-memory-mb", type=int, default=4096, help="SPARQL worker memory cap at 100x (default %(default)s MiB)")
    args = parser.parse_args()
    examples = [json.loads(p.read_text()) for p in sorted((ROOT / "data" / "examples" / "patients").glob("*.json"))]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (shared machines inflate every time)")
    results = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="crlm-kg-scale-") as tmp:
        for factor in args.factors:
            t = time.perf_counter()
            home = write_home(factor, Path(tmp) / f"x{factor}")
            generated = time.perf_counter() - t
            r = in_process(home)
            r["generate_s"] = generated
            print(f"{factor:>4}×: {r['triples']:,} triples, {r['trials']} trials; load {r['load_s']:.1f} s, start-up check {r['startup_check_s']:.1f} s, "
                  f"lookup structure {r['lookup_warm_s']:.1f} s; in process summary view median {r['summary_first_ms']:.1f} ms first time, {r['summary_ms']:.1f} ms again (full answer {r['full_ms']:.1f} ms), peak RSS {r['max_rss_mb']:.0f} MB",
                  flush=True)
            if not args.skip_serve:
                # a SPARQL worker holds the whole graph: its default 2 GiB cap is too small at 100x
                memory = args.worker_memory_mb if factor >= 100 else None
                r.update(serve(home, args.build_timeout, examples, memory))
            results[factor] = r
            workers = ", ".join(f"{m:.0f}" for m in r.get("worker_rss_mb") or [] if m)
            if not args.skip_serve:
                up = f"{r['startup_s']:.1f} s" if r.get("startup_s") else \
                    (f"failed: {r['startup_error']}" if r.get("startup_error") else f"not up in {args.build_timeout:.0f} s")
                if memory:
                    up += f" (SPARQL worker cap raised to {memory} MiB)"
                print(f"       serve (first start): up in {up} (target ≤ 60 s at 100×), server RSS {r.get('server_rss_mb') or 0:.0f} MB, "
                      f"SPARQL worker RSS [{workers}] MB; HTTP summary view p50 {r.get('http_summary_p50_ms', float('nan')):.1f} ms, "
                      f"p95 {r.get('http_summary_p95_ms', float('nan')):.1f} ms (target ≤ 50 ms at 100×)", flush=True)
                # the first start builds the on-disk store, its data version and saved structure (crlm-kg build does
                # the store ahead); the second is every later start on unchanged data
                again = r["again"] = serve(home, args.serve_timeout, examples, memory)
                print(f"       serve again (on-disk store built): up in {again.get('startup_s') or float('nan'):.1f} s, server RSS "
                      f"{again.get('server_rss_mb') or 0:.0f} MB, SPARQL worker RSS "
                      f"[{', '.join(f'{m:.0f}' for m in again.get('worker_rss_mb') or [] if m)}] MB; HTTP summary view p50 "
                      f"{again.get('http_summary_p50_ms', float('nan')):.1f} ms", flush=True)
            sys.stdout.flush()
            if args.virtuoso:
                import bench_virtuoso

                print(f"       served from Virtuoso through the remote store ({factor}×):", flush=True)
                big = factor >= 100  # one run per patient, and queries may take minutes on Virtuoso with VectorSize 1
                extra = ["--repeats", "1", "--query-timeout", "5400"] if big else []
                failed |= bench_virtuoso.run(home, extra) != 0
    base, top = min(results), max(results)
    if top != base:
        print(f"named queries at {top}× / {base}× (median of 3; target ≤ 10×; a query whose answer grows {top}× with the graph "
              f"cannot meet it: its rows ratio is printed beside, with the ratio of its time per answer row)")
        q_base, q_top = results[base]["queries"], results[top]["queries"]
        per_row = []  # of the queries over 10x
        for name in sorted(q_top, key=lambda n: -q_top[n][0] / max(q_base[n][0], 1e-3)):
            (ms0, rows0), (ms1, rows1) = q_base[name], q_top[name]
            ratio = ms1 / max(ms0, 1e-3)
            # time per row of the answer (a query with no rows counts as one): ×1 is linear in the answer's size
            row_ratio = (ms1 / max(rows1, 1)) / max(ms0 / max(rows0, 1), 1e-6)
            if ratio > 10:
                per_row.append(row_ratio)
            print(f"  {name:<42} {ms0:8.1f} ms → {ms1:9.1f} ms  ×{ratio:6.1f}   rows {rows0} → {rows1}"
                  f"   per row ×{row_ratio:5.2f}{'  (over 10×)' if ratio > 10 else ''}")
        print(f"  within 10×: {len(q_top) - len(per_row)} of {len(q_top)}"
              + (f"; the {len(per_row)} over it take ×{min(per_row):.2f}–×{max(per_row):.2f} the time per answer row" if per_row else ""))
    if args.patients:
        for line in screening_throughput(args.patients):
            print(line)
    if failed:
        sys.exit("the remote store (Virtuoso) gave a different answer or triple count: see above")


if __name__ == "__main__":
    main()
