"""What a patient document can make the server do (issue 12): no connection and no file read
through JSON-LD contexts, work bounded before the expensive step, and no odd number or string
that turns into a 500.

The listener below accepts and records every connection on loopback (and closes it at once,
so a fetch that slipped through would fail fast instead of hanging the test); the audit hook
records every file the process opens while a request runs.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import rdflib
from fastapi.testclient import TestClient

from crlm_kg.api.app import create_app
from crlm_kg import patients
from crlm_kg.patients import CONTEXT_IRI, ForeignContext, Limits
from crlm_kg.patients.contexts import REFUSAL, load_context
from crlm_kg.settings import Settings
from tests.support import scaled

# the input-limit regression suite sends multi-megabyte documents: make test runs it, make test-fast leaves it out
pytestmark = pytest.mark.slow

PATIENT_ROUTES = ["/patients/validate", "/evidence"]
MEDIA_TYPES = ["application/ld+json", "application/json"]


@pytest.fixture(scope="module")
def client(repo_store):
    app = create_app(Settings(query_workers=1, sparql_url=None), repo_store)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


class Listener:
    """A TCP listener on loopback that records each connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections: list[tuple] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections.append(peer)
            conn.close()

    def url(self, path: str = "ctx.jsonld") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture()
def listener():
    server = Listener()
    yield server
    server.close()


class FileOpens:
    """Paths the process opens (``sys.addaudithook``: hooks cannot be removed, so this one only
    records while ``recording`` is set)."""

    recording = False
    paths: list[str] = []
    installed = False

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if cls.recording and event == "open" and args and isinstance(args[0], (str, bytes, Path)):
            cls.paths.append(str(args[0]))

    @classmethod
    def start(cls) -> None:
        if not cls.installed:
            sys.addaudithook(cls.hook)
            cls.installed = True
        cls.paths = []
        cls.recording = True

    @classmethod
    def stop(cls) -> list[str]:
        cls.recording = False
        return cls.paths


def _variants(url: str) -> dict[str, dict]:
    """Every position a JSON-LD context can name another document from."""
    inline = {"crlm": "https://w3id.org/crlm-kg/ontology#", "age": {"@id": "crlm:age"}}
    return {
        "plain": {"@context": url, "id": "p1"},
        "list": {"@context": [url], "id": "p1"},
        "nested list": {"@context": [[url]], "id": "p1"},
        "deeply nested list": {"@context": [[[[url]]], CONTEXT_IRI], "id": "p1"},
        "own then foreign": {"@context": [CONTEXT_IRI, url], "id": "p1"},
        "@import": {"@context": {"@version": 1.1, "@import": url}, "@id": "https://w3id.org/crlm-kg/patient/p1"},
        "@import in a list": {"@context": [{"@import": url}], "@id": "https://w3id.org/crlm-kg/patient/p1"},
        "term-scoped": {"@context": {**inline, "@version": 1.1, "molecular": {"@id": "crlm:m", "@context": url}},
                        "@id": "https://w3id.org/crlm-kg/patient/p1", "molecular": {"x": 1}},
        "term-scoped nested list": {"@context": {**inline, "@version": 1.1, "molecular": {"@id": "crlm:m", "@context": [[url]]}},
                                    "@id": "https://w3id.org/crlm-kg/patient/p1", "molecular": {"x": 1}},
        "type-scoped": {"@context": {**inline, "@version": 1.1, "Patient": {"@id": "crlm:Patient", "@context": url}},
                        "@id": "https://w3id.org/crlm-kg/patient/p1", "@type": "Patient"},
        "embedded node": {"@context": inline, "@id": "https://w3id.org/crlm-kg/patient/p1", "crlm:x": {"@context": url, "@id": "urn:x"}},
        "@graph member": {"@context": inline, "@graph": [{"@context": [[url]], "@id": "https://w3id.org/crlm-kg/patient/p1"}]},
        "own context, nested foreign": {"@context": CONTEXT_IRI, "id": "p1", "molecular": {"@context": url}},
        "record in a list": [{"id": "p0"}, {"@context": [[url]], "id": "p1"}],
        "protocol-relative": {"@context": [[url.removeprefix("http:")]], "id": "p1"},
    }


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
@pytest.mark.parametrize("route", PATIENT_ROUTES)
def test_no_context_is_fetched_from_any_position(client, listener, route, media_type):
    """Regression: a nested list ``[["http://host/x"]]``, ``@import`` and term-scoped contexts
    made the server fetch the URL (also under application/json): forty such requests to a host
    that never answered held every worker thread."""
    for name, doc in _variants(listener.url()).items():
        response = client.post(route, content=json.dumps(doc).encode(), headers={"content-type": media_type})
        assert response.status_code == 422, (name, response.status_code, response.text[:300])
        body = response.json()
        assert [e["rule"] for e in body["errors"]] == ["remote-context"], (name, body["errors"])
        assert body["errors"][0]["message"] == REFUSAL
    # every request above has been answered: a fetch, had there been one, was made already
    assert listener.connections == [], "the server opened a connection for a client's JSON-LD context"


