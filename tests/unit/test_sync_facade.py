"""The sync facade mirrors the async client exactly and works from scripts and running loops."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import anyio
import httpx
import pytest
import respx
from conftest import API_KEY, BASE_URL

from openmeter_billing import (
    ConfigurationError,
    Identity,
    IdentityResolutionError,
    NotFoundError,
    OpenMeterBilling,
    SyncOpenMeterBilling,
    User,
    UserResolver,
    _sync,
)
from openmeter_billing.billing.engine import AsyncBilling
from openmeter_billing.billing.topups import AsyncTopups
from openmeter_billing.billing.usage import AsyncUsage
from openmeter_billing.catalog._client_api import AsyncCatalogAPI
from openmeter_billing.customer_sync import AsyncCustomers
from openmeter_billing.resources import (
    AsyncEntitlements,
    AsyncEvents,
    AsyncFeatures,
    AsyncGrants,
    AsyncMeters,
    AsyncPortal,
)

PAIRS = [
    (AsyncCustomers, _sync.SyncCustomers),
    (AsyncEvents, _sync.SyncEvents),
    (AsyncEntitlements, _sync.SyncEntitlements),
    (AsyncGrants, _sync.SyncGrants),
    (AsyncFeatures, _sync.SyncFeatures),
    (AsyncMeters, _sync.SyncMeters),
    (AsyncPortal, _sync.SyncPortal),
    (AsyncUsage, _sync.SyncUsage),
    (AsyncBilling, _sync.SyncBilling),
    (AsyncTopups, _sync.SyncTopups),
    (AsyncCatalogAPI, _sync.SyncCatalogAPI),
]


def public_methods(cls: type) -> dict[str, object]:
    """Public methods of ``cls`` and of the library classes it inherits from."""
    found: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("openmeter_billing"):
            continue
        for name, member in vars(klass).items():
            if not name.startswith("_") and (
                callable(member) or isinstance(member, (_sync.sync_method, _sync.sync_pages))
            ):
                found[name] = member
    return found


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_every_async_method_has_a_sync_twin_with_the_same_signature(
    async_cls: type, sync_cls: type
) -> None:
    async_methods = public_methods(async_cls)
    sync_methods = public_methods(sync_cls)
    assert set(async_methods) == set(sync_methods)
    for name, method in async_methods.items():
        expected = inspect.signature(method)
        expected = expected.replace(parameters=list(expected.parameters.values())[1:])
        bound = getattr(sync_cls(None, None), name)  # what a user of the facade calls
        assert inspect.signature(bound) == expected, name


def test_client_level_api_matches() -> None:
    for name in ("with_options", "request"):
        assert (
            inspect.signature(getattr(OpenMeterBilling, name)).parameters.keys()
            == inspect.signature(getattr(SyncOpenMeterBilling, name)).parameters.keys()
        )
    # The constructors share `ClientOptions` (tests/unit/test_options.py checks the mirror).
    assert "options" in inspect.signature(SyncOpenMeterBilling.__init__).parameters
    for name in ("customers", "events", "entitlements", "features", "meters", "portal", "usage"):
        assert hasattr(SyncOpenMeterBilling, name)


@pytest.fixture
def sync_client(api: respx.MockRouter) -> Iterator[SyncOpenMeterBilling]:
    with SyncOpenMeterBilling(api_key=API_KEY, base_url=BASE_URL, max_retries=0) as client:
        yield client


def customer(key: str) -> dict[str, object]:
    return {
        "id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
        "name": key,
        "key": key,
        "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-01-01T00:00:00Z",
    }


def test_sync_calls_return_the_same_models(
    api: respx.MockRouter, sync_client: SyncOpenMeterBilling
) -> None:
    api.get("/api/v2/customers/u1/entitlements/ai_tokens/value").respond(
        200, json={"hasAccess": True, "balance": 3}
    )
    value = sync_client.entitlements.value(User(id="u1"), "ai_tokens")
    assert value.has_access and value.balance == 3
    assert sync_client.entitlements.has("u1", "ai_tokens") is True


def test_sync_errors_keep_their_type(
    api: respx.MockRouter, sync_client: SyncOpenMeterBilling
) -> None:
    api.get("/api/v1/customers/nope").respond(404, json={"title": "Not Found", "status": 404})
    with pytest.raises(NotFoundError):
        sync_client.customers.get("nope")


def test_sync_list_iterates_every_page(
    api: respx.MockRouter, sync_client: SyncOpenMeterBilling
) -> None:
    api.get("/api/v1/customers").mock(
        side_effect=[
            httpx.Response(
                200, json={"items": [customer("a")], "page": 1, "pageSize": 1, "totalCount": 2}
            ),
            httpx.Response(
                200, json={"items": [customer("b")], "page": 2, "pageSize": 1, "totalCount": 2}
            ),
        ]
    )
    first = sync_client.customers.list(page_size=1)
    assert [c.key for c in first.items] == ["a"]
    assert [c.key for c in first] == ["a", "b"]


def test_nested_grants_resource_and_request_escape_hatch(
    api: respx.MockRouter, sync_client: SyncOpenMeterBilling
) -> None:
    route = api.delete("/api/v1/grants/01JDDDDDDDDDDDDDDDDDDDDDDD").respond(204)
    sync_client.entitlements.grants.void("01JDDDDDDDDDDDDDDDDDDDDDDD")
    assert route.call_count == 1
    api.get("/api/v1/meters").respond(200, json=[])
    assert sync_client.request("GET", "/api/v1/meters") == []
    assert sync_client.with_options(timeout=3).request("GET", "/api/v1/meters") == []


def test_sync_client_works_inside_a_running_event_loop(api: respx.MockRouter) -> None:
    api.get("/api/v2/customers/u1/entitlements/f/value").respond(200, json={"hasAccess": True})

    async def notebook_cell() -> bool:
        with SyncOpenMeterBilling(api_key=API_KEY, base_url=BASE_URL) as client:
            return client.entitlements.has("u1", "f")

    assert anyio.run(notebook_cell) is True


def test_calling_sync_client_from_its_own_loop_is_a_clear_error(api: respx.MockRouter) -> None:
    holder: dict[str, SyncOpenMeterBilling] = {}

    def reentrant_key(user: User) -> str:
        holder["client"].entitlements.has("x", "f")  # re-enters the portal from its own thread
        return user.id

    identity = Identity(user=UserResolver(key=reentrant_key))
    with SyncOpenMeterBilling(api_key=API_KEY, base_url=BASE_URL, identity=identity) as client:
        holder["client"] = client
        with pytest.raises(IdentityResolutionError) as caught:
            client.entitlements.has(User(id="u1"), "f")
    cause = caught.value.__cause__
    assert isinstance(cause, ConfigurationError)
    assert "own event loop thread" in str(cause)


def test_close_is_idempotent_and_repr_hides_the_key() -> None:
    client = SyncOpenMeterBilling(api_key=API_KEY, base_url=BASE_URL)
    assert API_KEY not in repr(client)
    assert repr(client).startswith("<SyncOpenMeterBilling")
    client.close()
    client.close()
