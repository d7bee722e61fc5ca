"""docs/webhooks.md's framework examples, run as written through each framework's test client.

Each test executes the documented block (found by a line unique to it) in a namespace holding
``client``/``sync_client`` on Local OpenMeter, then posts a signed delivery (applied: the customer
gets the plan's entitlements) and a forged one (400, nothing applied) through the real framework.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from billing.test_billing_helpers import CATALOG, CUSTOMER
from billing.test_webhooks import SECRET, signed, subscription_event

from openmeter_billing import OpenMeterBilling, SyncOpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.providers import Stripe

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
FORGED = {"Stripe-Signature": "t=1,v1=00"}


def doc_block(marker: str) -> str:
    """The Python block of docs/webhooks.md containing ``marker`` (exactly one)."""
    found = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if marker in b]
    assert len(found) == 1, f"{len(found)} blocks contain {marker!r}"
    lines = found[0].splitlines()
    assert len([line for line in lines if line.strip()]) <= 15, "examples stay within 15 lines"
    return found[0]


def run_block(marker: str, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(doc_block(marker), f"webhooks.md[{marker}]", "exec"), namespace)
    return namespace


@pytest.fixture
def local() -> LocalOpenMeter:
    return LocalOpenMeter()


@pytest.fixture
def sync_client(local: LocalOpenMeter) -> Iterator[SyncOpenMeterBilling]:
    with local.sync_client(
        catalog=CATALOG, max_retries=0, providers=[Stripe(webhook_secret=SECRET)]
    ) as client:
        client.catalog.push()
        client.customers.create(name="Acme", key=CUSTOMER, subject_keys=[CUSTOMER])
        yield client


@pytest.fixture
def client(local: LocalOpenMeter, sync_client: SyncOpenMeterBilling) -> OpenMeterBilling:
    """An async client on the same Local OpenMeter (prepared by ``sync_client``)."""
    return local.client(catalog=CATALOG, max_retries=0, providers=[Stripe(webhook_secret=SECRET)])


def has_pro_access(sync_client: SyncOpenMeterBilling) -> bool:
    access = sync_client.customers.access(CUSTOMER)
    return bool(
        access.entitlements.get("api_access") and access.entitlements["api_access"].has_access
    )


def names(client: Any, sync_client: Any) -> dict[str, Any]:
    return {"__name__": "doc_example", "client": client, "sync_client": sync_client}


def test_setup_block_builds_both_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENMETER_ENDPOINT", LocalOpenMeter.base_url)  # built, never called
    namespace = run_block("sync_client = SyncOpenMeterBilling(", {"catalog": CATALOG})
    try:
        assert list(namespace["client"].providers) == ["stripe"]
        assert list(namespace["sync_client"].webhooks._async.providers) == ["stripe"]
    finally:
        namespace["sync_client"].close()


# Starlette's TestClient prefers the httpx2 package and warns on httpx, the library's own dependency.
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
@pytest.mark.parametrize("app_name", ["app", "starlette_app"])
def test_fastapi_and_starlette_mount(client: Any, sync_client: Any, app_name: str) -> None:
    from starlette.testclient import TestClient

    app = run_block("app = FastAPI()", names(client, sync_client))[app_name]
    body = subscription_event()
    with TestClient(app) as http:
        forged = http.post("/webhooks/stripe", content=body, headers=FORGED)
        assert (forged.status_code, forged.json()["outcome"]) == (400, "invalid")
        assert not has_pro_access(sync_client)
        response = http.post("/webhooks/stripe", content=body, headers=signed(body))
    assert (response.status_code, response.json()["outcome"]) == (200, "applied")
    assert has_pro_access(sync_client)


def django_settings(urlconf: object) -> Any:
    import django
    from django.conf import settings
    from django.test.utils import override_settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            SECRET_KEY="docs-example-only",  # Django refuses to start without one
            MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
            INSTALLED_APPS=[],
            DATABASES={},
        )
        django.setup()
    return override_settings(ROOT_URLCONF=urlconf)


class _UrlConf:
    def __init__(self, urlpatterns: list[Any]) -> None:
        self.urlpatterns = urlpatterns


async def test_django_asgi_view(client: Any, sync_client: Any) -> None:
    from django.test import AsyncClient

    namespace = run_block("async def webhook(request, provider)", names(client, sync_client))
    body = subscription_event()
    with django_settings(_UrlConf(namespace["urlpatterns"])):
        http = AsyncClient(enforce_csrf_checks=True)
        forged = await http.post(
            "/webhooks/stripe", body, content_type="application/json", headers=FORGED
        )
        assert forged.status_code == 400
        response = await http.post(
            "/webhooks/stripe", body, content_type="application/json", headers=signed(body)
        )
    assert (response.status_code, response.json()["outcome"]) == (200, "applied")


def test_django_wsgi_view(client: Any, sync_client: Any) -> None:
    from django.test import Client

    namespace = names(client, sync_client)
    run_block("async def webhook(request, provider)", namespace)  # the imports it reuses
    run_block("def webhook_sync(request, provider)", namespace)
    body = subscription_event()
    with django_settings(_UrlConf(namespace["urlpatterns"])):
        http = Client(enforce_csrf_checks=True)
        forged = http.post(
            "/webhooks/stripe", body, content_type="application/json", headers=FORGED
        )
        assert (forged.status_code, forged.json()["outcome"]) == (400, "invalid")
        response = http.post(
            "/webhooks/stripe", body, content_type="application/json", headers=signed(body)
        )
        again = http.post(
            "/webhooks/stripe", body, content_type="application/json", headers=signed(body)
        )
    assert (response.status_code, response.json()["outcome"]) == (200, "applied")
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert has_pro_access(sync_client)


def test_flask_dispatcher(client: Any, sync_client: Any) -> None:
    app = run_block("Flask(__name__)", names(client, sync_client))["flask_app"]
    body = subscription_event()
    http = app.test_client()
    forged = http.post("/webhooks/stripe", data=body, headers=FORGED)
    assert (forged.status_code, forged.get_json()["outcome"]) == (400, "invalid")
    response = http.post("/webhooks/stripe", data=body, headers=signed(body))
    assert (response.status_code, response.get_json()["outcome"]) == (200, "applied")
    assert has_pro_access(sync_client)


async def test_aiohttp_handler(client: Any, sync_client: Any) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    app = run_block("web.Application()", names(client, sync_client))["aiohttp_app"]
    body = subscription_event()
    async with TestClient(TestServer(app)) as http:
        forged = await http.post("/webhooks/stripe", data=body, headers=FORGED)
        assert forged.status == 400
        response = await http.post("/webhooks/stripe", data=body, headers=signed(body))
        assert (response.status, (await response.json())["outcome"]) == (200, "applied")