def _file_contexts(tmp_path: Path) -> dict[str, str]:
    real = tmp_path / "context.jsonld"
    real.write_text(json.dumps({"@context": {"age": {"@id": "https://w3id.org/crlm-kg/ontology#age"}}}), encoding="utf-8")
    return {
        "existing file": real.as_uri(),
        "existing file, two slashes": "file://" + str(real),
        "missing file": (tmp_path / "no-such-context.jsonld").as_uri(),
        "missing directory": (tmp_path / "no-such-dir" / "x.jsonld").as_uri(),
        "a system file": "file:///etc/passwd",
        "relative path": "../../../../" + str(real).lstrip("/"),
    }


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
@pytest.mark.parametrize("route", PATIENT_ROUTES)
def test_file_contexts_are_refused_alike_and_never_read(client, tmp_path, route, media_type):
    """Regression: ``file://`` contexts were read, and the error text said whether the path existed."""
    answers = {}
    for name, iri in _file_contexts(tmp_path).items():
        for position, doc in (("plain", {"@context": iri, "id": "p1"}), ("nested", {"@context": [[iri]], "id": "p1"}),
                              ("@import", {"@context": {"@import": iri}, "@id": "https://w3id.org/crlm-kg/patient/p1"})):
            FileOpens.start()
            try:
                response = client.post(route, content=json.dumps(doc).encode(), headers={"content-type": media_type})
            finally:
                opened = FileOpens.stop()
            assert not [p for p in opened if str(tmp_path) in p or p == "/etc/passwd"], (name, position, opened)
            assert response.status_code == 422, (name, position, response.text[:300])
            answers[(name, position)] = response.content
    # an existing file, a missing one and a missing directory get the same bytes: nothing tells them apart
    assert len(set(answers.values())) == 1, {k: v[:200] for k, v in answers.items()}


def test_the_document_loader_answers_only_the_projects_context(listener, tmp_path):
    """The second wall: even a document that reaches rdflib's JSON-LD processor unchecked
    cannot make it load a context (the installed loader refuses without opening anything)."""
    own, _ = load_context(CONTEXT_IRI)
    assert own["@context"] == patients.contract().context
    real = tmp_path / "ctx.jsonld"
    real.write_text('{"@context": {}}', encoding="utf-8")
    for source in (listener.url(), real.as_uri(), str(real), "https://w3id.org/crlm-kg/context/other.jsonld"):
        with pytest.raises(ForeignContext):
            load_context(source)
        doc = {"@context": [[source]], "@id": "urn:a", "urn:p": "x"}
        FileOpens.start()
        try:
            with pytest.raises(ForeignContext):
                rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")
        finally:
            opened = FileOpens.stop()
        assert str(real) not in opened
    graph = rdflib.Graph().parse(data=json.dumps({"@context": CONTEXT_IRI, "@id": "https://w3id.org/crlm-kg/patient/p1", "age": 60}),
                                 format="json-ld")
    assert len(graph) == 1  # the project's own context, by its IRI, from the local file
    assert listener.connections == []


def test_the_projects_context_by_its_iri_still_works_in_any_position(client):
    for doc in ({"@context": CONTEXT_IRI, "id": "p-own", "age": 64},
                {"@context": [[CONTEXT_IRI]], "@id": "https://w3id.org/crlm-kg/patient/p-own", "age": 64}):
        response = client.post("/patients/validate", content=json.dumps(doc).encode(), headers={"content-type": "application/ld+json"})
        assert response.status_code == 200, response.text[:500]
        assert response.json()["records"] == 1


# --------------------------------------------------------------------------- work limits


def _unknown_keys_document(size: int) -> bytes:
    keys = size // 14
    return b'{"id": "p1", ' + b",".join(b'"k%08d":1' % i for i in range(keys)) + b"}"


MINIMAL_RECORDS = json.dumps([{"id": f"p{i}"} for i in range(42_000)]).encode()


