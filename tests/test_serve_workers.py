"""``crlm-kg serve --workers N``: several server processes share the port (the evaluation holds the GIL, so one
process uses one core), and every process answers a patient exactly as a single process does."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from crlm_kg.settings import Settings

from tests.conftest import ROOT
from tests.evidence_helpers import EXAMPLE_FILES
from tests.support import free_port, stop


def _serve_args(monkeypatch, *argv: str):
    """What ``crlm-kg serve`` hands to uvicorn (uvicorn.run recorded, nothing served)."""
    import uvicorn

    from crlm_kg.cli import _cmd_serve, build_parser

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    assert _cmd_serve(build_parser(Settings()).parse_args(["serve", "--no-validate", *argv])) == 0
    assert len(calls) == 1
    return calls[0]


def test_workers_default_to_the_setting():
    from crlm_kg.cli import build_parser

    assert build_parser(Settings()).parse_args(["serve"]).workers == 1
    assert build_parser(Settings(workers=3)).parse_args(["serve"]).workers == 3
    assert build_parser(Settings(workers=3)).parse_args(["serve", "--workers", "2"]).workers == 2


def test_several_workers_each_build_the_app_from_the_factory(monkeypatch):
    app, options = _serve_args(monkeypatch, "--workers", "2", "--port", "8123")
    # uvicorn starts worker processes only from an import string; each builds its own store and lookup
    assert app == "api.app:create_app"
    assert options["factory"] is True and options["workers"] == 2 and options["port"] == 8123


def test_one_worker_serves_the_app_built_here(monkeypatch):
    from fastapi import FastAPI

    app, options = _serve_args(monkeypatch)
    assert isinstance(app, FastAPI) and "workers" not in options


@pytest.mark.slow
def test_two_workers_give_every_patient_the_single_process_answer(tmp_path):
    """The same answer from whichever worker takes the request: every example patient, four times each, on
    two connections, against the answer of a single-process server."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), CRLM_KG_QUERY_WORKERS="1")
    env.pop("CRLM_KG_SPARQL_URL", None)
    log = tmp_path / "server.log"
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(Settings())) as single:
        expected = {p.name: single.post("/evidence", content=p.read_bytes(), headers={"content-type": "application/json"}).content
                    for p in EXAMPLE_FILES}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "crlm_kg.cli", "serve", "--no-validate", "--workers", "2", "--port", str(port),
                                 "--log-level", "warning"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
                try:
                    if httpx.get(base + "/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            clients = [httpx.Client(base_url=base, timeout=60) for _ in range(2)]
            try:
                for round_ in range(4):
                    for path in EXAMPLE_FILES:
                        r = clients[round_ % 2].post("/evidence", content=path.read_bytes(), headers={"content-type": "application/json"})
                        assert r.status_code == 200, r.text[:300]
                        assert r.content == expected[path.name], path.name
            finally:
                for client in clients:
                    client.close()
        finally:
            stop(proc)
