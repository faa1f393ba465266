"""One Accept negotiator for every route (api/negotiation.py).

Regression (issue 11): /ontology and /sparql used two negotiators that disagreed on
``Accept: text/turtle;q=0, */*;q=0.5``; /ontology served the Turtle the client had refused.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from crlm_kg.api.app import create_app
from crlm_kg.api.negotiation import negotiate
from crlm_kg.settings import Settings
from crlm_kg.store import EmbeddedStore

REFUSES_TURTLE = "text/turtle;q=0, */*;q=0.5"
ONTOLOGY_OFFERS = ["text/turtle", "application/rdf+xml", "application/ld+json", "text/html"]


def test_an_explicit_q0_beats_a_wildcard():
    assert negotiate(REFUSES_TURTLE, ONTOLOGY_OFFERS) == "application/rdf+xml"
    assert negotiate("text/*;q=0, */*;q=0.1", ONTOLOGY_OFFERS) == "application/rdf+xml"
    assert negotiate("text/turtle;q=0", ONTOLOGY_OFFERS) is None
    assert negotiate(None, ONTOLOGY_OFFERS) == "text/turtle"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(query_workers=1), EmbeddedStore([]))) as c:
        yield c


@pytest.mark.parametrize(("path", "expected"), [
    ("/ontology", "application/rdf+xml"),  # the server's next offer after Turtle
    ("/sparql", "application/n-triples"),  # the service description's next offer
])
def test_routes_agree_on_a_refused_type(client, path, expected):
    response = client.get(path, headers={"accept": REFUSES_TURTLE})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(expected)


def test_yasgui_assets_stay_inside_their_directory(client):
    for path in ("/static/yasgui/..%2F..%2F..%2Fpyproject.toml", "/static/yasgui/%2E%2E/%2E%2E/%2E%2E/%2E%2E/pyproject.toml"):
        response = client.get(path)
        assert response.status_code == 404 and "[project]" not in response.text
