"""Every setting of crlm-kg, in one place.

This is the only module that reads the environment. ``Settings()`` reads the
``CRLM_KG_*`` variables once; the app, the CLI and the loaders receive the
object (``create_app(settings, store)``), so a test changes a setting by
building its own ``Settings(...)`` instead of spawning a process.

The README's configuration table is checked against ``Settings.model_fields``
by the test suite: a new setting is documented or the tests fail.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PACKAGE = Path(__file__).resolve().parent


def _default_home() -> Path:
    """The checkout when run from one (editable install, tests); else the copy the wheel
    carries inside the package (``pyproject.toml``: ``crlm_kg/_home``)."""
    checkout = _PACKAGE.parent
    if (checkout / "ontology" / "crlm.ttl").is_file():
        return checkout
    return _PACKAGE / "_home"


def _default_workers() -> int:
    return max(2, min(4, os.cpu_count() or 2))


class Settings(BaseSettings):
    """crlm-kg's configuration; each field is the variable ``CRLM_KG_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="CRLM_KG_", frozen=True, extra="ignore")

    # -- where the artifacts are ------------------------------------------------
    home: Path = Field(default_factory=_default_home, description="where `ontology/`, `data/`, `queries/`, `validation/` are read from")
    seeds: Path | None = Field(None, description="the five source documents (default: `../shared/seeds` beside the checkout); checks that quote them need it")

    # -- the store ----------------------------------------------------------------
    sparql_url: str | None = Field(None, description="a remote SPARQL 1.1 endpoint (e.g. Virtuoso) to use instead of the embedded Oxigraph store")
    graph: str | None = Field(None, description="with a remote store: the graph IRI(s) holding the data, comma-separated")
    sparql_dialect: Literal["standard", "virtuoso"] = Field(
        "standard", description="with a remote store: the engine's SPARQL dialect; `virtuoso` rewrites queries around Virtuoso 7.2's quirks (`standard`: sent as written)")
    store_dir: str = Field("build/store", description="where `crlm-kg build` and `crlm-kg serve` keep the embedded store on disk with its data version, rebuilt whenever a data file changes (relative: under `home`; empty: load the graph into memory at every start)")
    validate_on_start: bool = Field(True, description="`crlm-kg serve` checks the evidence against its SHACL shapes and refuses to start on a violation")

    # -- the SPARQL endpoint ------------------------------------------------------
    query_timeout: float = Field(5.0, ge=0.1, description="seconds a `/sparql` query may run before its worker is stopped (503)")
    max_results: int = Field(10_000, ge=1, description="rows or triples a `/sparql` answer may have (larger: 422, add a LIMIT)")
    query_workers: int = Field(default_factory=_default_workers, ge=1, description="worker processes answering `/sparql` (default 2–4 by CPU count)")
    worker_memory_mb: int = Field(2048, ge=64, description="address-space limit of each SPARQL worker process, MiB")
    query_queue: int = Field(64, ge=0, description="`/sparql` queries that may wait for a busy worker; the next is refused at once (503, Retry-After)")
    query_per_client: int = Field(32, ge=1, description="`/sparql` queries one client address may have running or waiting at once (429, Retry-After)")
    max_query_bytes: int = Field(256 << 10, ge=1024, description="length of a `/sparql` query, checked before any other check reads it (400)")
    max_answer_bytes: int = Field(16 << 20, ge=1024, description="bytes a `/sparql` answer may have, whatever its row count (larger: 422)")

    # -- request limits -------------------------------------------------------------
    max_body_bytes: int = Field(1 << 20, ge=1024, description="body limit of every request but `/evidence/batch` (413)")
    max_batch_bytes: int = Field(16 << 20, ge=1024, description="body limit of `/evidence/batch` (413)")
    max_records: int = Field(1000, ge=1, description="patient records one document may hold (`/patients/validate`, `/evidence/batch`; `/evidence` takes one): more are refused while parsing, before validation (422)")
    max_record_keys: int = Field(64, ge=48, description="fields of one patient record, nested objects included (JSON), or `max_records` × this triples per document (RDF); at least 48, the size of the project's JSON-LD context (422)")
    max_report_violations: int = Field(200, ge=1, description="violations a validation report lists; `violationCount` counts them all")

    # -- the HTTP service -----------------------------------------------------------
    host: str = Field("127.0.0.1", description="`crlm-kg serve` listens on this address")
    port: int = Field(8000, ge=1, le=65535, description="`crlm-kg serve` listens on this port")
    workers: int = Field(1, ge=1, le=64, description="`crlm-kg serve`: server processes, each with its own store and evidence lookup, sharing the port (uvicorn's `--workers`); one per core uses every core")
    limit_concurrency: int | None = Field(None, ge=1, description="`crlm-kg serve`: connections and tasks uvicorn serves at once, the next answered 503 (uvicorn's `--limit-concurrency`; unset: no limit)")
    log_repeats: int = Field(5, ge=1, description="identical log messages written per `log_window` seconds; the rest are counted, and the count written when the window ends")
    log_window: float = Field(60.0, gt=0, description="seconds of the log throttle's window (see `log_repeats`)")
    cors_origins: str = Field("", description="comma-separated origins allowed by CORS (none by default)")
    log_patients: bool = Field(False, description="log patient records in full (off: never; access logs drop query strings)")
    debug: bool = Field(False, description="the CLI prints tracebacks (developers only)")

    # -- quality gates ------------------------------------------------------------
    strict: bool = Field(False, description="a skipped quality gate (e.g. source documents absent) fails `make test` and `crlm-kg check` instead of being reported; CI sets it")

    @field_validator("home", "seeds", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.resolve() if value is not None else None

    @property
    def seeds_dir(self) -> Path:
        return self.seeds if self.seeds is not None else self.home.parent / "shared" / "seeds"

    @property
    def store_dir_path(self) -> Path | None:
        if not self.store_dir.strip():
            return None
        return (self.home / self.store_dir).resolve()

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def graph_list(self) -> tuple[str, ...]:
        return tuple(g.strip() for g in (self.graph or "").split(",") if g.strip())


class VirtuosoSettings(BaseSettings):
    """Where the Virtuoso binaries of the integration tests are (``VIRTUOSO_*``)."""

    model_config = SettingsConfigDict(env_prefix="VIRTUOSO_", frozen=True, extra="ignore")

    bin: str = Field("virtuoso-t", description="the Virtuoso server binary")
    isql: str = Field("isql-vt", description="Virtuoso's isql client")
    ini: Path | None = Field(None, description="the virtuoso.ini the test servers start from (default: `/etc/virtuoso-opensource-7/virtuoso.ini`)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
