"""The (scaled) graph served from Virtuoso through the remote store, beside the embedded store (issue 17).

    .venv/bin/python benchmarks/bench_virtuoso.py [--home HOME | --factor N] [--buffers 300000] [--repeats 2]
                                                  [--queries all | NAME ...]

For a repository home (``scale_evidence.py`` writes a scaled one; ``--factor`` writes it into a scratch
directory; neither: the repository itself), in a fresh process reading that home:
1. the embedded store loads it, reads the lookup's structure (warm) and evaluates every example patient
   (full answer; latency per patient) and a few named queries; its answers are kept on disk and the
   dataset is dumped as N-Quads, then the embedded store is released (memory is shared);
2. a throwaway Virtuoso (crlm_kg.virtuoso, with VectorSize = 1 and ``--buffers`` 8 KiB pages) bulk-loads
   that dump into the same named graphs (load time printed), its triple count is checked against the
   embedded store's, and an ``EvidenceLookup`` over the ``RemoteStore`` in Virtuoso's dialect (what
   ``CRLM_KG_SPARQL_URL`` gives the service) reads the structure and evaluates the same patients;
3. printed: load time, lookup structure time, per-patient latency median / p95 for both stores, the named
   queries on both, and ``answers identical: n/n``. A differing answer or triple count is printed (its
   first differing place) and makes the exit status 1. Virtuoso is stopped and its directory removed
   whatever happens.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_QUERIES = ("rcts-by-setting", "trial-eligibility-criteria", "trials-for-patient", "statements-by-treatment",
                   "overall-survival-alpps-tsh")
DEFAULT_BUFFERS = 300_000  # 8 KiB pages: about 2.3 GiB, enough to load 5 M triples without thrashing


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def canonical(answer) -> str:
    return json.dumps(answer, sort_keys=True, default=str)


def first_difference(a, b, where: str = "$") -> str | None:
    """Where two JSON values first differ (a path and both sides, shortened), or None when equal."""
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} {str(a)[:120]!r} vs {type(b).__name__} {str(b)[:120]!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{where}.{key}: only in the {'embedded' if key in a else 'remote'} answer"
            found = first_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return f"{where}: {len(a)} vs {len(b)} items" if len(a) != len(b) else None
    return None if a == b else f"{where}: {str(a)[:120]!r} vs {str(b)[:120]!r}"


def time_patients(lookup, records: list, repeats: int, on_answer) -> list[float]:
    """Milliseconds per evaluation (each patient ``repeats`` times); ``on_answer(i, answer)`` sees the first."""
    times = []
    for i, record in enumerate(records):
        for k in range(repeats):
            t = time.perf_counter()
            answer = lookup.evaluate(record)
            times.append((time.perf_counter() - t) * 1000)
            if k == 0:
                on_answer(i, answer)
            del answer
    return times


# the separators our named queries give GROUP_CONCAT ("; " for lists, " + " for combined regimens, e.g. in
# conversion-rates-unresectable): SPARQL leaves the order of GROUP_CONCAT unspecified and Oxigraph and Virtuoso
# differ, so the parts are compared as sets
UNORDERED_SEPARATORS = ("; ", " + ")


def unordered_concat(row: dict) -> dict:
    """A row with each "a; b" or "a + b" value's parts sorted: GROUP_CONCAT's order is unspecified (engines differ)."""
    def norm(v: str, seps: tuple[str, ...] = UNORDERED_SEPARATORS) -> str:
        # outer separator first, then each part by the next one ("A + B; C + D" -> parts sorted at both levels)
        if not seps:
            return v
        return seps[0].join(sorted(norm(part, seps[1:]) for part in v.split(seps[0])))
    return {k: norm(v) if isinstance(v, str) else v for k, v in row.items()}


def time_queries(store, names: list[str]) -> dict[str, tuple[float, int, list[str]] | str]:
    """Per named query (example parameters): median ms of 3, the number of rows and the rows as sorted JSON
    (GROUP_CONCAT values compared as sets); or why the store gave no answer (a timeout: the query is not run again)."""
    from crlm_kg.queries import QueryLibrary
    from crlm_kg.store import QueryError

    library = QueryLibrary.load()
    out: dict[str, tuple[float, int, list[str]] | str] = {}
    for name in names:
        query = library.get(name)
        raw = {p.name: p.example for p in query.parameters if not p.optional}
        times = []
        try:
            for _ in range(3):
                t = time.perf_counter()
                _, rows = library.run(store, name, raw)
                times.append((time.perf_counter() - t) * 1000)
        except QueryError as exc:
            out[name] = f"no answer after {time.perf_counter() - t:.0f} s: {str(exc)[:120]}"
            continue
        out[name] = (statistics.median(times), len(rows), sorted(canonical(unordered_concat(r)) for r in rows))
    return out


def measure(args) -> int:
    """In a process whose CRLM_KG_HOME is the home to measure (the paths are read on import)."""
    from crlm_kg import paths
    from crlm_kg.evidence import EvidenceLookup
    from crlm_kg.queries import QueryLibrary
    from crlm_kg.store import EmbeddedStore
    from crlm_kg.virtuoso import running_virtuoso, virtuoso_available

    ok, reason = virtuoso_available()
    if not ok:
        print(f"Virtuoso not available: {reason}")
        return 2
    sys.path.insert(0, str(ROOT))
    from tests.evidence_helpers import EXAMPLE_FILES, record

    names = [q.name for q in QueryLibrary.load().all()] if args.queries == ["all"] else args.queries
    records = [record(p.name) for p in EXAMPLE_FILES]
    print(f"home {paths.ROOT}: {len(records)} example patients", flush=True)
    with tempfile.TemporaryDirectory(prefix="crlm-kg-bench-virtuoso-") as tmp:
        scratch = Path(tmp)
        t = time.perf_counter()
        store = EmbeddedStore.from_repository()
        embedded = {"load_s": time.perf_counter() - t, "triples": store.triple_count()}
        t = time.perf_counter()
        lookup = EvidenceLookup(store).warm()
        embedded["warm_s"] = time.perf_counter() - t
        digests: list[str] = []

        def keep(i: int, answer) -> None:  # on disk: 29 answers of tens of MB at 100x would crowd memory
            text = canonical(answer)
            (scratch / f"answer-{i}.json").write_text(text)
            digests.append(hashlib.sha256(text.encode()).hexdigest())

        embedded["patient_ms"] = time_patients(lookup, records, args.repeats, keep)
        embedded["queries"] = time_queries(store, names)
        dump = scratch / "load" / "repository.nq"
        dump.parent.mkdir()
        t = time.perf_counter()
        dump.write_bytes(store.dump())
        embedded["dump_s"] = time.perf_counter() - t
        print(f"embedded: {embedded['triples']:,} triples, load {embedded['load_s']:.1f} s, lookup structure "
              f"{embedded['warm_s']:.2f} s, dump {embedded['dump_s']:.1f} s ({dump.stat().st_size / 1e6:,.0f} MB N-Quads)",
              flush=True)
        del lookup, store
        gc.collect()

        failures = 0
        with running_virtuoso(nquads=dump, buffers=args.buffers, load_timeout=args.load_timeout) as virtuoso:
            remote = virtuoso.store(timeout=args.query_timeout)
            print(f"virtuoso: bulk load {virtuoso.load_seconds:.1f} s (ld_dir + rdf_loader_run + checkpoint, "
                  f"{args.buffers:,} buffers), {virtuoso.triples:,} triples in the repository graphs "
                  f"({'equal to' if virtuoso.triples == embedded['triples'] else 'DIFFERENT FROM'} the embedded store's)",
                  flush=True)
            if virtuoso.triples != embedded["triples"]:
                failures += 1
            t = time.perf_counter()
            remote_lookup = EvidenceLookup(remote).warm()
            warm_s = time.perf_counter() - t
            print(f"virtuoso: lookup structure {warm_s:.2f} s (embedded {embedded['warm_s']:.2f} s)", flush=True)
            identical = []

            def compare(i: int, answer) -> None:
                text = canonical(answer)
                same = hashlib.sha256(text.encode()).hexdigest() == digests[i]
                identical.append(same)
                if not same:
                    where = first_difference(json.loads((scratch / f"answer-{i}.json").read_text()), json.loads(text))
                    print(f"  DIFFERENT answer for {EXAMPLE_FILES[i].name}: {where}", flush=True)

            remote_ms = time_patients(remote_lookup, records, args.repeats, compare)
            remote.close()
            # the evidence comparison first: some named queries take minutes on Virtuoso at 100x the evidence
            e_ms = embedded["patient_ms"]
            print(f"evidence lookup per patient (full answer, {args.repeats} run(s) each of {len(records)} patients, warm):")
            print(f"  {'':10} {'median':>10} {'p95':>10}")
            print(f"  {'embedded':10} {statistics.median(e_ms):8.1f} ms {percentile(e_ms, 0.95):8.1f} ms")
            print(f"  {'virtuoso':10} {statistics.median(remote_ms):8.1f} ms {percentile(remote_ms, 0.95):8.1f} ms  "
                  f"(×{statistics.median(remote_ms) / max(statistics.median(e_ms), 1e-3):.1f})")
            print(f"answers identical: {identical.count(True)}/{len(records)}", flush=True)
            queries_store = virtuoso.store(timeout=args.named_query_timeout)
            remote_queries = time_queries(queries_store, names)
            queries_store.close()
        failures += identical.count(False)

    print(f"named queries, median of 3 (example parameters; at most {args.named_query_timeout:.0f} s each on Virtuoso):  "
          "embedded → virtuoso, rows")
    for name in names:
        if isinstance(remote_queries[name], str):
            print(f"  {name:<42} {embedded['queries'][name][0]:9.1f} ms → {remote_queries[name]}")
            continue
        (e, e_rows, e_json), (r, r_rows, r_json) = embedded["queries"][name], remote_queries[name]
        differing = [(x, y) for x, y in zip(e_json, r_json) if x != y]
        same = "same rows" if e_json == r_json else f"{len(differing)} rows differ" if e_rows == r_rows else "row counts differ"
        print(f"  {name:<42} {e:9.1f} ms → {r:9.1f} ms  rows {e_rows} / {r_rows} ({same})")
        if differing:  # reported, not failed: the named queries are not the evidence answer this compares
            print(f"      first: embedded {differing[0][0][:300]}\n             virtuoso {differing[0][1][:300]}")
    return 1 if failures else 0


def run(home: Path | None, extra: list[str] = ()) -> int:
    """Measure ``home`` (None: the repository) in a fresh process; its exit status (0: answers identical)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CRLM_KG_SPARQL_URL", None)
    if home is not None:
        env["CRLM_KG_HOME"] = str(home)
    return subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure", *extra], cwd=ROOT, env=env).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--home", type=Path, help="a repository home (scale_evidence.py writes scaled ones)")
    where.add_argument("--factor", type=int, help="write a home with the evidence this many times into a scratch directory")
    parser.add_argument("--buffers", type=int, default=DEFAULT_BUFFERS, help="Virtuoso's NumberOfBuffers (8 KiB pages)")
    parser.add_argument("--repeats", type=int, default=2, help="evaluations of each patient per store")
    parser.add_argument("--queries", nargs="+", default=list(DEFAULT_QUERIES), help="named queries to time, or 'all'")
    parser.add_argument("--load-timeout", type=float, default=3600.0)
    parser.add_argument("--query-timeout", type=float, default=600.0, help="seconds per query of the evidence lookup")
    parser.add_argument("--named-query-timeout", type=float, default=120.0,
                        help="seconds per named query on Virtuoso (past it: reported, not run again)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        sys.exit(measure(args))
    extra = ["--buffers", str(args.buffers), "--repeats", str(args.repeats), "--load-timeout", str(args.load_timeout),
             "--query-timeout", str(args.query_timeout), "--named-query-timeout", str(args.named_query_timeout),
             "--queries", *args.queries]
    if args.factor:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from scale_evidence import write_home

        with tempfile.TemporaryDirectory(prefix="crlm-kg-scale-") as tmp:
            sys.exit(run(write_home(args.factor, Path(tmp) / f"x{args.factor}"), extra))
    sys.exit(run(args.home, extra))


if __name__ == "__main__":
    main()
