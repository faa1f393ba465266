"""The evidence service's speed, each figure beside the same figure for a baseline revision measured in the
same run (issues 10 and 17).

    .venv/bin/python benchmarks/bench_service.py [--base REV] [--rounds 3] [--duration 10] [--workers 2]

The baseline is the code at ``--base`` (default ``BASELINE``, the commit before this work): ``git archive``
writes it into a temporary directory, and every measurement runs once on it and once on this checkout, in
alternating rounds, so that both see the same machine load. Figures:

1. in process, the evidence lookup alone (``EvidenceLookup.evaluate``), median over the example patients
   (data/examples/patients/*.json) and over generated ones (``bench_evidence.make_patient``); validation
   (pyshacl) alone beside it, which is the request's other large part;
2. ``POST /evidence`` over HTTP, one client, warm, the example patients: p50 of the summary and the full view,
   each server a single uvicorn process; beside it, the summary view for generated patients each sent once
   (a server keeps what it worked out for a patient's values: this is the cost of values it has not seen);
3. throughput of ``POST /evidence`` (full view, then summary view) at ``--clients`` clients: the baseline as a single process,
   this checkout as ``crlm-kg serve --workers N``. Every answer is compared with the single-client answer
   for that patient on the same server; a difference fails the run (exit status 1) for this checkout.

Clients ask for ``accept-encoding: identity`` (the answer's JSON, not the gzip middleware's CPU, is measured).
Wall-clock figures on a shared machine vary from run to run: read the ratios, which are measured side by side,
and, in process, the CPU time of the evaluating thread (what the work costs, whatever else runs on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_evidence import free_port, make_patient  # noqa: E402

BASELINE = "d620286"  # perf branch point: "make test-fast on both cores" (evidence lookup median 8.5 ms)
EXAMPLES = sorted((ROOT / "data" / "examples" / "patients").glob("*.json"))

# Run inside each tree (its own crlm_kg): prints the medians as JSON. Only APIs both revisions have.
IN_PROCESS = r"""
import json, random, statistics, sys, time
sys.path.insert(0, "benchmarks")
from bench_evidence import make_patient
from crlm_kg import patients
from crlm_kg.evidence import EvidenceLookup
from crlm_kg.store import EmbeddedStore
passes, generated = int(sys.argv[1]), int(sys.argv[2])
lookup = EvidenceLookup(EmbeddedStore.from_repository()).warm()
bodies = [p.read_bytes() for p in sorted(patients.EXAMPLES.glob("*.json"))]
examples = [patients.parse_and_validate(b)[1][0] for b in bodies]
rng = random.Random(20261130)
others = [patients.parse_and_validate(json.dumps(make_patient(rng, i)).encode())[1][0] for i in range(generated)]
for r in examples:
    lookup.evaluate(r)
def timed(fn, items):
    wall, cpu = [], []
    for item in items:
        t, c = time.perf_counter(), time.thread_time()
        fn(item)
        cpu.append((time.thread_time() - c) * 1000); wall.append((time.perf_counter() - t) * 1000)
    return wall, cpu
ex = [timed(lookup.evaluate, examples) for _ in range(passes)]
gen = timed(lookup.evaluate, others)
val = timed(patients.parse_and_validate, bodies * 2)
# what the request path validates with: the compiled shapes for plain JSON where the revision has them
fast = getattr(patients, "parse_and_validate_fast", patients.parse_and_validate)
request_val = timed(lambda b: fast(b, None, "application/json"), bodies * 2)
out = {"examples": statistics.median(w for wall, _ in ex for w in wall), "examples_cpu": statistics.median(c for _, cpu in ex for c in cpu),
       "generated": statistics.median(gen[0]), "generated_cpu": statistics.median(gen[1]),
       "validate": statistics.median(val[0]), "validate_cpu": statistics.median(val[1]),
       "validate_request": statistics.median(request_val[0]), "validate_request_cpu": statistics.median(request_val[1])}
