"""`customers.delete`: replay-safe, clears the id store, optional provider clean-up."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from openmeter_billing import (
    CustomerDeletion,
    InMemoryCustomerIdStore,
    NotFoundError,
    Organization,
    User,
)
from openmeter_billing.local import LocalOpenMeter


@pytest.fixture
def local() -> LocalOpenMeter:
    return LocalOpenMeter(start=datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc))


async def test_second_delete_is_a_no_op_result_not_not_found(local: LocalOpenMeter) -> None:
    store = InMemoryCustomerIdStore()
    org = Organization(id="acme", name="Acme")
    async with local.client(customer_id_store=store) as client:
        created = await client.customers.sync(org)
        first = await client.customers.delete(org)
        second = await client.customers.delete(org)
        with pytest.raises(NotFoundError):
            await client.customers.get(org)
    assert first == CustomerDeletion("acme", True, created.id, True, org)
    assert second == CustomerDeletion("acme", False, None, True, org)
    assert store.ids == {}


async def test_delete_by_id_twice_answers_deleted_false(local: LocalOpenMeter) -> None:
    async with local.client() as client:
        created = await client.customers.create(name="Acme", key="acme")
        assert (await client.customers.delete(created.id)).deleted is True
        again = await client.customers.delete(created.id)  # OpenMeter answers 412 by id
        assert again == CustomerDeletion(created.id, False)
        assert (await client.customers.get(created.id)).deleted_at is not None


async def test_provider_cleanup_runs_on_every_call_before_the_store_forgets(
    local: LocalOpenMeter,
) -> None:
    store = InMemoryCustomerIdStore()
    seen: list[tuple[bool, str | None, bool]] = []

    async def cleanup(deletion: CustomerDeletion) -> None:
        # The id is still in the store while the hook runs, so it can look the provider up.
        seen.append((deletion.deleted, deletion.customer_id, deletion.key in store.ids))

    user = User(id="u1", email="ada@example.com")
    async with local.client(customer_id_store=store) as client:
        created = await client.customers.sync(user)
        await client.customers.delete(user, provider_cleanup=cleanup)
        await client.customers.delete(user, provider_cleanup=cleanup)
    assert seen == [(True, created.id, True), (False, None, False)]


async def test_failed_cleanup_keeps_the_id_and_a_retry_finishes(local: LocalOpenMeter) -> None:
    store = InMemoryCustomerIdStore()
    calls = 0

    def flaky(deletion: CustomerDeletion) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("provider down")

    user = User(id="u1")
    async with local.client(customer_id_store=store) as client:
        await client.customers.sync(user)
        with pytest.raises(RuntimeError, match="provider down"):
            await client.customers.delete(user, provider_cleanup=flaky)
        assert "u1" in store.ids
        retried = await client.customers.delete(user, provider_cleanup=flaky)
    assert retried.deleted is False
    assert retried.store_cleared is True
    assert store.ids == {}


async def test_store_without_delete_is_left_alone(local: LocalOpenMeter) -> None:
    class OldStore:
        def __init__(self) -> None:
            self.ids: dict[str, str] = {}

        def get(self, key: str) -> str | None:
            return self.ids.get(key)

        def set(self, key: str, customer_id: str, principal: object) -> None:
            self.ids[key] = customer_id

    store = OldStore()
    async with local.client(customer_id_store=store) as client:
        await client.customers.sync(User(id="u1"))
        result = await client.customers.delete(User(id="u1"))
    assert result.deleted is True
    assert result.store_cleared is False
    assert "u1" in store.ids


def test_sync_facade_delete_is_replay_safe(local: LocalOpenMeter) -> None:
    with local.sync_client() as client:
        client.customers.create(name="Acme", key="acme")
        assert client.customers.delete("acme").deleted is True
        assert client.customers.delete("acme").deleted is False
