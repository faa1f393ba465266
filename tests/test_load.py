"""A short run of benchmarks/load_test.py (the README's figures come from the 60 s run):
concurrent SPARQL, named-query and evidence clients against a real uvicorn, with zero
errors, evidence answers identical to the single-client ones and the graph unchanged, both
the parent's copy (the benchmark's /health fingerprint) and the copies the SPARQL workers
answer from (their digest before and after, against a fresh load of the files)."""

from __future__ import annotations

import importlib.util
import json
import os

import httpx
import pytest

from tests.support import ROOT, repository_digest, running_server, scaled, worker_digest

WORKERS = 2


def _load_module():
    spec = importlib.util.spec_from_file_location("load_test", ROOT / "benchmarks" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_short_load_run_has_no_errors_and_identical_answers(capsys, tmp_path):
    env = dict(os.environ, CRLM_KG_QUERY_TIMEOUT="5", CRLM_KG_QUERY_WORKERS=str(WORKERS), PYTHONPATH=str(ROOT))
    env.pop("CRLM_KG_SPARQL_URL", None)
    with running_server(tmp_path, env, name="load-test") as base, httpx.Client(base_url=base, timeout=scaled(60)) as http:
        before = worker_digest(http, WORKERS)
        status = _load_module().main(["--url", base, "--duration", "6", "--clients", "16", "--json"])
        result = json.loads(capsys.readouterr().out)
        after = worker_digest(http, WORKERS)
    assert result["errors"] == 0, result["error_samples"]
    assert result["evidence_mismatches"] == 0
    assert result["graph_unchanged"] and result["fingerprint_after"]["triples"] > 10000
    assert after == before == repository_digest()
    assert all(kind["requests"] > 0 for kind in result["by_kind"].values())
    assert status == 0