print(json.dumps(out))
"""


def baseline_tree(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def in_process(tree: Path, passes: int, generated: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(passes), str(generated)], cwd=tree, env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


class Server:
    """A server on loopback: ``uvicorn --factory api.app:create_app`` (workers=1) or ``crlm-kg serve --workers N``."""

    def __init__(self, tree: Path, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if workers == 1:
            cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warning"]
        else:
            cmd = [sys.executable, "-m", "crlm_kg.cli", "serve", "--no-validate", "--workers", str(workers), "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)), stdout=subprocess.DEVNULL)

    def __enter__(self) -> "Server":
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("the server exited at start-up")
                try:
                    if client.get("/health").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start in 120 s")
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


HEADERS = {"content-type": "application/json", "accept-encoding": "identity"}


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def single_client(url: str, bodies: list[bytes], passes: int, new: list[bytes] = ()) -> tuple[dict[str, float], dict[str, dict[int, str]]]:
    """p50 of the summary and the full view, and each patient's answers (digests, by view) as one client gets them;
    then p50 of the summary view for ``new`` patients, each sent once (nothing kept from an earlier request of theirs).

    The client is the standard library's ``http.client`` on one kept-alive connection: the figure is the server's
    latency, and httpx's own work per request (about 0.5 ms here) would be counted in it."""
    times: dict[str, list[float]] = {"summary": [], "full": [], "new": []}
    answers: dict[str, dict[int, str]] = {"summary": {}, "full": {}}
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def post(view: str, body: bytes) -> bytes:
        connection.request("POST", f"/evidence?view={view}", body=body, headers=HEADERS)
        response = connection.getresponse()
        content = response.read()
        if response.status != 200:
            raise RuntimeError(f"/evidence answered {response.status}: {content[:300]!r}")
        return content

    try:
        for i, body in enumerate(bodies):  # warm: every patient once
            for view in answers:
                answers[view][i] = digest(post(view, body))
        for _ in range(passes):
            for body in bodies:
                for view in ("summary", "full"):
                    t = time.perf_counter()
                    post(view, body)
                    times[view].append((time.perf_counter() - t) * 1000)
        for body in new:
            t = time.perf_counter()
            post("summary", body)
            times["new"].append((time.perf_counter() - t) * 1000)
    finally:
        connection.close()
    return {view: statistics.median(ms) if ms else float("nan") for view, ms in times.items()}, answers


async def _load(url: str, bodies: list[bytes], answers: dict[int, str], clients: int, duration: float,
                view: str) -> tuple[int, int, list[float]]:
    done, wrong, latencies = 0, 0, []
    stop = time.monotonic() + duration

    async def client(seed: int) -> None:
        nonlocal done, wrong
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while time.monotonic() < stop:
                i = rng.randrange(len(bodies))
                t = time.perf_counter()
                response = await http.post("/evidence", params={"view": view}, content=bodies[i], headers=HEADERS)
                latencies.append((time.perf_counter() - t) * 1000)
                if response.status_code != 200 or digest(response.content) != answers[i]:
                    wrong += 1
                done += 1

    await asyncio.gather(*(client(seed) for seed in range(clients)))
    return done, wrong, latencies


def throughput(url: str, bodies: list[bytes], answers: dict[str, dict[int, str]], clients: int, duration: float,
               view: str = "full") -> dict[str, float]:
    # warm every server thread first (for half the duration): each thread of each worker pays once for its own
    # copy of the shapes and its prepared queries, slowly on a loaded machine
    asyncio.run(_load(url, bodies, answers[view], clients, duration / 2, view))
    started = time.perf_counter()
    done, wrong, latencies = asyncio.run(_load(url, bodies, answers[view], clients, duration, view))
    elapsed = time.perf_counter() - started
    return {"rps": done / elapsed, "wrong": wrong, "requests": done, "p50": statistics.median(latencies)}


