"""What a route needs, as FastAPI dependencies.

The app's lifespan puts the settings, the store and the evidence lookup on
``app.state``; routes receive them through ``Depends`` and never reach for
globals, so a test swaps one with ``app.dependency_overrides[deps.get_store] = …``.
Request bodies are read here too, by the one reader (``problems.read_body``, which
``/sparql`` uses as well), with the limit the settings give for the route.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from crlm_kg.evidence import EvidenceLookup
from crlm_kg.patients import Limits
from crlm_kg.settings import Settings
from crlm_kg.store import Store

from .problems import read_body


# async although they only read app.state: FastAPI runs a plain-def dependency in its thread pool, and three
# thread hand-overs per request cost more than the summary's whole evidence lookup at 1x
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_lookup(request: Request) -> EvidenceLookup:
    lookup = request.app.state.lookup
    if lookup is None:
        # built by the lifespan before the server accepts connections; never lazily by a request
        raise RuntimeError("the evidence lookup is built by the app's lifespan, which has not run (in tests: `with TestClient(app)`)")
    return lookup


def patient_limits(settings: Settings, records: int | None = None) -> Limits:
    """The work one patient document may ask for, from the settings (``records``: a route's own cap)."""
    return Limits.from_settings(settings, records)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
LookupDep = Annotated[EvidenceLookup, Depends(get_lookup)]


async def _body(request: Request, settings: SettingsDep) -> bytes:
    return await read_body(request, settings.max_body_bytes)


async def _batch_body(request: Request, settings: SettingsDep) -> bytes:
    return await read_body(request, settings.max_batch_bytes)


Body = Annotated[bytes, Depends(_body)]
"""The body of a request, up to ``settings.max_body_bytes``."""

BatchBody = Annotated[bytes, Depends(_batch_body)]
"""The body of a batch request, up to ``settings.max_batch_bytes``."""
