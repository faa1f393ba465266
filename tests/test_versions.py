"""Release number and data version: one release number everywhere, and a data version (release
number + the graph's content hash) in /health, in every evidence answer and in the CLI's."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pyoxigraph as ox
import pytest
from fastapi.testclient import TestClient

import crlm_kg
from crlm_kg.api.app import create_app
from crlm_kg import cli, paths
from crlm_kg.settings import Settings
from crlm_kg.store import EmbeddedStore
from crlm_kg.versions import HASH_DIGITS, data_version

ROOT = Path(__file__).resolve().parent.parent
CASE = paths.EXAMPLES_DIR / "patients" / "case-resectable-high-fong.json"


@pytest.fixture(scope="module")
def client(repo_store):
    with TestClient(create_app(Settings(query_workers=1), repo_store)) as c:
        yield c


def test_one_release_number_in_pyproject_package_and_citation():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    citation = [line for line in (ROOT / "CITATION.cff").read_text(encoding="utf-8").splitlines() if line.startswith("version:")]
    assert project == crlm_kg.__version__ == "0.2.0"
    assert citation == [f'version: "{project}"']
    assert f"## [{project}]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_version_flag_prints_the_release_number():
    proc = subprocess.run([sys.executable, "-m", "crlm_kg.cli", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"crlm-kg {crlm_kg.__version__}"


def test_data_version_is_the_release_and_the_graph_hash(repo_store):
    version = data_version(repo_store)
    fingerprint = repo_store.fingerprint()
    assert version.sha256 == fingerprint["sha256"] and version.triples == fingerprint["triples"]
    assert version.label == f"{crlm_kg.__version__}+sha256.{fingerprint['sha256'][:HASH_DIGITS]}"


@pytest.mark.slow
def test_one_changed_quad_changes_the_data_version(repo_store):
    extra = ox.Quad(ox.NamedNode(paths.CRLMD + "Extra"), ox.NamedNode(paths.PREFIXES["rdfs"] + "label"), ox.Literal("x"),
                    ox.NamedNode(paths.GRAPH_EVIDENCE))
    changed = EmbeddedStore(list(ox.parse(repo_store.dump(), format=ox.RdfFormat.N_QUADS)) + [extra])
    assert data_version(changed).label != data_version(repo_store).label
    reloaded = EmbeddedStore.from_nquads(repo_store.dump())
    assert data_version(reloaded).label == data_version(repo_store).label


def test_health_reports_the_data_version(client, repo_store):
    body = client.get("/health").json()
    assert body["version"] == crlm_kg.__version__
    assert body["dataVersion"] == data_version(repo_store).label
    assert body["graphSha256"] == repo_store.fingerprint()["sha256"]


@pytest.mark.parametrize("view", ["full", "summary"])
def test_every_evidence_answer_carries_the_data_version(client, view):
    expected = client.get("/health").json()["dataVersion"]
    one = client.post(f"/evidence?view={view}", content=CASE.read_bytes(), headers={"content-type": "application/json"})
    assert one.status_code == 200, one.text[:300]
    assert one.json()["dataVersion"] == expected
    records = [json.loads(CASE.read_bytes()), {**json.loads(CASE.read_bytes()), "id": "second"}]
    batch = client.post(f"/evidence/batch?view={view}", json=records)
    assert batch.status_code == 200, batch.text[:300]
    assert [a["dataVersion"] for a in batch.json()] == [expected, expected]


@pytest.mark.slow
def test_cli_evidence_answer_carries_the_data_version(capsys, repo_store):
    assert cli.main(["evidence", str(CASE), "--view", "summary"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["dataVersion"] == data_version(repo_store).label
    assert answer["patient"] == "case-resectable-high-fong"
