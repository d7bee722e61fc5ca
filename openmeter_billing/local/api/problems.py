"""OpenMeter's RFC 7807 error responses (``application/problem+json``).

Handlers raise :class:`Problem`; the emulator turns it into the body the real server sends:
``{"type": "about:blank", "title": <HTTP reason>, "status", "detail",
"instance": "urn:request:<id>", "extensions": {...}}``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

__all__ = ["Problem", "bad_request", "conflict", "not_found", "precondition_failed"]


class Problem(Exception):
    """An error answer: status, detail and OpenMeter's optional extensions."""

    def __init__(
        self,
        status: int,
        detail: str,
        extensions: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extensions = extensions or {}
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The problem document for this error."""
        doc: dict[str, Any] = {
            "type": "about:blank",
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "instance": f"urn:request:{request_id}",
        }
        if self.extensions:
            doc["extensions"] = self.extensions
        return doc


def bad_request(detail: str, *, field: str | None = None) -> Problem:
    """400 with ``extensions.validationErrors`` naming the field, like a domain validation error."""
    issue: dict[str, Any] = {"message": detail}
    if field is not None:
        issue["field"] = field
    return Problem(400, detail, {"validationErrors": [issue]})


def not_found(detail: str) -> Problem:
    """404 for an entity that does not exist (or is hidden, like a deleted customer by key)."""
    return Problem(404, detail)


def conflict(detail: str, conflicting_id: str | None = None) -> Problem:
    """409; entitlement conflicts carry ``extensions.conflictingEntityId``."""
    extensions = {"conflictingEntityId": conflicting_id} if conflicting_id else None
    return Problem(409, detail, extensions)


def precondition_failed(detail: str) -> Problem:
    """412: OpenMeter's answer for operations on a deleted customer."""
    return Problem(412, detail)
