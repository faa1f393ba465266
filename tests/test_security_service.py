"""Availability (issue 12): work for a client that has gone stops, repeated log messages are
throttled, and `crlm-kg serve` passes --limit-concurrency to uvicorn.

The disconnect tests drive the ASGI app directly with a ``receive`` that reports
``http.disconnect`` when the test says so (a TestClient never disconnects), and count the
evaluations through a stand-in for the evidence lookup.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from fastapi.testclient import TestClient

from crlm_kg.api import deps, log_throttle
from crlm_kg.api.app import create_app
from crlm_kg.settings import Settings

RECORDS = [{"id": f"p-gone-{i}", "age": 60 + i, "liverMetastases": {"count": 2}, "molecular": {"ras": "wild-type"}} for i in range(4)]


class CountingLookup:
    def __init__(self, real, on_evaluate=None):
        self.real = real
        self.evaluated: list[str] = []
        self.on_evaluate = on_evaluate

    def evaluate(self, record, view="full"):
        self.evaluated.append(record.id)
        if self.on_evaluate:
            self.on_evaluate()
        return self.real.evaluate(record, view)


def _call(app, path: str, body: bytes, gone) -> dict:
    """One request straight into the ASGI app; ``gone()`` says when the client has disconnected."""
    sent: dict = {"status": None}
    delivered = False

    async def receive():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        if gone():
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)  # nothing yet: Request.is_disconnected cancels this at once

    async def send(message):
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"view=summary", "root_path": "", "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 5555), "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    asyncio.run(app(scope, receive, send))
    return sent


@pytest.fixture(scope="module")
def app(repo_store):
    application = create_app(Settings(query_workers=1, sparql_url=None), repo_store)
    with TestClient(application):  # runs the lifespan: the lookup is built
        yield application


def _with_lookup(app, lookup):
    app.dependency_overrides[deps.get_lookup] = lambda: lookup


@pytest.fixture()
def counting(app):
    lookup = CountingLookup(app.state.lookup)
    _with_lookup(app, lookup)
    yield lookup
    app.dependency_overrides.clear()


def test_a_batch_whose_client_stays_is_evaluated_whole(app, counting):
    sent = _call(app, "/evidence/batch", json.dumps(RECORDS).encode(), gone=lambda: False)
    assert sent["status"] == 200
    assert counting.evaluated == [r["id"] for r in RECORDS]


def test_nothing_is_evaluated_for_a_client_gone_before_validation_ends(app, counting):
    """Regression: work continued after the client disconnected."""
    for path, body in (("/evidence/batch", json.dumps(RECORDS)), ("/evidence", json.dumps(RECORDS[0]))):
        sent = _call(app, path, body.encode(), gone=lambda: True)
        assert sent["status"] == 499, path
    assert counting.evaluated == []


def test_a_batch_stops_at_the_next_record_once_the_client_has_gone(app):
    state = {"gone": False}
    lookup = CountingLookup(app.state.lookup, on_evaluate=lambda: state.update(gone=True))  # leaves during the first record
    _with_lookup(app, lookup)
    try:
        sent = _call(app, "/evidence/batch", json.dumps(RECORDS).encode(), gone=lambda: state["gone"])
    finally:
        app.dependency_overrides.clear()
    assert sent["status"] == 499
    assert lookup.evaluated == [RECORDS[0]["id"]]


# --------------------------------------------------------------------------- log throttling


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _captured(logger: logging.Logger) -> tuple[list[str], logging.Handler]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    return lines, handler


def test_repeated_messages_are_written_a_few_times_then_counted():
    clock = Clock()
    logger = logging.getLogger("crlm_kg.test_throttle")
    logger.propagate = False
    throttle = log_throttle.RepeatThrottle(repeats=5, window=60, clock=clock)
    logger.addFilter(throttle)
    lines, handler = _captured(logger)
    try:
        for _ in range(20_000):
            logger.error("socket.accept() out of system resource")
        logger.error("another message")  # different messages are never held back
        assert len(lines) == 6, lines[:10]
        assert "further identical messages are counted" in lines[4]
        clock.now += 61
        logger.error("socket.accept() out of system resource")
        assert "19995 identical messages dropped" in lines[-1]
        assert lines[-1].startswith("socket.accept() out of system resource")
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(throttle)


def test_repeated_access_log_lines_keep_uvicorns_format_and_the_note_goes_to_the_error_log():
    """Regression: the note was written into the access record itself, whose formatter unpacks the
    record's arguments (client, method, path, version, status): every repeated request line then
    failed to format ("--- Logging error ---") under the default --log-level info."""
    from uvicorn.logging import AccessFormatter

    clock = Clock()
    access, notes = logging.getLogger("uvicorn.access"), logging.getLogger(log_throttle.NOTES_LOGGER)
    throttle = log_throttle.RepeatThrottle(repeats=3, window=60, clock=clock)
    failures: list[logging.LogRecord] = []

    class Formatted(logging.Handler):
        def __init__(self, formatter):
            super().__init__()
            self.setFormatter(formatter)
            self.lines: list[str] = []

        def emit(self, record):
            self.lines.append(self.format(record))

        def handleError(self, record):
            failures.append(record)

    access_out = Formatted(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    notes_out = Formatted(logging.Formatter("%(message)s"))
    saved = access.propagate, notes.propagate, access.level, notes.level
    # throttles an app's lifespan installed earlier in this process would count these lines too
    installed = {lg: [f for f in lg.filters if isinstance(f, log_throttle.RepeatThrottle)] for lg in (access, notes)}
    for lg, filters in installed.items():
        for f in filters:
            lg.removeFilter(f)
    access.propagate = notes.propagate = False
    access.setLevel(logging.INFO)
    notes.setLevel(logging.INFO)
    access.addHandler(access_out)
    notes.addHandler(notes_out)
    access.addFilter(throttle)
    notes.addFilter(throttle)
    try:
        for _ in range(10):
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/health", "1.1", 200)
        clock.now += 61
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/health", "1.1", 200)
    finally:
        access.propagate, notes.propagate = saved[0], saved[1]
        access.setLevel(saved[2])
        notes.setLevel(saved[3])
        access.removeHandler(access_out)
        notes.removeHandler(notes_out)
        access.removeFilter(throttle)
        notes.removeFilter(throttle)
        for lg, filters in installed.items():
            for f in filters:
                lg.addFilter(f)
    assert not failures
    assert access_out.lines == ['127.0.0.1:5000 - "GET /health HTTP/1.1" 200 OK'] * 4
    assert len(notes_out.lines) == 2
    assert "further identical messages are counted" in notes_out.lines[0]
    assert "7 identical messages dropped" in notes_out.lines[1] and "GET /health" in notes_out.lines[1]


@pytest.mark.slow
def test_the_lifespan_throttles_the_event_loops_accept_error(repo_store):
    """Regression: at the file-descriptor limit the server wrote 650 000 "socket.accept() out of
    system resource" lines (269 MB) in 45 s. The message goes through the event loop's own
    exception handler, as asyncio raises it."""
    app = create_app(Settings(query_workers=1, sparql_url=None, log_repeats=3, log_window=30), repo_store)
    asyncio_logger = logging.getLogger("asyncio")
    lines, handler = _captured(asyncio_logger)
    try:
        with TestClient(app):
            loop = asyncio.new_event_loop()
            try:
                for _ in range(20_000):
                    loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                                 "exception": OSError(24, "Too many open files")})
            finally:
                loop.close()
    finally:
        asyncio_logger.removeHandler(handler)
        for f in [f for f in asyncio_logger.filters if isinstance(f, log_throttle.RepeatThrottle)]:
            asyncio_logger.removeFilter(f)
    accept_lines = [line for line in lines if line.startswith("socket.accept() out of system resource")]
    assert len(accept_lines) == 3, len(accept_lines)


def test_serve_passes_limit_concurrency_to_uvicorn(monkeypatch):
    import uvicorn

    from crlm_kg import cli

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    assert cli.main(["serve", "--no-validate", "--limit-concurrency", "48", "--port", "8123"]) == 0
    assert seen["limit_concurrency"] == 48 and seen["port"] == 8123
