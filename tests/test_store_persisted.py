"""The on-disk store (crlm_kg/store/persisted.py): the same graph, data version and answers as the in-memory
store; rebuilt when an input changes or the cache is damaged, never served stale or broken."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crlm_kg import paths, startup_check
from crlm_kg.store import EmbeddedStore, persisted
from crlm_kg.versions import data_version
from tests.evidence_helpers import EXAMPLE_FILES, record


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def disk_store(store_dir) -> EmbeddedStore:
    return EmbeddedStore.from_store_dir(store_dir)


def _entry(store_dir: Path) -> Path:
    return persisted.entry_dir(store_dir, persisted.input_digest())


def test_same_data_version_and_triples_as_the_in_memory_store(disk_store, repo_store):
    assert data_version(disk_store) == data_version(repo_store)
    assert disk_store.triple_count() == repo_store.triple_count()
    # the stored fingerprint is the one the graph on disk really has
    assert persisted.graphs.fingerprint(disk_store._store) == repo_store.fingerprint()


@pytest.mark.slow  # over 1.5 s: make test runs it, make test-fast does not
def test_same_evidence_answers_as_the_in_memory_store(disk_store, answers):
    from crlm_kg.evidence import EvidenceLookup

    lookup = EvidenceLookup(disk_store).warm()
    for path in EXAMPLE_FILES:
        assert lookup.evaluate(record(path.name)) == answers[path.name], path.name


def test_reopened_without_a_rebuild(disk_store, store_dir, monkeypatch):
    def no_build(*args):
        raise AssertionError("rebuilt an intact, current store")

    monkeypatch.setattr(persisted, "_build", no_build)
    again = EmbeddedStore.from_store_dir(store_dir)
    assert again.fingerprint() == disk_store.fingerprint()
    assert again.path == disk_store.path


def test_the_key_changes_with_any_byte_of_any_input(tmp_path, monkeypatch):
    files = []
    for path in paths.evidence_files()[:3]:
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        files.append(copy)
    monkeypatch.setattr(paths, "evidence_files", lambda: list(files))
    before = persisted.input_digest()
    assert persisted.input_digest() == before
    files[1].write_bytes(files[1].read_bytes() + b"\n")
    changed = persisted.input_digest()
    assert changed != before
    files[1].rename(tmp_path / "renamed.ttl")
    files[1] = tmp_path / "renamed.ttl"
    assert persisted.input_digest() not in (before, changed)


@pytest.mark.slow
def test_a_stale_entry_is_never_opened_and_is_removed(store_dir, disk_store, monkeypatch):
    old = _entry(store_dir)
    real = persisted.input_digest()
    monkeypatch.setattr(persisted, "input_digest", lambda: "f" * 64)  # the inputs changed
    fresh = EmbeddedStore.from_store_dir(store_dir)
    assert fresh.path.parent == store_dir / ("f" * 32) and not old.exists()
    monkeypatch.setattr(persisted, "input_digest", lambda: real)
    restored = EmbeddedStore.from_store_dir(store_dir)
    assert restored.fingerprint() == disk_store.fingerprint()


@pytest.mark.slow  # two builds each (about 2 s each at 1x)
@pytest.mark.parametrize("damage", ["version-json", "triples", "digest", "rocksdb"])
def test_a_damaged_entry_is_rebuilt_never_served(damage, tmp_path, repo_store):
    store_dir = tmp_path / "store"
    EmbeddedStore.from_store_dir(store_dir)
    entry = _entry(store_dir)
    meta_file = entry / "version.json"
    meta = json.loads(meta_file.read_text())
    if damage == "version-json":
        meta_file.write_text("{ not json")
    elif damage == "triples":  # a count that the store does not hold
        meta_file.write_text(json.dumps({**meta, "triples": meta["triples"] + 1}))
    elif damage == "digest":  # built for other inputs
        meta_file.write_text(json.dumps({**meta, "input_digest": "0" * 64}))
    else:  # RocksDB's files overwritten
        for file in (entry / "oxigraph").iterdir():
            if file.is_file():
                file.write_bytes(b"garbage")
    reopened = EmbeddedStore.from_store_dir(store_dir)
    assert reopened.fingerprint() == repo_store.fingerprint()
    assert data_version(reopened) == data_version(repo_store)


def test_the_start_up_check_passes_once_per_data_shapes_and_code(disk_store, monkeypatch):
    marker = startup_check._pass_marker(disk_store)
    if marker.exists():
        marker.unlink()
    startup_check.check_store_once(disk_store)  # the real check, on the repository's data
    assert marker.is_file()

    def not_again(store):
        raise AssertionError("checked again data that passed")

    monkeypatch.setattr(startup_check, "check_store", not_again)
    startup_check.check_store_once(disk_store)
    marker.unlink()
    with pytest.raises(AssertionError, match="checked again"):
        startup_check.check_store_once(disk_store)


def test_an_in_memory_store_is_always_checked(repo_store, monkeypatch):
    calls = []
    monkeypatch.setattr(startup_check, "check_store", calls.append)
    startup_check.check_store_once(repo_store)
    startup_check.check_store_once(repo_store)
    assert calls == [repo_store, repo_store]


def _structure(store, saved: bool = True):
    """The store's structure through ``warm`` (which reads and writes the saved one), or read from the store."""
    from crlm_kg.evidence.structure import GraphStructure, _cached_names

    structure = GraphStructure(store)
    if saved:
        structure.warm()
    else:
        for name in _cached_names():
            getattr(structure, name)
    return structure, _cached_names()


