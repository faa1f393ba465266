"""The ``crlm-kg`` command line.

Every subcommand prints a clear message and exits non-zero on bad input; no
traceback reaches the user (``CRLM_KG_DEBUG=1``, ``Settings.debug``, shows one for
developers). Defaults come from the settings (``crlm_kg.settings``), read once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from . import __version__
from .settings import Settings, get_settings


def _cmd_serve(args: argparse.Namespace) -> int:
    """Load every data file, check the evidence's structure against its shapes (unless --no-validate or
    CRLM_KG_VALIDATE_ON_START=0; the full SHACL gate is ``crlm-kg check``), then serve: a broken file stops start-up with its name and
    line, never a partial graph."""
    import uvicorn

    from .curation import ShapesViolation
    from .startup_check import check_store_once
    from .graphs import DataFileError
    from .settings import get_settings
    from .store import open_store

    try:
        from crlm_kg.api.app import create_app

        settings: Settings = args.settings
        store = open_store(settings)  # a Turtle syntax error raises DataFileError (file, line)
        if args.validate and store.capabilities.in_process:
            # the structural part of the shapes, as SPARQL on the loaded store (seconds at 100x the evidence);
            # the whole-graph pyshacl gate is crlm-kg check's, and CI's
            print("crlm-kg serve: checking the evidence's structure against validation/evidence-shapes.ttl "
                  "(--no-validate skips this; crlm-kg check runs the full SHACL gate)", file=sys.stderr)
            check_store_once(store)
        app = create_app(settings, store)
    except ShapesViolation as exc:
        print(f"crlm-kg serve: refusing to start, evidence violates its shapes: {exc}", file=sys.stderr)
        for problem in exc.problems[:20]:
            print(f"  - {problem}", file=sys.stderr)
        if len(exc.problems) > 20:
            print(f"  … and {len(exc.problems) - 20} more (crlm-kg check lists them all)", file=sys.stderr)
        return 1
    except DataFileError as exc:
        print(f"crlm-kg serve: refusing to start, broken data file: {exc}", file=sys.stderr)
        return 1
    # behind nginx (deploy/nginx.conf), a cap on what uvicorn serves at once: past it, a 503 at once
    options = dict(host=args.host, port=args.port, log_level=args.log_level, limit_concurrency=args.limit_concurrency)
    if args.workers > 1:
        # the evaluation holds the GIL: more cores need more processes. Each worker builds its own app (store,
        # evidence lookup, SPARQL workers) from the environment's settings; the data were checked above, once.
        store.close()  # each worker opens its own
        uvicorn.run("api.app:create_app", factory=True, workers=args.workers, **options)
    else:
        uvicorn.run(app, **options)
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from . import ontology

    owl = ontology.write_owl()
    print(f"wrote {owl}")
    try:
        docs = ontology.write_docs()
        print(f"wrote {docs}")
    except Exception as exc:  # documentation is a convenience; the build must not fail on it
        print(f"warning: ontology documentation not generated: {exc}", file=sys.stderr)
    settings: Settings = args.settings
    if settings.store_dir_path is not None and not settings.sparql_url:
        from .store import EmbeddedStore

        # what `crlm-kg serve` opens: built now rather than at its first start (minutes at 100x the evidence)
        store = EmbeddedStore.from_store_dir(settings.store_dir_path)
        print(f"on-disk store {store.path} ({store.triple_count()} triples)")
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from .release import build_release

    for path in build_release(Path(args.out), previous=args.previous):
        print(f"wrote {path}")
    return 0


def _print_gate(result) -> None:
    mark = "SKIP" if result.skipped else ("PASS" if result.ok else "FAIL")
    print(f"[{mark}] {result.name}: {result.summary}")
    for problem in result.problems[:50]:
        print(f"       - {problem}")
    if len(result.problems) > 50:
        print(f"       … and {len(result.problems) - 50} more")


def _cmd_check(args: argparse.Namespace) -> int:
    from . import checks

    results = checks.all_gates()
    for result in results:
        _print_gate(result)
    failed = [r for r in results if not r.ok and not r.skipped]
    skipped = [r for r in results if r.skipped]
    print(f"{len(results) - len(failed) - len(skipped)} of {len(results)} gates passed"
          + (f"; skipped: {', '.join(r.name for r in skipped)}" if skipped else "")
          + (f"; failed: {', '.join(r.name for r in failed)}" if failed else ""))
    strict = args.strict or args.settings.strict
    if skipped and strict:
        print("strict mode (--strict or CRLM_KG_STRICT): a skipped gate fails the check", file=sys.stderr)
    return 1 if failed or (skipped and strict) else 0


def _cmd_audit_criteria(args: argparse.Namespace) -> int:
    """Write the criteria audit table (source wording beside encoding) from the graph, or check it is current."""
    from .evidence.audit import criteria_audit
    from .store import open_store

    text = criteria_audit(open_store(args.settings))
    out = Path(args.out)
    if args.check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print(f"crlm-kg audit-criteria: {out} is not current; run `crlm-kg audit-criteria` and commit it", file=sys.stderr)
            return 1
        print(f"{out} is current")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from . import curation
    from .store import EmbeddedStore

    from .ontology import load_graph
    from .ontology_terms import mapping_coverage

    stats = curation.statistics(EmbeddedStore.from_repository())
    coverage = mapping_coverage(load_graph())
    stats["mapping coverage"] = {branch: f"{mapped}/{total}" for branch, (mapped, total) in coverage.items()}
    if args.format == "json":
        print(json.dumps(stats, indent=2))
    else:
        for key, value in stats.items():
            if isinstance(value, dict):
                print(f"{key:>40}:")
                for branch, share in value.items():
                    print(f"{branch:>44}: {share} classes with a verified cross-reference")
            else:
                print(f"{key:>40}: {value}")
    return 0


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _print_fhir_unmapped(report) -> None:
    """What a FHIR bundle held that could not be mapped: on stderr, beside the answer, never dropped."""
    for item in report.fhir_unmapped or []:
        print(f"fhir: not mapped: {item['resource']} {item['element']}: {item['reason']}", file=sys.stderr)


def _cmd_validate(args: argparse.Namespace) -> int:
    from . import patients

    try:
        data = _read_input(args.file)
    except OSError as exc:
        print(f"crlm-kg validate: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    report, _ = patients.parse_and_validate_fast(data, filename=args.file, limits=patients.Limits.from_settings(args.settings))
    _print_fhir_unmapped(report)
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(report.to_text())
    return 0 if report.conforms else 1


def _cmd_evidence(args: argparse.Namespace) -> int:
    from . import evidence, patients
    from .store import open_store
    from .versions import data_version

    try:
        data = _read_input(args.file)
    except OSError as exc:
        print(f"crlm-kg evidence: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    report, records = patients.parse_and_validate_fast(data, filename=args.file)
    _print_fhir_unmapped(report)
    if not report.conforms:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return 1
    store = open_store(args.settings)
    lookup = evidence.EvidenceLookup(store)
    version = data_version(store).label  # the graph the answer comes from, as /evidence reports it
    try:
        results = [{**evidence.apply_view(lookup.evaluate(record, args.view), args.view, args.status, args.include), "dataVersion": version}
                   for record in records]
    except evidence.ViewError as exc:
        print(f"crlm-kg evidence: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results[0] if len(results) == 1 else results, indent=2, ensure_ascii=False))
    return 0


def _cmd_screen(args: argparse.Namespace) -> int:
    from . import evidence, patients, screening
    from .screening.progress import ProgressBar
    from .store import open_store

    try:
        data = _read_input(args.cohort)
        cohort = screening.read_cohort(data, filename=args.cohort)
    except OSError as exc:
        print(f"crlm-kg screen: cannot read {args.cohort}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except screening.CohortError as exc:
        print(f"crlm-kg screen: {exc}", file=sys.stderr)
        return 1
    statuses = tuple(s.strip() for s in args.status.split(",") if s.strip())
    if not statuses or any(s not in screening.STATUSES for s in statuses):
        print(f"crlm-kg screen: --status takes {','.join(screening.STATUSES)} (comma-separated); got {args.status!r}", file=sys.stderr)
        return 2
    lookup = evidence.EvidenceLookup(open_store(args.settings))
    # a cohort file is the user's own: no cap on its records, the per-record limits apply
    limits = patients.Limits(records=max(len(cohort.records), 1), keys=args.settings.max_record_keys, violations=10 ** 9)
    bar = ProgressBar(len(cohort.records)) if args.progress or sys.stderr.isatty() else None
    try:
        result = screening.screen(lookup, cohort.records, args.trial, statuses, limits, cohort.labels, progress=bar, workers=args.workers)
    except KeyError:
        print(f"crlm-kg screen: no trial has the id or acronym {args.trial!r}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    result.invalid = [v.to_json() for v in cohort.problems] + result.invalid
    for v in result.invalid:  # never dropped: each invalid record, on stderr, with its field and rule
        print(f"invalid: {v['record']}: {v['field']} [{v['rule']}] {v['message']}", file=sys.stderr)
    sys.stdout.write(screening.to_csv(result) if args.format == "csv" else json.dumps(screening.to_json(result), indent=2, ensure_ascii=False) + "\n")
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    from . import queries
    from .settings import get_settings
    from .store import open_store

    library = queries.QueryLibrary.load()
    if args.name in (None, "list"):
        for q in library.all():
            print(f"{q.name:40} {q.title}")
        return 0
    try:
        params = queries.parse_cli_params(args.param or [])
        columns, rows = library.run(open_store(args.settings), args.name, params)
    except queries.QueryParameterError as exc:
        print(f"crlm-kg query: {exc}", file=sys.stderr)
        return 1
    print(queries.format_table(columns, rows, args.format, args.name))
    return 0


def _cmd_pool(args: argparse.Namespace) -> int:
    from .pooling import PoolingRefused, pool
    from .store import open_store

    try:
        answer = pool(open_store(args.settings), endpoint=args.endpoint, intervention=args.intervention, comparator=args.comparator,
                      setting=args.setting, randomised_only=not args.any_design, figures=args.figure, method=args.method)
    except PoolingRefused as exc:
        print(f"crlm-kg pool: refused: {exc.reason}", file=sys.stderr)
        for item in exc.excluded:
            print(f"  left out {item['figure']}: {item['reason']}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The command line, its defaults taken from ``settings`` (default: the process's)."""
    settings = settings if settings is not None else get_settings()
    parser = argparse.ArgumentParser(prog="crlm-kg", description="Knowledge graph of the clinical evidence for colorectal liver metastases.")
    parser.set_defaults(settings=settings)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the API and SPARQL endpoint on the embedded store")
    p.add_argument("--host", default=settings.host, help="default: CRLM_KG_HOST (%(default)s)")
    p.add_argument("--port", type=int, default=settings.port, help="default: CRLM_KG_PORT (%(default)s)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--limit-concurrency", type=int, default=settings.limit_concurrency,
                   help="connections and tasks served at once, the next answered 503 (default: CRLM_KG_LIMIT_CONCURRENCY, %(default)s)")
    p.add_argument("--workers", type=int, default=settings.workers,
                   help="server processes sharing the port, one per core to use every core (default: CRLM_KG_WORKERS, %(default)s)")
    p.add_argument("--validate", dest="validate", action="store_true", default=settings.validate_on_start,
                   help="check the evidence against its SHACL shapes before serving (default; CRLM_KG_VALIDATE_ON_START=0 turns it off)")
    p.add_argument("--no-validate", dest="validate", action="store_false", help="skip the start-up structural check of the evidence")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("build", help="generate the RDF/XML copy and the HTML documentation of the ontology")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("release", help="build the release files: N-Quads dump, ontology (Turtle, RDF/XML, merged with the evidence), "
                                       "catalog, JSON-LD context, shapes, VoID/DCAT description, SHA256SUMS")
    p.add_argument("--out", default="dist", help="folder to write them to (default: %(default)s)")
    p.add_argument("--previous", default=None, help="the previous ontology (a crlm.ttl file or a git tag/ref) to write ontology-diff.md against")
    p.set_defaults(func=_cmd_release)

    p = sub.add_parser("check", help="run every quality gate (ontology, evidence shapes, patient shapes, SPARQL protocol)")
    p.add_argument("--strict", action="store_true", help="a skipped gate (tool or source documents absent) fails the check (also CRLM_KG_STRICT=1)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("audit-criteria", help="write docs/criteria-audit.md: every criterion's source wording beside its encoding")
    p.add_argument("--out", default=str(settings.home / "docs" / "criteria-audit.md"), help="where to write the table")
    p.add_argument("--check", action="store_true", help="exit 1 if the file differs from what the graph gives")
    p.set_defaults(func=_cmd_audit_criteria)

    p = sub.add_parser("stats", help="count studies, arms, figures, criteria and statements, and the provenance share")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_stats)

    p = sub.add_parser("validate", help="validate patient records (JSON, JSON-LD or Turtle; one or a list)")
    p.add_argument("file", help="path, or - for standard input")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("evidence", help="the evidence that applies to a patient record")
    p.add_argument("file", help="path, or - for standard input")
    p.add_argument("--view", choices=["summary", "full"], default="full", help="summary: patient, derived values and summary only")
    p.add_argument("--status", action="append", help="full view: keep trials with these statuses (eligible,undetermined,ineligible)")
    p.add_argument("--include", action="append", help="full view: keep these sections (summary,derived,trials,recommendations,cautions)")
    p.set_defaults(func=_cmd_evidence)

    p = sub.add_parser("screen", help="screen a cohort (NDJSON, CSV, JSON list or FHIR bundles) for one trial or every trial")
    p.add_argument("cohort", help="path, or - for standard input")
    p.add_argument("--trial", help="a trial's id or acronym (default: every trial)")
    p.add_argument("--status", default="eligible", help="statuses listed, comma-separated (eligible,undetermined,ineligible; default eligible)")
    p.add_argument("--format", choices=["json", "csv"], default="json", help="csv: one row per trial, patient and criterion")
    p.add_argument("--progress", action="store_true", help="a progress bar on stderr even when it is not a terminal")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes screening slices of a large cohort (default: one per core)")
    p.set_defaults(func=_cmd_screen)

    p = sub.add_parser("query", help="run a named SPARQL query from queries/ (no name: list them)")
    p.add_argument("name", nargs="?")
    p.add_argument("--param", "-p", action="append", metavar="KEY=VALUE")
    p.add_argument("--format", choices=["table", "json", "csv", "tsv", "xml"], default="table", help="json is the shape GET /queries/NAME answers")
    p.set_defaults(func=_cmd_query)

    p = sub.add_parser("pool", help="random-effects pooled hazard ratio of comparable comparisons (or refuse, saying why)")
    p.add_argument("--endpoint", help="endpoint class, e.g. ProgressionFreeSurvival")
    p.add_argument("--intervention", help="treatment class the intervention arm adds, e.g. Chemotherapy")
    p.add_argument("--comparator", help="treatment class the comparator arm gets instead (default: add-on comparisons only)")
    p.add_argument("--setting", help="Resectable, BorderlineResectable or Unresectable")
    p.add_argument("--any-design", action="store_true", help="include non-randomised studies (default: RCTs only)")
    p.add_argument("--figure", action="append", help="pool exactly these hazard-ratio figures (repeat)")
    p.add_argument("--method", choices=["dl", "pm"], default="dl", help="DerSimonian-Laird (default) or Paule-Mandel")
    p.set_defaults(func=_cmd_pool)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:  # e.g. CRLM_KG_PORT=abc: name the variable, no traceback
        problems = "; ".join(f"CRLM_KG_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors())
        print(f"crlm-kg: invalid configuration: {problems}", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if settings.debug:
            raise
        print(f"crlm-kg {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
