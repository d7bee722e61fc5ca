"""`ClientOptions`: the constructor arguments shared by `OpenMeterBilling`, `SyncOpenMeterBilling`
and Local OpenMeter's ``client()``/``sync_client()`` helpers.

`OpenMeterBilling.__init__` spells the arguments out with their defaults (what an IDE shows);
everything else that takes them says ``**options: Unpack[ClientOptions]``, so mypy checks each
keyword and a new argument is added in two places that a test keeps equal, not in four.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import httpx
from typing_extensions import TypedDict

from ._types import NotGiven, TimeoutTypes

if TYPE_CHECKING:
    from .billing.engine import BillingOptions
    from .billing.ledger import Ledger
    from .cache import EntitlementCache
    from .catalog.dsl import Catalog
    from .identity import CustomerIdStore, Identity
    from .ingest.options import IngestOptions
    from .ingest.outbox import Outbox
    from .providers.base import PaymentProvider
    from .webhooks import WebhookInbox

__all__ = ["ClientOptions"]


class ClientOptions(TypedDict, total=False):
    """Keyword arguments of the clients; see `OpenMeterBilling` for what each one means."""

    api_key: str | None
    base_url: str | httpx.URL | None
    timeout: TimeoutTypes | NotGiven
    max_retries: int
    default_headers: Mapping[str, str] | None
    http_client: httpx.AsyncClient | None
    transport: httpx.AsyncBaseTransport | None
    identity: Identity | None
    customer_id_store: CustomerIdStore | None
    event_source: str
    catalog: Catalog | None
    providers: Sequence[PaymentProvider]
    ledger: Ledger | None
    billing_options: BillingOptions | None
    allow_insecure_http: bool
    webhook_inbox: WebhookInbox | None
    outbox: Outbox | None
    ingest: IngestOptions | None
    cache: EntitlementCache | None
