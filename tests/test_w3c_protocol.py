"""The W3C SPARQL 1.1 Protocol tests (tests/w3c/protocol-manifest.ttl) against the endpoint."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests import w3c_protocol_harness as pt

TESTS = pt.load_manifest()


@pytest.fixture(scope="module")
def client():
    with TestClient(pt.harness_app(pt.harness_store(TESTS))) as c:
        yield c


def test_manifest_is_complete():
    names = [t.name for t in TESTS]
    assert len(names) == 34 and len(set(names)) == 34
    applicable = [t for t in TESTS if t.applicable]
    assert len(applicable) == 27
    assert {t.name for t in TESTS if not t.applicable} == {
        "update_dataset_default_graph", "update_dataset_default_graphs", "update_dataset_named_graphs",
        "update_dataset_full", "update_post_form", "update_post_direct", "update_base_uri",
    }
    assert all(t.requests for t in TESTS)


@pytest.mark.parametrize("test", [t for t in TESTS if t.applicable], ids=lambda t: t.name)
def test_applicable_protocol_test(client, test):
    outcome = pt.run_test(client, test)
    assert outcome.ok, outcome.message


@pytest.mark.parametrize("test", [t for t in TESTS if not t.applicable], ids=lambda t: t.name)
def test_update_tests_are_refused(client, test):
    outcome = pt.run_refusal(client, test)
    assert outcome.ok, outcome.message


def test_the_erratum_is_real(client):
    """query_multiple_dataset as written sends one named-graph-uri whose value is
    not a graph of the dataset, so the ASK is false; the corrected request is true."""
    test = next(t for t in TESTS if t.name == "query_multiple_dataset")
    assert test.erratum
    literal = pt.ProtocolRequest(**{**test.requests[0].__dict__, "path": test.requests[0].path.replace("&named-graph-uri=", "%26named-graph-uri%3D")})
    response = pt._send(client, literal)
    assert response.status_code == 200 and response.json()["boolean"] is False
    assert pt.run_test(client, test).ok


def test_protocol_gates_report_all_passing():
    gates = pt.protocol_gates()
    assert [g.ok for g in gates] == [True, True], [g.problems for g in gates]
    assert gates[0].summary.startswith("27 of 27 applicable W3C protocol tests pass")
