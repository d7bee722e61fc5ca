"""Consumer portal tokens: let an end user query their own usage."""

from __future__ import annotations

from datetime import datetime

from .._models import ResponseModel

__all__ = ["PortalToken"]


class PortalToken(ResponseModel):
    """A portal token. ``token`` is only present in the response that created it."""

    id: str | None = None
    subject: str
    token: str | None = None
    expires_at: datetime | None = None
    expired: bool | None = None
    created_at: datetime | None = None
    allowed_meter_slugs: list[str] | None = None

    def __repr__(self) -> str:
        # The token is a bearer credential: never show it.
        return (
            f"PortalToken(id={self.id!r}, subject={self.subject!r}, "
            f"expires_at={self.expires_at!r}, token={'***' if self.token else None})"
        )