@pytest.mark.slow  # over 1.5 s: make test runs it, make test-fast does not
def test_the_saved_structure_is_the_one_read_from_the_store(disk_store, monkeypatch):
    from crlm_kg.evidence import structure as module

    fresh, names = _structure(disk_store, saved=False)
    saved = module._SavedStructure.for_store(disk_store)
    saved.file.unlink(missing_ok=True)
    _structure(disk_store)
    assert saved.file.is_file()

    def no_store_reads(*args, **kwargs):
        raise AssertionError("read the store although a saved structure exists")

    monkeypatch.setattr(disk_store, "select", no_store_reads)
    loaded, _ = _structure(disk_store)
    for name in names:
        assert loaded.__dict__[name] == fresh.__dict__[name], name
    # shared objects stay shared: the per-characteristic index holds the criteria themselves
    some = next(c for c in loaded.criteria.values() if c.characteristic)
    assert any(c is some for c in loaded.criteria_by_characteristic[some.characteristic])


@pytest.mark.slow
@pytest.mark.parametrize("content", [b"", b"not a pickle", b"\x80\x05N."])  # empty, garbage, a pickled None
def test_a_damaged_saved_structure_is_read_again_from_the_store(disk_store, content):
    from crlm_kg.evidence import structure as module

    fresh, names = _structure(disk_store, saved=False)
    saved = module._SavedStructure.for_store(disk_store)
    saved.file.write_bytes(content)
    loaded, _ = _structure(disk_store)
    for name in names:
        assert loaded.__dict__[name] == fresh.__dict__[name], name
    assert saved.file.read_bytes() != content  # and saved again, whole


def test_the_fingerprint_hashes_the_sorted_canonical_lines_whatever_the_slicing(monkeypatch):
    import hashlib

    import pyoxigraph as ox

    g = ox.NamedNode(paths.GRAPH_EVIDENCE)
    quads = [ox.Quad(ox.NamedNode(f"{paths.CRLMD}s{i % 7}"), ox.NamedNode(f"{paths.CRLM}p{i % 3}"), ox.Literal(str(i)), g)
             for i in range(50)] + [ox.Quad(ox.BlankNode("b1"), ox.NamedNode(f"{paths.CRLM}p"), ox.BlankNode("b2"), g)]
    dataset = ox.Dataset(quads)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    lines = sorted(ox.serialize(dataset, format=ox.RdfFormat.N_QUADS).splitlines())
    expected = hashlib.sha256(b"\n".join(lines)).hexdigest()  # the definition of the data version's hash
    for size in (1, 7, 50, 1 << 16):
        monkeypatch.setattr(persisted.graphs, "_HASH_SLICE", size)
        assert persisted.graphs.fingerprint(quads) == {"triples": 51, "sha256": expected}


@pytest.mark.slow  # two app start-ups
def test_the_sparql_workers_answer_from_the_disk_store_within_their_memory_cap(disk_store, repo_store):
    """Under the default address-space cap (a worker on RocksDB reserves more address space than one holding the
    graph in memory: at 1 GiB one could not start its job thread on a busy machine)."""
    from fastapi.testclient import TestClient

    from crlm_kg.api.app import create_app
    from crlm_kg.settings import Settings

    query = ("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g")
    answers = []
    for store in (disk_store, repo_store):
        with TestClient(create_app(Settings(query_workers=1), store)) as client:
            response = client.get("/sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json"})
            assert response.status_code == 200, response.text
            answers.append(response.json()["results"]["bindings"])
            assert client.get("/health").json()["dataVersion"] == data_version(repo_store).label
    assert answers[0] == answers[1] and len(answers[0]) == 3