def ratio(base: float, new: float, better: str = "lower") -> str:
    if better == "lower":
        return f"{base / new:.2f}x faster" if new else "n/a"
    return f"{new / base:.2f}x" if base else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=BASELINE, help="the revision to compare with (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per figure (median of the rounds)")
    parser.add_argument("--passes", type=int, default=8, help="passes over the example patients per in-process round")
    parser.add_argument("--generated", type=int, default=300, help="generated patients per in-process round")
    parser.add_argument("--http-passes", type=int, default=4, help="passes over the example patients per HTTP round")
    parser.add_argument("--http-new", type=int, default=200, help="generated patients per HTTP round, each sent once (summary view)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each throughput run (after half as long to warm up)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="server processes of this checkout (default: cores)")
    parser.add_argument("--parts", default="in-process,http,throughput", help="which figures, comma-separated (default: all)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    bodies = [p.read_bytes() for p in EXAMPLES]
    failed = False

    with tempfile.TemporaryDirectory(prefix="crlm-kg-baseline-") as tmp:
        base = baseline_tree(args.base, Path(tmp))
        trees = {"baseline": base, "now": ROOT}
        print(f"baseline: {args.base} (git archive into a temporary directory); now: this checkout; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")

        rounds: dict[str, list[dict[str, float]]] = {"baseline": [], "now": []}
        for _ in range(args.rounds if "in-process" in parts else 0):
            for name, tree in trees.items():
                rounds[name].append(in_process(tree, args.passes, args.generated))
        lookup = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rounds.items() if runs}
        b, n = lookup.get("baseline", {}), lookup.get("now", {})
        for key, what in (("examples", f"example patients ({len(bodies)})"), ("generated", f"{args.generated} generated patients")) if n else ():
            print(f"in process, lookup, {what}: median {n[key]:.2f} ms vs {b[key]:.2f} ms ({ratio(b[key], n[key])}"
                  f"{'; target < 5 ms' if key == 'examples' else ''}); CPU time {n[key + '_cpu']:.2f} ms vs {b[key + '_cpu']:.2f} ms "
                  f"({ratio(b[key + '_cpu'], n[key + '_cpu'])})")
        if n:
            print(f"in process, validation (pyshacl) of one example record: median {n['validate']:.2f} ms vs {b['validate']:.2f} ms; "
                  f"CPU time {n['validate_cpu']:.2f} ms vs {b['validate_cpu']:.2f} ms")
            print(f"in process, validation as the request path does it (compiled shapes for plain JSON, pyshacl for an invalid "
                  f"record): median {n['validate_request']:.2f} ms vs {b['validate_request']:.2f} ms "
                  f"({ratio(b['validate_request'], n['validate_request'])})")

        http: dict[str, list[dict[str, float]]] = {"baseline": [], "now": []}
        answers: dict[str, dict[str, dict[int, str]]] = {}
        for round_ in range(args.rounds if "http" in parts else 1):
            rng = random.Random(round_)
            new = [json.dumps(make_patient(rng, i)).encode() for i in range(args.http_new if "http" in parts else 0)]
            for name, tree in trees.items():
                with Server(tree) as server:
                    p50, answers[name] = single_client(server.url, bodies, args.http_passes if "http" in parts else 0, new)
                http[name].append(p50)
        if "http" in parts:
            views = {name: {v: statistics.median(r[v] for r in runs) for v in ("summary", "full", "new")} for name, runs in http.items()}
            for view, target in (("summary", 5), ("full", 10)):
                b, n = views["baseline"][view], views["now"][view]
                print(f"HTTP, one client, warm, {view} view: p50 {n:.2f} ms vs {b:.2f} ms ({ratio(b, n)}; target <= {target} ms)")
            b, n = views["baseline"]["new"], views["now"]["new"]
            print(f"HTTP, one client, summary view, {args.http_new} generated patients each sent once (not the target's figure: "
                  f"what a patient the server has not seen costs): p50 {n:.2f} ms vs {b:.2f} ms ({ratio(b, n)})")
            if "now" in lookup:
                n, own = views["now"]["summary"], lookup["now"]
                print(f"  split of the summary request now (medians, each measured apart): validation {own['validate_request']:.2f} ms, "
                      f"lookup {own['examples']:.2f} ms, the rest (HTTP, view, JSON) "
                      f"{n - own['validate_request'] - own['examples']:.2f} ms")

        failed = False
        for view in ("full", "summary") if "throughput" in parts else ():
            runs: dict[str, list[dict[str, float]]] = {"baseline": [], "one": [], "workers": []}
            for _ in range(args.rounds):  # alternating, so that a change of the machine's load hits all three alike
                with Server(base) as server:
                    runs["baseline"].append(throughput(server.url, bodies, answers["baseline"], args.clients, args.duration, view))
                with Server(ROOT) as server:
                    runs["one"].append(throughput(server.url, bodies, answers["now"], args.clients, args.duration, view))
                with Server(ROOT, workers=args.workers) as server:
                    _, own = single_client(server.url, bodies, 0)
                    runs["workers"].append(throughput(server.url, bodies, own, args.clients, args.duration, view))
            rps = {name: statistics.median(r["rps"] for r in rs) for name, rs in runs.items()}
            p50 = {name: statistics.median(r["p50"] for r in rs) for name, rs in runs.items()}
            wrong = {name: sum(r["wrong"] for r in rs) for name, rs in runs.items()}
            total = {name: sum(r["requests"] for r in rs) for name, rs in runs.items()}
            print(f"throughput, {args.clients} clients, {view} view: {rps['workers']:.0f} req/s with {args.workers} workers vs "
                  f"{rps['baseline']:.0f} req/s baseline single process ({ratio(rps['baseline'], rps['workers'], 'higher')}; "
                  f"target >= 3.5x); p50 {p50['workers']:.0f} ms vs {p50['baseline']:.0f} ms")
            print(f"  this checkout as one process: {rps['one']:.0f} req/s ({ratio(rps['baseline'], rps['one'], 'higher')} the baseline)")
            print(f"  answers differing from the single-client answer: now {wrong['one'] + wrong['workers']} of "
                  f"{total['one'] + total['workers']}, baseline {wrong['baseline']} of {total['baseline']}")
            failed = failed or wrong["one"] + wrong["workers"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
