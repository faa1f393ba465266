"""GET /health: liveness, the size and data version of the loaded graph and the state of the query workers."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

import crlm_kg

from .deps import StoreDep

router = APIRouter(tags=["service"])


@router.get("/health", summary="Liveness and the size of the loaded graph")
def health(
    request: Request,
    store: StoreDep,
    fingerprint: bool = Query(False, description="add the graph's canonical SHA-256 (about 0.2 s; embedded store only)"),
) -> dict:
    version = request.app.state.data_version  # computed once by the lifespan
    body = {"status": "ok", "store": store.name, "triples": store.triple_count(), "version": crlm_kg.__version__,
            "dataVersion": version.label if version else None, "graphSha256": version.sha256 if version else None,
            "sparql": request.app.state.sparql.status()}
    if fingerprint:
        body["fingerprint"] = store.fingerprint() if store.capabilities.in_process else None
    return body
