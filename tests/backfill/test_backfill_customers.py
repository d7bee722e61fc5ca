"""`client.backfill.customers` on Local OpenMeter: create, rerun, resume, fail, retry, pace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from _backfill_helpers import Flaky

from openmeter_billing import (
    AuthenticationError,
    ConfigurationError,
    InMemoryCustomerIdStore,
    InvalidInputError,
    OpenMeterBilling,
    Organization,
    User,
)
from openmeter_billing.backfill import BackfillProgress, StateFile
from openmeter_billing.local import LocalOpenMeter


def users(n: int, *, name: str = "User") -> list[User]:
    return [User(id=f"u{i}", email=f"u{i}@example.com", name=f"{name} {i}") for i in range(n)]


async def all_keys(client: OpenMeterBilling) -> list[str]:
    return [c.key or "" async for c in client.customers.list(page_size=1000)]


async def test_first_run_creates_each_customer_with_one_request(local: LocalOpenMeter) -> None:
    methods: list[str] = []
    local.add_observer(lambda request, response: methods.append(request.method))
    store = InMemoryCustomerIdStore()
    async with local.client(customer_id_store=store) as client:
        report = await client.backfill.customers(users(40), concurrency=4, rate_limit=None)
        keys = await all_keys(client)
    assert (report.created, report.updated, report.unchanged, report.failed) == (40, 0, 0, 0)
    assert report.ok
    assert report.total == 40
    assert methods[:40] == ["POST"] * 40
    assert sorted(keys) == sorted(f"u{i}" for i in range(40))
    assert len(store.ids) == 40


async def test_rerun_without_checkpoint_creates_nothing(local: LocalOpenMeter) -> None:
    async with local.client() as client:
        await client.backfill.customers(users(30), rate_limit=None)
        again = await client.backfill.customers(users(30), rate_limit=None)
        renamed = await client.backfill.customers(users(5, name="Renamed"), rate_limit=None)
        keys = await all_keys(client)
        first = await client.customers.get("u0")
    assert (again.created, again.unchanged) == (0, 30)
    assert (renamed.updated, renamed.created) == (5, 0)
    assert len(keys) == 30
    assert first.name == "Renamed 0"


async def test_rerun_with_a_state_file_skips_what_is_done(
    local: LocalOpenMeter, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    seen: list[str] = []
    async with local.client() as client:
        first = await client.backfill.customers(users(25), checkpoint=state, rate_limit=None)
        local.add_observer(lambda request, response: seen.append(request.method))
        second = await client.backfill.customers(users(25), checkpoint=state, rate_limit=None)
    assert first.created == 25
    assert (second.skipped, second.created, second.unchanged) == (25, 0, 0)
    assert seen == []  # nothing was even read
    stored = json.loads(state.read_text())
    assert stored["watermark"] == 25
    assert stored["failed"] == []


async def test_interrupted_run_resumes_to_exactly_every_customer(
    local: LocalOpenMeter, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    total = 500
    async with local.client() as client:
        with anyio.CancelScope() as scope:

            def interrupted() -> Iterator[User]:
                for index, user in enumerate(users(total)):
                    if index == total // 2:
                        scope.cancel()  # Ctrl-C half-way, with items in flight
                    yield user

            await client.backfill.customers(
                interrupted(), checkpoint=state, concurrency=8, rate_limit=None
            )
        assert scope.cancelled_caught
        half = json.loads(state.read_text())["watermark"]
        resumed = await client.backfill.customers(
            users(total), checkpoint=state, concurrency=8, rate_limit=None
        )
        keys = await all_keys(client)
    assert 0 < half <= total // 2 + 1  # the item read as it was cancelled may finish
    assert resumed.ok
    assert resumed.skipped >= half
    assert resumed.skipped + resumed.created + resumed.unchanged == total
    assert len(keys) == len(set(keys)) == total


async def test_failures_are_reported_with_reasons_and_retried_on_resume(
    local: LocalOpenMeter, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    people: list[object] = [*users(3), object(), Organization(id="org1", name="Org")]
    async with local.client() as client:
        await client.customers.create(name="Squatter", key="other", subject_keys=["u1"])
        report = await client.backfill.customers(people, checkpoint=state, rate_limit=None)
        assert not report.ok
        failures = {f.index: f for f in report.failures}
        assert set(failures) == {1, 3}
        assert failures[1].key == "u1"
        assert failures[1].error == "ConflictError"
        assert failures[3].error == "IdentityResolutionError"
        assert "no identity resolver accepts a object" in failures[3].reason
        assert report.created == 3
        await client.customers.delete("other")  # fix the data, then resume
        resumed = await client.backfill.customers(people, checkpoint=state, rate_limit=None)
    assert resumed.skipped == 3
    assert resumed.created == 1
    assert [f.index for f in resumed.failures] == [3]


async def test_transient_failures_are_retried(local: LocalOpenMeter) -> None:
    posts = 0

    def every_other_post(request: object) -> bool:
        nonlocal posts
        if getattr(request, "method", "") != "POST":
            return False
        posts += 1
        return posts % 2 == 1

    flaky = Flaky(local, every_other_post)
    async with OpenMeterBilling(base_url="http://local.test", transport=flaky) as client:
        report = await client.backfill.customers(users(10), concurrency=1, rate_limit=None)
    assert (report.created, report.failed) == (10, 0)
    assert flaky.failed == 10


async def test_retries_give_up_and_report_the_attempts(local: LocalOpenMeter) -> None:
    flaky = Flaky(local, lambda request: request.method == "POST", status=500)
    async with OpenMeterBilling(
        base_url="http://local.test", transport=flaky, max_retries=0
    ) as client:
        report = await client.backfill.customers(users(2), retries=2, rate_limit=None)
    assert [f.attempts for f in report.failures] == [3, 3]
    assert {f.error for f in report.failures} == {"InternalServerError"}
    assert flaky.failed == 6


async def test_a_rejected_token_stops_the_run_and_keeps_the_state(tmp_path: Path) -> None:
    local = LocalOpenMeter(api_key="right")
    state = tmp_path / "state.json"
    async with OpenMeterBilling(
        base_url="http://127.0.0.1", api_key="wrong", transport=local
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.backfill.customers(users(50), checkpoint=state, rate_limit=None)
    assert json.loads(state.read_text())["watermark"] == 0


async def test_progress_reports_totals_and_the_end(local: LocalOpenMeter) -> None:
    seen: list[BackfillProgress] = []
    async with local.client() as client:
        await client.backfill.customers(users(20), on_progress=seen.append, rate_limit=None)
    last = seen[-1]
    assert (last.kind, last.total, last.settled, last.failed) == ("customers", 20, 20, 0)
    assert last.fraction == 1.0
    assert last.eta == 0.0


async def test_async_iterables_are_read_lazily(local: LocalOpenMeter) -> None:
    pulled = 0

    async def stream():  # type: ignore[no-untyped-def]
        nonlocal pulled
        for user in users(12):
            pulled += 1
            yield user

    async with local.client() as client:
        report = await client.backfill.customers(stream(), concurrency=2, rate_limit=None)
    assert report.created == pulled == 12
    assert report.total == 12


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"retries": -1}, "retries"),
    ],
)
async def test_bad_options_fail_before_any_request(
    local: LocalOpenMeter, options: dict[str, object], field: str
) -> None:
    seen: list[str] = []
    local.add_observer(lambda request, response: seen.append(request.method))
    async with local.client() as client:
        with pytest.raises(InvalidInputError) as raised:
            await client.backfill.customers(users(3), **options)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert seen == []


async def test_a_state_file_of_another_kind_is_refused(
    local: LocalOpenMeter, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"version": 1, "kind": "subscriptions", "watermark": 3}))
    async with local.client() as client:
        with pytest.raises(ConfigurationError, match="belongs to a subscriptions backfill"):
            await client.backfill.customers(users(3), checkpoint=state)
        state.write_text("{not json")
        with pytest.raises(ConfigurationError, match="cannot be read"):
            await client.backfill.customers(users(3), checkpoint=state)
        fresh = await client.backfill.customers(
            users(3), checkpoint=StateFile(state, resume=False), rate_limit=None
        )
    assert fresh.created == 3


def test_sync_facade_backfills(local: LocalOpenMeter) -> None:
    with local.sync_client() as client:
        report = client.backfill.customers(users(5), rate_limit=None)
        assert report.created == 5
        assert len(client.customers.list().to_list()) == 5
