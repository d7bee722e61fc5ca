"""What every documentation example may assume: an OpenMeter (Local, in process) with the catalog of
docs/catalog.md pushed, the customer ``acme``, and the names the examples use without defining.

`OpenMeterBilling(...)` without ``transport=``/``http_client=`` is pointed at that Local OpenMeter,
so ``OpenMeterBilling(api_key="om_...")`` in a doc runs offline (``SyncOpenMeterBilling`` too: it
builds an `OpenMeterBilling`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from openmeter_billing import OpenMeterBilling, Organization, User
from openmeter_billing.billing.ledger import InMemoryLedger
from openmeter_billing.identity import InMemoryCustomerIdStore
from openmeter_billing.local import LocalOpenMeter

START = datetime(2025, 3, 3, 9, 0, 30, tzinfo=timezone.utc)
LOCAL = LocalOpenMeter(start=START)
_original_init = OpenMeterBilling.__init__


def _local_init(self: OpenMeterBilling, **kwargs: Any) -> None:
    if kwargs.get("transport") is None and kwargs.get("http_client") is None:
        kwargs["transport"] = LOCAL
        kwargs["base_url"] = LocalOpenMeter.base_url
    _original_init(self, **kwargs)


OpenMeterBilling.__init__ = _local_init  # type: ignore[method-assign]


def docs_catalog(root: Path) -> Any:
    """The catalog docs/catalog.md defines (its first Python block)."""
    text = (root / "docs" / "catalog.md").read_text()
    namespace: dict[str, Any] = {}
    exec(re.findall(r"```python\n(.*?)```", text, flags=re.S)[0], namespace)
    return namespace["catalog"]


class MyUser:
    def __init__(self, id: str, email: str) -> None:
        self.id, self.email = id, email


class MyOrg:
    def __init__(self, id: str, legal_name: str) -> None:
        self.id, self.legal_name = id, legal_name


Account, Workspace, Squad = MyUser, MyOrg, MyOrg


def names(root: Path) -> dict[str, Any]:
    """The namespace examples run in."""
    catalog = docs_catalog(root)
    client = OpenMeterBilling(catalog=catalog, ledger=InMemoryLedger())

    async def seed() -> None:
        await client.catalog.push()
        await client.customers.create(name="Acme Inc", key="acme", subject_keys=["acme"])

    asyncio.run(seed())
    # A fresh client for the examples: the seeding one is bound to the loop that just closed.
    client = OpenMeterBilling(catalog=catalog, ledger=InMemoryLedger())
    return {
        "__name__": "__doc_example__",
        "catalog": catalog,
        "client": client,
        "ledger": InMemoryLedger(),
        "local": LOCAL,
        "org": Organization(id="acme", name="Acme Inc"),
        "user": User(id="u_1", email="ada@example.com", name="Ada"),
        "users_to_backfill": lambda: [User(id="u_2", email="grace@example.com")],
        "send_to_browser": lambda token: None,
        "my_store": InMemoryCustomerIdStore(),
        "logger": logging.getLogger("docs"),
        "key": "stripe:evt_1",
        "now": START,
        "start": START - timedelta(days=1),
        "datetime": datetime,
        "timezone": timezone,
        "timedelta": timedelta,
        "MyUser": MyUser,
        "MyOrg": MyOrg,
        "Account": Account,
        "Workspace": Workspace,
        "Squad": Squad,
    }
