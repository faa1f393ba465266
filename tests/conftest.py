"""Shared fixtures: the repository graph is loaded once per session."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from crlm_kg.evidence import EvidenceLookup
from crlm_kg.store import EmbeddedStore
from tests import quality_gates, support


@pytest.fixture(scope="session")
def repo_store() -> EmbeddedStore:
    return EmbeddedStore.from_repository()


@pytest.fixture(scope="session")
def lookup(repo_store) -> EvidenceLookup:
    """The evidence lookup on the repository graph (answers are read-only: safe to share)."""
    return EvidenceLookup(repo_store).warm()


@pytest.fixture(scope="session")
def answers(lookup) -> dict[str, dict]:
    """The full answer for every example patient, by file name."""
    from tests.evidence_helpers import EXAMPLE_FILES, record

    return {path.name: lookup.evaluate(record(path.name)) for path in EXAMPLE_FILES}


ROOT = Path(__file__).resolve().parent.parent


def _wait_for_port(port: int, proc: subprocess.Popen, log_file: Path, timeout: float = 120) -> None:
    """Until the server accepts TCP connections (no HTTP request is sent: the first requests are the test's)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError("uvicorn exited: " + log_file.read_text(errors="replace")[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start in {timeout:g} s: " + log_file.read_text(errors="replace")[-2000:])
        time.sleep(0.1)


@contextlib.contextmanager
def uvicorn_server(log_file: Path, **env_overrides: str) -> Iterator[str]:
    """A fresh ``uvicorn --factory api.app:create_app`` process (its settings from the environment,
    as in production), its output written to ``log_file``; yields the base URL once it listens."""
    port = support.free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_overrides)
    env.pop("CRLM_KG_SPARQL_URL", None)
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "crlm_kg.api.app:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_port(port, proc, log_file)
            yield f"http://127.0.0.1:{port}"
        finally:
            support.stop(proc)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    with uvicorn_server(tmp_path_factory.mktemp("live-server") / "server.log", CRLM_KG_QUERY_TIMEOUT="2", CRLM_KG_QUERY_WORKERS="2") as base:
        yield base


# --------------------------------------------------------------------------- hooks: quality gates, server logs



def pytest_configure(config):
    config.pluginmanager.register(quality_gates, "crlm-kg-quality-gates")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the tail of every server log of ``support.running_server`` that is still open."""
    report = yield
    if report.failed:
        for name, path in support.RUNNING_LOGS.items():
            report.sections.append((f"server log {name} ({path})", support.log_tail(path)))
    return report
