"""Start-up: ``crlm-kg serve`` on a broken copy of the repository stops with the file and
line, and no traceback, rather than serving a partial graph (CRLM_KG_HOME points the
paths at the copy)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crlm_kg.settings import Settings

from tests.conftest import ROOT
from tests.support import free_port

BROKEN_FILE = Path("data/studies/atom.ttl")


@pytest.fixture()
def home(tmp_path) -> Path:
    for folder in ("ontology", "data", "validation", "queries"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("docs"))
    return tmp_path


def _append(path: Path, text: str) -> int:
    """Append ``text`` (one line) and return its line number."""
    content = path.read_text(encoding="utf-8")
    if not content.endswith("\n"):
        content += "\n"
    path.write_text(content + text + "\n", encoding="utf-8")
    return content.count("\n") + 1


def _serve(home: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CRLM_KG_HOME=str(home), PYTHONPATH=str(ROOT), CRLM_KG_QUERY_WORKERS="1")
    for name in ("CRLM_KG_SPARQL_URL", "CRLM_KG_DEBUG", "CRLM_KG_VALIDATE_ON_START"):
        env.pop(name, None)
    # a server that (wrongly) starts is stopped by the timeout, which fails the test
    return subprocess.run([sys.executable, "-m", "crlm_kg.cli", "serve", "--port", str(free_port()), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_bad_turtle_stops_serve_with_file_and_line(home):
    line = _append(home / BROKEN_FILE, "crlmd:Broken crlm:label \"unterminated .")
    result = _serve(home)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{home / BROKEN_FILE}, line {line}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Uvicorn running" not in result.stderr


@pytest.mark.slow
def test_evidence_violating_the_shapes_stops_serve_with_file_and_line(home):
    line = _append(home / BROKEN_FILE, "crlmd:UnlabelledStudyXyz a crlm:CohortStudy .")
    result = _serve(home)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{home / BROKEN_FILE}, line {line}" in result.stderr
    assert "every study needs an rdfs:label" in result.stderr
    assert "crlmd:UnlabelledStudyXyz" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_check_evidence_shapes_names_the_first_offending_file(home, monkeypatch):
    """The locator on its own (no subprocess): a focus node is traced to where it is written."""
    from crlm_kg.curation import _locate

    line = _append(home / BROKEN_FILE, "crlmd:UnlabelledStudyXyz a crlm:CohortStudy .")
    files = sorted((home / "data").rglob("*.ttl"))
    assert _locate("crlmd:UnlabelledStudyXyz", files) == (home / BROKEN_FILE, line)
    assert _locate("crlmd:NoWhere", files) == (None, None)


def test_validation_is_on_by_default_and_can_be_turned_off():
    from crlm_kg.cli import build_parser

    assert build_parser(Settings()).parse_args(["serve"]).validate is True
    assert build_parser(Settings()).parse_args(["serve", "--no-validate"]).validate is False
    assert build_parser(Settings(validate_on_start=False)).parse_args(["serve"]).validate is False


def test_serve_defaults_come_from_the_settings():
    from crlm_kg.cli import build_parser

    args = build_parser(Settings(host="0.0.0.0", port=8123)).parse_args(["serve"])
    assert (args.host, args.port) == ("0.0.0.0", 8123)
    assert build_parser(Settings()).parse_args(["serve", "--port", "9000"]).port == 9000


def test_invalid_configuration_is_named_without_a_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), CRLM_KG_PORT="eighty")
    result = subprocess.run([sys.executable, "-m", "crlm_kg.cli", "stats"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "CRLM_KG_PORT" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_first_requests_to_a_fresh_server_may_arrive_together(tmp_path):
    """Regression (issue 11): when the first two or more POST /evidence of a fresh server arrived
    together, rdflib's SPARQL parser (pyparsing, not thread-safe) ran on several threads at once,
    corrupted its parse actions, and every later /evidence answered 500 until restart. The
    lifespan now prepares every query before the server listens; here the first eight requests
    (nothing is sent before them, not even /health) arrive at once."""
    import json
    import threading

    import httpx

    from crlm_kg import paths
    from tests.conftest import uvicorn_server

    record = (paths.EXAMPLES_DIR / "patients" / "case-resectable-ras-wild-type.json").read_bytes()
    clients = 8
    barrier = threading.Barrier(clients)
    answers: list = [None] * clients

    def first_request(i: int) -> None:
        barrier.wait(10)
        try:
            answers[i] = httpx.post(base + "/evidence", content=record, headers={"content-type": "application/json"}, timeout=120)
        except httpx.HTTPError as exc:
            answers[i] = exc

    log_file = tmp_path / "server.log"
    with uvicorn_server(log_file, CRLM_KG_QUERY_WORKERS="1") as base:
        threads = [threading.Thread(target=first_request, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        later = httpx.post(base + "/evidence", content=record, headers={"content-type": "application/json"}, timeout=120)
    log = log_file.read_text(errors="replace")
    statuses = [getattr(a, "status_code", repr(a)) for a in answers]
    assert statuses == [200] * clients, (statuses, log[-3000:])
    bodies = {json.dumps(a.json(), sort_keys=True) for a in answers}
    assert len(bodies) == 1, "concurrent first requests gave different answers"
    assert later.status_code == 200, (later.text[:500], log[-3000:])
    assert json.dumps(later.json(), sort_keys=True) in bodies
    assert "Traceback" not in log, log[-3000:]
