"""Webhooks: one exactly-once handler for every payment provider, an inbox, ASGI/WSGI apps."""

from __future__ import annotations

from .handler import AsyncWebhooks, Outcome, WebhookResult
from .inbox import InboxEntry, InMemoryInbox, SQLiteInbox, WebhookInbox

__all__ = [
    "AsyncWebhooks",
    "InMemoryInbox",
    "InboxEntry",
    "Outcome",
    "SQLiteInbox",
    "WebhookInbox",
    "WebhookResult",
]
