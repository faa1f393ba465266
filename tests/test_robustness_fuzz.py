"""Fuzzing: schemathesis over the service's own OpenAPI document, and hypothesis
properties of the evidence evaluator.

Schemathesis runs every operation of ``/openapi.json`` in positive and negative
mode (its examples, coverage and fuzzing phases) with every built-in check
enabled: no 5xx (``not_a_server_error``), status codes, content types, headers
and bodies as documented, schema-valid input accepted and invalid input
rejected, and 405 with an ``Allow`` header for undeclared methods. The one
adjustment is ``positive_data_acceptance``'s list of acceptable statuses (see
``CONFIG``). ``FUZZ_EXAMPLES`` (default 40) bounds the examples per operation
and mode; ``CRLM_KG_FUZZ_EXAMPLES=500`` runs a longer campaign.

The graph is the same before and after the fuzzing (the last test of this module): the
parent's canonical fingerprint, and the digest each SPARQL worker computes from its own
copy, which must equal the digest of a fresh load of the repository files.
"""

from __future__ import annotations

import json
import string
import threading
import time

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from crlm_kg.api.app import create_app
from crlm_kg.api.evidence import EvidenceResponse
from crlm_kg import paths, patients
from crlm_kg.evidence import EvidenceLookup
from crlm_kg.settings import Settings
from crlm_kg.store import EmbeddedStore
from tests.support import ENV, repository_digest, scaled, store_digest, worker_digest

FUZZ_EXAMPLES = ENV.fuzz_examples
WORKERS = 2

