"""Quality gates in the test suite, and strict mode.

A test marked ``@pytest.mark.quality_gate(needs=(...))`` checks the project against
something outside the repository: ``"seeds"`` (the five source documents, for the verbatim
quotes) or ``"java"`` (HermiT and the OWL API). When one is missing the gate is skipped
with the reason, so a newcomer's ``make test`` still runs, and the terminal summary says
so in one line per reason ("37 quality gates skipped: source documents not found at …").

Under ``CRLM_KG_STRICT=1`` (CI, ``.ci/run``) a skipped quality gate, whatever skipped it
(the marker's ``needs``, a ``skipif``, or ``pytest.skip`` in the test), is reported as a
failure, so the run exits non-zero. Registered from ``tests/conftest.py``.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from crlm_kg.settings import Settings

_SKIPPED = pytest.StashKey[list]()
_STRICT = pytest.StashKey[bool]()
NEEDS = ("seeds", "java")


def _missing(need: str, settings: Settings) -> str | None:
    """Why ``need`` is not available here (None when it is)."""
    if need == "seeds":
        seeds = settings.seeds_dir
        return None if seeds.is_dir() and any(seeds.iterdir()) else f"source documents not found at {seeds} (set CRLM_KG_SEEDS)"
    if need == "java":
        return None if shutil.which("java") else "java not found (HermiT and the OWL API need a JDK; make setup installs one)"
    raise ValueError(f"quality_gate(needs=...) knows {NEEDS}, not {need!r}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "quality_gate(needs=()): checks the data against the seeds or a reasoner; a skip fails the run under CRLM_KG_STRICT=1")
    config.stash[_SKIPPED] = []
    config.stash[_STRICT] = Settings().strict


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("quality_gate")
    if marker is None:
        return
    needs = marker.kwargs.get("needs", ())
    settings = Settings()
    for need in (needs,) if isinstance(needs, str) else needs:
        reason = _missing(need, settings)
        if reason:
            pytest.skip(reason)


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.skipped and item.get_closest_marker("quality_gate") is not None and not hasattr(report, "wasxfail"):
        reason = _reason(report)
        item.config.stash[_SKIPPED].append((item.nodeid, reason))
        if item.config.stash[_STRICT]:
            report.outcome = "failed"
            report.longrepr = f"quality gate skipped under CRLM_KG_STRICT=1: {reason}"
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = config.stash.get(_SKIPPED, [])
    if not skipped:
        return
    strict = config.stash[_STRICT]
    for reason, count in Counter(reason for _, reason in skipped).items():
        terminalreporter.write_line(f"{count} quality gate{'s' if count != 1 else ''} skipped: {reason}", red=strict, yellow=not strict, bold=True)
    if not strict:
        terminalreporter.write_line("(CRLM_KG_STRICT=1, as in CI, turns a skipped quality gate into a failure)")
