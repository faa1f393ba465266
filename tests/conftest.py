"""Shared fixtures: the repository graph is loaded once per session."""

from __future__ import annotations

import pytest

from crlm_kg.store import EmbeddedStore


@pytest.fixture(scope="session")
def repo_store() -> EmbeddedStore:
    return EmbeddedStore.from_repository()
