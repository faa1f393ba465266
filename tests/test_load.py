"""A short run of benchmarks/load_test.py (the README's figures come from the 60 s run):
concurrent SPARQL, named-query and evidence clients against a real uvicorn, with zero
errors, evidence answers identical to the single-client ones and the graph unchanged."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.conftest import ROOT


def _load_module():
    spec = importlib.util.spec_from_file_location("load_test", ROOT / "benchmarks" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_short_load_run_has_no_errors_and_identical_answers(capsys):
    status = _load_module().main(["--duration", "6", "--clients", "16", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["errors"] == 0, result["error_samples"]
    assert result["evidence_mismatches"] == 0
    assert result["graph_unchanged"] and result["fingerprint_after"]["triples"] > 10000
    assert all(kind["requests"] > 0 for kind in result["by_kind"].values())
    assert status == 0
