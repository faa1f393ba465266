"""The benchmark scripts' own parts that can break silently: they run only under ``make bench``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from crlm_kg.store import Store

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_rdflib_comparison_store_offers_everything_the_app_asks_of_a_store():
    """bench_sparql serves the app on rdflib's engine through this store; when the Store protocol gained
    ``capabilities``, the app stopped starting on it and ``make bench`` stopped there."""
    store_class = _script("bench_sparql").RdflibStore
    store = store_class.__new__(store_class)  # not loaded: the protocol's members are what is checked
    assert isinstance(store, Store)
    capabilities = store.capabilities
    assert not capabilities.in_process and capabilities.endpoint is None and capabilities.on_disk is None
