"""The wheel is a complete install (issue 13): one top-level package, ``crlm_kg`` (the API
inside it as ``crlm_kg.api``), carrying the ontology, evidence, queries and shapes as package
data. It is built from the tracked files, installed into a fresh virtualenv outside the
checkout, and ``crlm-kg evidence`` and ``crlm-kg serve`` run from there give the checkout's
answers for the same graph."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, running_server

pytestmark = pytest.mark.slow

PATIENT = ROOT / "data" / "examples" / "patients" / "braf-v600e.json"


def tracked_tree(target: Path) -> Path:
    """What a fresh clone holds, plus the generated RDF/XML ontology the set-up writes."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    if (ROOT / "ontology" / "crlm.owl").exists():
        shutil.copy2(ROOT / "ontology" / "crlm.owl", target / "ontology" / "crlm.owl")
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tracked_tree(tmp_path_factory.mktemp("clone"))
    out = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
                   check=True, capture_output=True, timeout=300)
    (built,) = out.glob("crlm_kg-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv outside the checkout with the wheel installed. Its dependencies come
    from this interpreter's site-packages through a ``.pth`` line (no network, seconds), which
    does not run that site's ``.pth`` files, so the checkout's editable install stays out."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return env_dir


def outside_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRLM_KG_") and k != "PYTHONPATH"}
    return {**env, "CRLM_KG_VALIDATE_ON_START": "0", "CRLM_KG_QUERY_WORKERS": "1", "HOME": str(tmp_path)}


def test_the_wheel_has_one_top_level_package_with_the_data_inside(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"crlm_kg"}
    for member in ("crlm_kg/api/app.py", "crlm_kg/api/sparql/__init__.py", "crlm_kg/_home/ontology/crlm.ttl",
                   "crlm_kg/_home/validation/patient-shapes.ttl", "crlm_kg/_home/validation/patient-context.jsonld",
                   "crlm_kg/_home/queries/trials-for-patient.rq", "crlm_kg/_home/data/examples/patients/braf-v600e.json"):
        assert member in names, member
    modules = {f"crlm_kg/{p.relative_to(ROOT / 'crlm_kg').as_posix()}" for p in (ROOT / "crlm_kg").rglob("*.py")}
    modules |= {f"crlm_kg/api/{p.relative_to(ROOT / 'api').as_posix()}" for p in (ROOT / "api").rglob("*.py")}
    modules |= {f"crlm_kg/api/{p.relative_to(ROOT / 'api').as_posix()}" for p in (ROOT / "api" / "templates").rglob("*.*")}
    assert not modules - set(names), f"missing from the wheel (pyproject [tool.setuptools] packages): {sorted(modules - set(names))}"
    evidence = [n for n in names if n.startswith("crlm_kg/_home/data/") and n.endswith(".ttl") and "/examples/" not in n]
    assert len(evidence) == len([p for p in (ROOT / "data").rglob("*.ttl") if "examples" not in p.parts])


def test_crlm_kg_evidence_runs_from_the_installed_wheel(installed, tmp_path):
    proc = subprocess.run([str(installed / "bin" / "crlm-kg"), "evidence", str(PATIENT), "--view", "summary"],
                          cwd=tmp_path, env=outside_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from_wheel = json.loads(proc.stdout)
    in_checkout = subprocess.run([sys.executable, "-m", "crlm_kg.cli", "evidence", str(PATIENT), "--view", "summary"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert from_wheel == json.loads(in_checkout.stdout)
    assert from_wheel["summary"]["trials"], "the installed graph has the trials"


def test_crlm_kg_serve_runs_from_the_installed_wheel(installed, tmp_path):
    command = [str(installed / "bin" / "crlm-kg"), "serve", "--host", "127.0.0.1", "--log-level", "warning"]
    with running_server(tmp_path, outside_env(tmp_path), name="wheel-serve", command=command, cwd=tmp_path) as base:
        health = httpx.get(base + "/health", timeout=30).json()
        answer = httpx.post(base + "/evidence", params={"view": "summary"}, json=json.loads(PATIENT.read_text()), timeout=60)
        rcts = httpx.get(base + "/queries/studies-by-design", params={"design": "RandomisedControlledTrial"}, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json()["dataVersion"] == health["dataVersion"]
    assert rcts.status_code == 200, rcts.text[:300]
    assert any("EORTC" in json.dumps(row) for row in rcts.json()["rows"]), "the named queries and the evidence are installed"
