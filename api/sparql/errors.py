"""What can go wrong on the way to an answer, as exceptions the routes turn into problem reports."""

from __future__ import annotations


class Refusal(Exception):
    """A request refused before any query runs (4xx), with the field and rule it broke."""

    def __init__(self, status: int, title: str, detail: str = "", field: str | None = None, rule: str | None = None,
                 headers: dict | None = None):
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.field, self.rule, self.headers = status, title, detail, field, rule, headers or {}

    def response(self):
        from ..problems import problem_response

        errors = [{"field": self.field, "rule": self.rule or "invalid", "message": self.detail or self.title}] if self.field else None
        response = problem_response(self.status, self.title, self.detail, errors)
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


class QueryTimeout(Exception):
    """The query ran past the time limit; its worker was killed."""


class PoolBusy(Exception):
    """Too many requests already wait for a worker (or the service is shutting down): answer 503 at once."""


class WorkerCrashed(Exception):
    """The worker running the query died (memory limit, parser stack)."""
