"""``/api/v1/portal/tokens``: consumer portal tokens (create, list, invalidate).

The token secret is returned only when it is created, as on the real server. Local OpenMeter does
not serve the portal meter query itself.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from openmeter_billing.local.api.inputs import Fields
from openmeter_billing.local.api.problems import bad_request
from openmeter_billing.local.api.render import iso
from openmeter_billing.local.api.router import Context, Reply, Router
from openmeter_billing.local.state.store import PortalTokenRecord

__all__ = ["TOKEN_TTL", "register"]

TOKEN_TTL = timedelta(hours=1)


def _token_json(t: PortalTokenRecord, now: Any, *, with_secret: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": t.id,
        "subject": t.subject,
        "createdAt": iso(t.created_at),
        "expiresAt": iso(t.expires_at),
        "expired": t.invalidated or now >= t.expires_at,
    }
    if t.allowed_meter_slugs is not None:
        doc["allowedMeterSlugs"] = list(t.allowed_meter_slugs)
    if with_secret:
        doc["token"] = t.token
    return doc


def register(router: Router) -> None:
    @router.route("POST", "/api/v1/portal/tokens")
    def create(ctx: Context) -> Reply:
        body = Fields(ctx.json_object())
        subject = body.required_string("subject", min_len=1)
        slugs = body.raw("allowedMeterSlugs")
        if slugs is not None and (
            not isinstance(slugs, list) or not all(isinstance(s, str) for s in slugs)
        ):
            raise bad_request(
                "allowedMeterSlugs: must be a list of meter slugs", field="allowedMeterSlugs"
            )
        now = ctx.clock.now()
        record = PortalTokenRecord(
            id=ctx.new_id(),
            subject=subject,
            token="om_portal_" + secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + TOKEN_TTL,
            allowed_meter_slugs=slugs,
        )
        ctx.state.portal_tokens[record.id] = record
        return Reply(200, _token_json(record, now, with_secret=True))

    @router.route("GET", "/api/v1/portal/tokens")
    def list_(ctx: Context) -> Reply:
        limit = ctx.query.integer("limit", 25, minimum=1, maximum=100)
        now = ctx.clock.now()
        tokens = sorted(ctx.state.portal_tokens.values(), key=lambda t: t.id, reverse=True)
        return Reply(200, [_token_json(t, now, with_secret=False) for t in tokens[:limit]])

    @router.route("POST", "/api/v1/portal/tokens/invalidate")
    def invalidate(ctx: Context) -> Reply:
        body = Fields(ctx.json_object() if ctx.body else {})
        token_id, subject = body.string("id"), body.string("subject")
        for token in ctx.state.portal_tokens.values():
            if (token_id is None or token.id == token_id) and (
                subject is None or token.subject == subject
            ):
                token.invalidated = True
        return Reply(204)