def _timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@pytest.fixture(scope="module")
def roomy_client(repo_store):
    """Body limits of 32 MiB, so that the work limits (not the body limits) meet the big documents."""
    settings = Settings(query_workers=1, sparql_url=None, max_body_bytes=32 << 20, max_batch_bytes=32 << 20)
    with TestClient(create_app(settings, repo_store), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("route", ["/patients/validate", "/evidence", "/evidence/batch"])
def test_a_20_mb_document_of_unknown_keys_is_refused_within_a_second(client, roomy_client, route):
    """Regression: 20 MB of unknown keys gave a 437 MB report after 45 s (2.3 GB of memory).
    With the default body limits it never gets in (413); with room for it, the key limit
    refuses it before it is parsed."""
    body = _unknown_keys_document(20 << 20)
    assert len(body) >= 20 << 20
    response, elapsed = _timed(lambda: client.post(route, content=body, headers={"content-type": "application/json"}))
    assert response.status_code == 413 and elapsed < scaled(1), (response.status_code, elapsed)
    response, elapsed = _timed(lambda: roomy_client.post(route, content=body, headers={"content-type": "application/json"}))
    assert response.status_code == 422, response.text[:300]
    assert elapsed < scaled(1), elapsed
    errors = response.json()["errors"]
    assert errors[0]["rule"] in ("maxKeys", "single-record") and len(response.content) < 4096


@pytest.mark.parametrize("route", ["/patients/validate", "/evidence", "/evidence/batch"])
def test_a_list_of_42000_minimal_records_is_refused_within_a_second(client, route):
    """Regression: /evidence spent 85 s of CPU on a 1 MB list of 42 000 records before answering
    "one patient record expected"."""
    assert len(MINIMAL_RECORDS) < 1 << 20
    response, elapsed = _timed(lambda: client.post(route, content=MINIMAL_RECORDS, headers={"content-type": "application/json"}))
    assert response.status_code == 422, response.text[:300]
    assert elapsed < scaled(1), elapsed
    rule = response.json()["errors"][0]["rule"]
    assert rule == ("single-record" if route == "/evidence" else "maxRecords")


def _turtle_patients(count: int) -> bytes:
    head = b"@prefix crlm: <https://w3id.org/crlm-kg/ontology#> .\n"
    return head + b"".join(b"<https://w3id.org/crlm-kg/patient/p%d> a crlm:Patient ; crlm:age 60 .\n" % i for i in range(count))


def _jsonld_patients(count: int) -> bytes:
    context = {"crlm": "https://w3id.org/crlm-kg/ontology#", "age": {"@id": "crlm:age"}}
    graph = [{"@id": f"https://w3id.org/crlm-kg/patient/p{i}", "@type": "crlm:Patient", "age": 60} for i in range(count)]
    return json.dumps({"@context": context, "@graph": graph}).encode()


@pytest.mark.parametrize("route", ["/patients/validate", "/evidence", "/evidence/batch"])
@pytest.mark.parametrize("fmt", ["text/turtle", "application/ld+json"])
def test_rdf_documents_of_many_patients_are_refused_while_parsing(client, route, fmt):
    """Regression: 46 000 Turtle patients took 91 s. The parse stops at the first record too many."""
    body = _turtle_patients(12_000) if fmt == "text/turtle" else _jsonld_patients(12_000)
    assert len(body) < 1 << 20
    response, elapsed = _timed(lambda: client.post(route, content=body, headers={"content-type": fmt}))
    assert response.status_code == 422, response.text[:300]
    assert elapsed < scaled(1), elapsed
    rule = response.json()["errors"][0]["rule"]
    assert rule == ("single-record" if route == "/evidence" else "maxRecords")


def test_patients_nested_in_one_jsonld_node_are_counted_while_parsing():
    """A JSON-LD document whose one top node embeds the patients passes the cheap count of top-level
    nodes; the store the parser writes into stops it."""
    context = {"crlm": "https://w3id.org/crlm-kg/ontology#", "age": {"@id": "crlm:age"}, "has": {"@id": "urn:has"}}
    embedded = [{"@id": f"https://w3id.org/crlm-kg/patient/p{i}", "age": 60} for i in range(50)]
    doc = json.dumps({"@context": context, "@id": "urn:wrapper", "has": embedded}).encode()
    report = patients.validate_document(doc, content_type="application/ld+json", limits=Limits(records=10))
    assert [v.rule for v in report.violations] == ["maxRecords"]
    assert patients.validate_document(doc, content_type="application/ld+json", limits=Limits(records=50, keys=64)).records == 50


def test_evidence_refuses_a_second_record_before_validating(client, monkeypatch):
    """/evidence stops at the second record, in every format: the batch is never validated."""
    from crlm_kg.patients import validation

    def no_shacl(graph):
        raise AssertionError("SHACL ran on a document /evidence must refuse")

    monkeypatch.setattr(validation, "run_shacl", no_shacl)
    two = [json.dumps([{"id": "a", "age": 60}, {"id": "b", "age": 61}]).encode(), _turtle_patients(2), _jsonld_patients(2)]
    for body, fmt in zip(two, ["application/json", "text/turtle", "application/ld+json"]):
        response = client.post("/evidence", content=body, headers={"content-type": fmt})
        assert response.status_code == 422, (fmt, response.text[:300])
        assert response.json()["errors"][0]["rule"] == "single-record", fmt


def test_limits_come_from_the_settings(repo_store):
    settings = Settings(query_workers=1, sparql_url=None, max_records=3, max_record_keys=48, max_report_violations=5)
    with TestClient(create_app(settings, repo_store)) as c:
        four = json.dumps([{"id": f"p{i}"} for i in range(4)]).encode()
        assert c.post("/patients/validate", content=four, headers={"content-type": "application/json"}).json()["errors"][0]["rule"] == "maxRecords"
        three = json.dumps([{"id": f"p{i}"} for i in range(3)]).encode()
        assert c.post("/patients/validate", content=three, headers={"content-type": "application/json"}).status_code == 200
        wide = json.dumps({"id": "p1", "molecular": {f"k{i}": 1 for i in range(30)}, **{f"x{i}": 1 for i in range(30)}}).encode()
        response = c.post("/patients/validate", content=wide, headers={"content-type": "application/json"})
        assert response.json()["errors"][0]["rule"] == "maxKeys"  # 62 keys in all, though no object has 48
        many = json.dumps([{"id": f"p{i}", "x": 1, "y": 2} for i in range(3)]).encode()
        report = c.post("/patients/validate", content=many, headers={"content-type": "application/json"}).json()["report"]
        assert report["violationCount"] == 6 and len(report["violations"]) == 5


def test_the_report_lists_the_first_violations_and_counts_them_all():
    records = [{"id": f"p{i}", **{f"unknown{k}": k for k in range(20)}} for i in range(50)]
    report = patients.validate_document(json.dumps(records).encode(), limits=Limits(records=50, keys=64, violations=30))
    assert report.violation_count == 1000 and len(report.violations) == 30
    assert report.to_json()["violationCount"] == 1000
    assert [v.index for v in report.violations] == sorted(v.index for v in report.violations)  # the first ones, in document order
    assert "970 more" in report.to_text()


# --------------------------------------------------------------------------- odd numbers and strings

ODD_VALUES = [
    ("age", b"1e309"),
    ("age", b"-1e309"),
    ("ceaNgPerMl", b"1e309"),
    ("liverMetastases.largestDiameterMm", b"1e309"),
    ("liverMetastases.count", b"9" * 5000),
    ("age", b'"\\ud800"'),
    ("molecular.ras", b'"\\udfff wild-type"'),
    ("extrahepaticSites", b'["\\ud800"]'),
    ("id", b'"\\ud800"'),
]


def _record_with(path: str, raw: bytes) -> bytes:
    if path == "id":
        return b'{"id": ' + raw + b"}"
    if "." in path:
        outer, inner = path.split(".")
        return b'{"id": "p1", "' + outer.encode() + b'": {"' + inner.encode() + b'": ' + raw + b"}}"
    return b'{"id": "p1", "' + path.encode() + b'": ' + raw + b"}"


@pytest.mark.parametrize("route", ["/patients/validate", "/evidence", "/evidence/batch"])
@pytest.mark.parametrize("path,raw", ODD_VALUES, ids=[f"{p}={r[:12].decode()}" for p, r in ODD_VALUES])
def test_odd_numbers_and_strings_are_a_422_naming_the_field(client, route, path, raw):
    """Regression: ``1e309`` (infinite as a double) and a lone surrogate ``"\\ud800"`` gave HTTP 500."""
    response = client.post(route, content=_record_with(path, raw), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = [e["field"] for e in response.json()["errors"]]
    assert path in fields, fields


@pytest.mark.parametrize("raw", [b'"\\ud800"', b"1e309", b'["\\ud800"]', b'{"\\ud800": 1}'])
def test_odd_values_anywhere_in_the_document_are_never_a_500(client, raw):
    for body in (raw, b'{"id": "p1", "unknownField": ' + raw + b"}", b'{"id": "p1", "\\ud800": ' + raw + b"}", b"[" + raw + b"]"):
        for media_type in MEDIA_TYPES:
            response = client.post("/patients/validate", content=body, headers={"content-type": media_type})
            assert response.status_code == 422, (body, response.text[:300])
            assert response.json()["errors"], body


def test_odd_values_in_turtle_name_the_field(client):
    ttl = (b'@prefix crlm: <https://w3id.org/crlm-kg/ontology#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n'
           b'<https://w3id.org/crlm-kg/patient/t1> a crlm:Patient ; crlm:age "\\ud800" ; crlm:largestMetastasisDiameterMm "1e309"^^xsd:double .')
    response = client.post("/patients/validate", content=ttl, headers={"content-type": "text/turtle"})
    assert response.status_code == 422, response.text[:300]
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"age", "liverMetastases.largestDiameterMm"} <= fields, fields