# ``positive_data_acceptance`` expects a schema-valid request to get 2xx. Two kinds of
# operation have documented refusals of schema-valid input that JSON Schema cannot express,
# so those statuses are added for them (nothing else is relaxed, no check is disabled):
# * /sparql: the ``query`` parameter is a string in the schema, but the SPARQL grammar is not
#   a JSON Schema: a random string is a malformed query (400, documented), and a valid query
#   may exceed the result cap (422) or the time limit (503), both documented.
# * /patients/validate, /evidence, /evidence/batch: JSON Schema checks field types and value
#   sets, the SHACL shapes also check ranges and cross-field consistency (and Turtle/JSON-LD
#   bodies are only "a string"/"an object" to JSON Schema): the documented answer is a 422
#   report naming the fields.
# * /pooled: whether hazard ratios are comparable (the same endpoint, contrast and setting, two or
#   more with a confidence interval) is a fact of the graph, not of the request's schema: the
#   documented answer to inputs that cannot be pooled is a 422 with the reason.
CONFIG = {
    "operations": [
        {"include-path": "/sparql", "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "422", "503"]}}},
        {"include-path-regex": "^/(patients/validate|evidence)", "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "422"]}}},
        {"include-path": "/pooled", "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "422"]}}},
    ]
}

# The endpoint takes ``application/sparql-query`` bodies; they are text on the wire.
schemathesis.serializer.alias("application/sparql-query", "text/plain")


class _Delegate:
    """The ASGI app schemathesis talks to. The schema is read at import time from an app on an
    empty store (the OpenAPI document does not depend on the data; building it loads nothing),
    then the ``app`` fixture points the delegate at the service on the repository graph.
    (``schemathesis.pytest.from_fixture`` would be the natural way, but it reads
    ``request.node._nodeid``, which pytest 9 no longer has.)"""

    target = create_app(store=EmbeddedStore([]))

    async def __call__(self, scope, receive, send):
        await self.target(scope, receive, send)


DELEGATE = _Delegate()


@pytest.fixture(scope="module")
def app(repo_store):
    application = create_app(Settings(query_timeout=2, query_workers=WORKERS, sparql_url=None), repo_store)
    DELEGATE.target = application
    yield application
    application.state.sparql.close()


@pytest.fixture(scope="module")
def client(app):
    """One client for the module: each TestClient context starts (and stops) the worker pool."""
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def before(client, repo_store):
    """The graph before the fuzzing (which asks for it first, as the module's first test)."""
    return repo_store.fingerprint(), worker_digest(client, WORKERS)


schema = schemathesis.openapi.from_asgi("/openapi.json", DELEGATE, config=SchemathesisConfig.from_dict(CONFIG))
schema.config.generation.update(modes=list(GenerationMode), max_examples=FUZZ_EXAMPLES)


@pytest.mark.slow
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=FUZZ_EXAMPLES)
def test_every_operation_survives_schemathesis(case, app, before):
    assert DELEGATE.target is app  # the real service, not the empty schema-only one
    case.call_and_validate()


# --------------------------------------------------------------------------- the evidence evaluator

CONTRACT = patients.contract()
ids = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=64)


def _valid_value(spec: patients.FieldSpec):
    if spec.kind == "code":
        value = st.sampled_from(sorted(spec.codes))
    elif spec.kind == "integer":
        value = st.integers(-5, 250)
    elif spec.kind == "decimal":
        value = st.one_of(st.integers(-5, 500), st.floats(-5, 500, allow_nan=False).map(lambda f: round(f, 2)))
    elif spec.kind == "boolean":
        value = st.booleans()
    else:  # pragma: no cover - a new kind of field
        value = st.text(max_size=10)
    return st.lists(value, max_size=3, unique=True) if spec.multiple else value


def _wrong_value(spec: patients.FieldSpec):
    """A JSON value of the wrong type for the field (the shapes must name it)."""
    wrong = {"code": st.one_of(st.integers(), st.text(max_size=8).filter(lambda s: s not in spec.codes)),
             "integer": st.one_of(st.text(max_size=6), st.booleans(), st.just(1.5)),
             "decimal": st.one_of(st.text(max_size=6), st.booleans()),
             "boolean": st.one_of(st.integers(), st.text(max_size=5))}[spec.kind]
    return st.lists(wrong, min_size=1, max_size=2) if spec.multiple else wrong


def _nest(flat: dict) -> dict:
    record: dict = {}
    for path, value in flat.items():
        spec = CONTRACT.fields[path]
        (record.setdefault(spec.nest, {}) if spec.nest else record)[spec.term] = value
    return record


@st.composite
def records(draw):
    """A contract record: any subset of the fields, each with a value of its type (ranges and
    combinations unconstrained, so the shapes accept some and reject others)."""
    chosen = draw(st.lists(st.sampled_from(list(CONTRACT.fields)), unique=True, max_size=len(CONTRACT.fields)))
    flat = {path: draw(_valid_value(CONTRACT.fields[path])) for path in chosen}
    return {"id": draw(ids), **_nest(flat)}


@pytest.fixture(scope="module")
def lookup(repo_store) -> EvidenceLookup:
    return EvidenceLookup(repo_store)


TRIAL_STATUS = {"eligible", "ineligible", "undetermined"}
CRITERION_STATUS = {"met", "not-met", "unknown"}
DERIVED_FIELDS = {"fongScore", "tumourBurdenScore", "sidedness"}


def _check_evidence(result: dict, record: dict) -> None:
    EvidenceResponse.model_validate(result)  # the documented response schema
    json.dumps(result, allow_nan=False)  # plain JSON: no NaN, no Python objects
    assert result["patient"] == record["id"]
    for trial in result["trials"]:
        assert trial["status"] in TRIAL_STATUS
        statuses = [c["status"] for c in trial["criteria"]]
        assert set(statuses) <= CRITERION_STATUS
        if trial["status"] == "ineligible":  # an ineligible trial says which criterion excluded the patient
            assert "not-met" in statuses, trial["id"]
        if trial["status"] != "ineligible":
            # an unknown evaluable criterion names the missing field: a contract field or a derived score
            assert set(trial["missingFields"]) <= set(CONTRACT.fields) | DERIVED_FIELDS, trial["missingFields"]
    for statement in result["recommendations"]:
        assert statement["applicability"] and isinstance(statement["conflict"], bool)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(record=records())
def test_accepted_records_give_well_formed_evidence_and_rejected_ones_name_fields(lookup, record):
    report, parsed = patients.parse_and_validate(json.dumps(record).encode(), content_type="application/json")
    if report.conforms:
        assert len(parsed) == 1
        result = lookup.evaluate(parsed[0])
        _check_evidence(result, record)
        assert lookup.evaluate(parsed[0]) == result  # deterministic
    else:
        assert report.violations
        known = set(CONTRACT.fields) | {"id", "(record)", "(document)"}
        for violation in report.violations:
            assert violation.field in known, violation
            assert violation.rule and violation.message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_wrongly_typed_field_is_named_in_the_report(data):
    path = data.draw(st.sampled_from(list(CONTRACT.fields)))
    spec = CONTRACT.fields[path]
    record = {"id": "p-fuzz", **_nest({path: data.draw(_wrong_value(spec))})}
    report = patients.validate_document(json.dumps(record).encode(), content_type="application/json")
    assert not report.conforms
    assert path in {v.field for v in report.violations}, (record, report.to_json())


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(record=records(), extra=st.data())
def test_more_facts_never_reverse_a_decided_trial(lookup, record, extra):
    """Three-valued logic is monotone: a trial decided (eligible/ineligible) on a partial
    record keeps its status when more fields are filled in; only 'undetermined' may change."""
    report, parsed = patients.parse_and_validate(json.dumps(record).encode(), content_type="application/json")
    assume(report.conforms)
    flat = {p: v for p, v in _flatten(record).items()}
    missing = [p for p in CONTRACT.fields if p not in flat]
    assume(missing)
    added = extra.draw(st.lists(st.sampled_from(missing), min_size=1, unique=True))
    fuller = {"id": record["id"], **_nest({**flat, **{p: extra.draw(_valid_value(CONTRACT.fields[p])) for p in added}})}
    report2, parsed2 = patients.parse_and_validate(json.dumps(fuller).encode(), content_type="application/json")
    assume(report2.conforms)
    first = {t["id"]: t["status"] for t in lookup.evaluate(parsed[0])["trials"]}
    second = {t["id"]: t["status"] for t in lookup.evaluate(parsed2[0])["trials"]}
    for trial, status in first.items():
        if status != "undetermined":
            assert second[trial] == status, (trial, record, fuller)


def _flatten(record: dict) -> dict:
    flat = {}
    for path, spec in CONTRACT.fields.items():
        holder = record.get(spec.nest, {}) if spec.nest else record
        if spec.term in holder:
            flat[path] = holder[spec.term]
    return flat


# --------------------------------------------------------------------------- findings of the fuzzing (regressions)


def test_undeclared_methods_get_405_with_the_allow_header(client):
    """Regression: the problem-report handler dropped the Allow header Starlette puts on 405s,
    and OPTIONS/TRACE /sparql were answered by the GET route alone ("Allow: GET")."""
    trace = client.request("TRACE", "/health")
    assert trace.status_code == 405 and trace.headers["allow"] == "GET"
    assert trace.headers["content-type"].startswith("application/problem+json")
    for method in ("OPTIONS", "TRACE", "PUT"):
        response = client.request(method, "/sparql")
        assert response.status_code == 405 and response.headers["allow"] == "GET, POST", method


def test_the_openapi_document_says_what_the_service_answers(client):
    """Regressions: /ontology's format was documented as any string (an unknown one is a 400,
    which was undocumented), and request-validation 422s were documented as application/json
    though they are problem reports."""
    spec = client.get("/openapi.json").json()
    ontology = spec["paths"]["/ontology"]["get"]
    assert [p["schema"].get("enum") for p in ontology["parameters"]] == [["ttl", "owl", "rdf", "jsonld", "html"]]
    assert "400" in ontology["responses"]
    health = spec["paths"]["/health"]["get"]["responses"]["422"]["content"]
    assert list(health) == ["application/problem+json"]
    bad = client.get("/health", params={"fingerprint": "maybe"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "fingerprint"
    assert client.get("/ontology", params={"format": "bogus"}).status_code == 400


def test_health_reports_the_graph_fingerprint(client, repo_store):
    assert "fingerprint" not in client.get("/health").json()
    assert client.get("/health", params={"fingerprint": "true"}).json()["fingerprint"] == repo_store.fingerprint()


@pytest.mark.slow
def test_fingerprint_is_canonical_and_sensitive():
    import pyoxigraph as ox

    from crlm_kg.graphs import all_quads

    first, second = EmbeddedStore(all_quads()), EmbeddedStore(all_quads())  # fresh blank-node ids
    assert first.fingerprint() == second.fingerprint()
    third = EmbeddedStore([*all_quads(), ox.Quad(ox.NamedNode("http://example.org/a"), ox.NamedNode("http://example.org/b"), ox.Literal("c"))])
    assert first.fingerprint() != third.fingerprint()


@pytest.mark.slow
def test_a_large_batch_does_not_stall_other_clients(client):
    """Regression: /evidence and /evidence/batch validated and evaluated on the event loop, so a
    batch of a few hundred records stopped every other client (even /health) until it was done."""
    # Sent as JSON-LD, the batch is validated by pyshacl (plain JSON now takes the compiled shapes, which left a
    # batch of 100 too short to tell a stall from an answer): several seconds of work on the service's threads.
    # The summary view keeps the answer small, so the time is the service's, not the transfer's. As many records as a
    # batch may hold (CRLM_KG_MAX_RECORDS): the faster the service, the shorter the batch to watch a stall in.
    batch = [{"id": f"p{i}", "age": 40 + i % 40, "liverMetastases": {"count": 1 + i % 9}} for i in range(1000)]
    done: dict = {}

    def post_batch():
        done["status"] = client.post("/evidence/batch", params={"view": "summary"}, content=json.dumps(batch),
                                     headers={"content-type": "application/ld+json"}).status_code
        done["finished"] = time.monotonic()

    thread = threading.Thread(target=post_batch)
    posted = time.monotonic()
    thread.start()
    time.sleep(scaled(0.3))  # the batch is being validated
    started = time.monotonic()
    assert client.get("/health").status_code == 200
    health_finished = time.monotonic()
    health_elapsed = health_finished - started
    thread.join(scaled(120))
    assert done["status"] == 200
    assert health_finished < done["finished"], "the batch finished before /health was answered: too small to show the stall"
    # Stalled, /health waits for all the rest of the batch (from the sleep above to its end: over 80 % of
    # it here); answered while the batch runs, it takes a part of it. A share, not seconds: both slow down
    # together on a loaded machine, and with the cores shared (xdist) the evaluating thread's hold on the
    # GIL stretches /health's many small steps to about half the batch, which still is no stall.
    batch_elapsed = done["finished"] - posted
    stalled = 1 - scaled(0.3) / batch_elapsed
    assert stalled > 0.75, f"the batch ({batch_elapsed:.1f} s) is too short to tell a stall from an answer"
    assert health_elapsed < 0.75 * batch_elapsed, f"/health waited {health_elapsed:.1f} s of the batch's {batch_elapsed:.1f} s"


# --------------------------------------------------------------------------- nothing changed


@pytest.mark.slow
def test_the_worker_digest_sees_a_changed_triple(repo_store):
    """The comparison below can fail: one added or one changed literal changes the digest."""
    import pyoxigraph as ox

    original = store_digest(repo_store)
    added = ox.Store()
    added.extend(ox.parse(repo_store.dump(), format=ox.RdfFormat.N_QUADS))
    added.add(ox.Quad(ox.NamedNode("http://example.org/a"), ox.NamedNode("http://example.org/b"), ox.Literal("c"), ox.NamedNode(paths.GRAPH_EVIDENCE)))
    assert store_digest(added) != original
    changed = ox.Store()
    changed.extend(ox.parse(repo_store.dump(), format=ox.RdfFormat.N_QUADS))
    literal = next(q for q in changed.quads_for_pattern(None, None, None) if isinstance(q.object, ox.Literal) and q.object.datatype.value.endswith("#decimal"))
    changed.remove(literal)
    changed.add(ox.Quad(literal.subject, literal.predicate, ox.Literal("12345.678", datatype=literal.object.datatype), literal.graph_name))
    assert store_digest(changed) != original and len(changed) == repo_store.triple_count()


@pytest.mark.slow
def test_the_graph_is_unchanged_after_fuzzing(client, repo_store, before):
    fingerprint, workers = before
    assert repo_store.fingerprint() == fingerprint  # the parent's copy
    after = worker_digest(client, WORKERS)  # what /sparql answers from
    assert after == workers == repository_digest()
    assert sum(triples for _, _, triples, _ in after) == fingerprint["triples"] == repo_store.triple_count() > 10000
