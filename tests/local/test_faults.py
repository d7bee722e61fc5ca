"""Faults on demand: Local OpenMeter failing, slowing, dropping and rate-limiting like a real one.

These are also the library's own retry tests against a stateful server: the client must retry
what is safe, honour Retry-After, give up with its typed errors, and never double-count an event.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest

from openmeter_billing import (
    APIConnectionError,
    APITimeoutError,
    InternalServerError,
    InvalidInputError,
    OpenMeterBilling,
    RateLimitError,
)
from openmeter_billing.local import Faults, LocalOpenMeter
from openmeter_billing.local.faults import INGEST, VALUE_READS, Delay, Drop, Fail

from .conftest import START, make_metered

VALUE_V2 = "GET /api/v2/customers/{customerIdOrKey}/entitlements/{entitlementIdOrFeatureKey}/value"
METERED = {"usagePeriod": {"interval": "MONTH"}}


@pytest.fixture
def retrying(local: LocalOpenMeter, sleeps: list[float]) -> OpenMeterBilling:
    """A client with the default retries; ``sleeps`` records the backoff instead of waiting."""
    return local.client()


async def test_outage_for_two_requests_is_ridden_out_by_retries(
    local: LocalOpenMeter, om: OpenMeterBilling, retrying: OpenMeterBilling, sleeps: list[float]
) -> None:
    await make_metered(om, entitlement=METERED)
    rule = local.faults.outage(route=VALUE_READS, for_=2)
    value = await retrying.entitlements.value("acme", "tokens")
    assert value.has_access is False
    assert (rule.seen, rule.hits) == (3, 2)
    assert len(sleeps) == 2


async def test_outage_longer_than_the_retries_surfaces_the_5xx(
    local: LocalOpenMeter, om: OpenMeterBilling, retrying: OpenMeterBilling, sleeps: list[float]
) -> None:
    await make_metered(om, entitlement=METERED)
    local.faults.outage(route=VALUE_V2, status=502)
    with pytest.raises(InternalServerError) as caught:
        await retrying.entitlements.value("acme", "tokens")
    assert caught.value.status_code == 502
    assert len(sleeps) == 2  # the default max_retries


async def test_retry_after_from_a_fault_is_honoured(
    local: LocalOpenMeter, om: OpenMeterBilling, retrying: OpenMeterBilling, sleeps: list[float]
) -> None:
    await make_metered(om, entitlement=METERED)
    local.faults.fail(route="*/value", status=429, retry_after=3, for_=1)
    await retrying.entitlements.value("acme", "tokens")
    assert sleeps == [3.0]


async def test_a_time_window_ends_when_the_emulator_clock_moves(
    local: LocalOpenMeter, om: OpenMeterBilling
) -> None:
    local.faults.outage(route="GET /api/v1/meters", for_=timedelta(seconds=30))
    with pytest.raises(InternalServerError):
        await om.meters.list()
    local.clock.advance(seconds=29)
    with pytest.raises(InternalServerError):
        await om.meters.list()
    local.clock.advance(seconds=1)
    assert await om.meters.list() == []


async def test_after_and_for_select_a_window_of_requests(
    local: LocalOpenMeter, raw: httpx.AsyncClient
) -> None:
    rule = local.faults.fail(route="/api/v1/meters", status=500, after=1, for_=2)
    statuses = [(await raw.get("/api/v1/meters")).status_code for _ in range(5)]
    assert statuses == [200, 500, 500, 200, 200]
    assert rule.hits == 2
    body = (await raw.get("/api/v1/features")).status_code  # other routes are untouched
    assert body == 200


def _pattern(seed: int) -> list[int]:
    local = LocalOpenMeter(start=START, faults=Faults(seed=seed))
    local.faults.fail(route="GET /api/v1/meters", share=0.3)
    with httpx.Client(transport=local, base_url=local.base_url) as http:
        return [http.get("/api/v1/meters").status_code for _ in range(100)]


def test_a_share_of_requests_fails_deterministically_per_seed() -> None:
    first, again, other = _pattern(7), _pattern(7), _pattern(8)
    assert first == again
    assert first != other
    failed = first.count(503)
    assert 15 <= failed <= 45  # 30% of 100, seeded
    assert set(first) == {200, 503}


async def test_fault_answers_are_problem_json_with_retry_after(
    local: LocalOpenMeter, raw: httpx.AsyncClient
) -> None:
    local.faults.fail(status=503, retry_after=2)
    response = await raw.get("/api/v1/customers")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    problem = response.json()
    assert problem["status"] == 503
    assert problem["instance"].startswith("urn:request:")


async def test_delay_past_the_timeout_raises_the_clients_timeout_error(
    local: LocalOpenMeter, om: OpenMeterBilling
) -> None:
    await make_metered(om, entitlement=METERED)
    local.faults.delay(route=VALUE_READS, seconds=30)
    with pytest.raises(APITimeoutError):
        await om.with_options(timeout=2).entitlements.value("acme", "tokens")


def test_delay_past_the_timeout_on_the_sync_client(local: LocalOpenMeter) -> None:
    local.faults.delay(route="GET /api/v1/meters", seconds=10)
    with local.sync_client(max_retries=0, timeout=1) as client, pytest.raises(APITimeoutError):
        client.meters.list()


async def test_a_short_delay_really_waits_and_then_answers(
    local: LocalOpenMeter, raw: httpx.AsyncClient
) -> None:
    rule = local.faults.delay(route="GET /api/v1/meters", seconds=0.01)
    response = await raw.get("/api/v1/meters", timeout=5)
    assert response.status_code == 200
    assert rule.hits == 1


async def test_dropped_connections_are_retried_then_raised(
    local: LocalOpenMeter, retrying: OpenMeterBilling, sleeps: list[float]
) -> None:
    rule = local.faults.drop(route="GET /api/v1/meters")
    with pytest.raises(APIConnectionError) as caught:
        await retrying.meters.list()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert rule.hits == 3


async def test_an_ingest_whose_answer_is_lost_is_retried_and_counted_once(
    local: LocalOpenMeter, om: OpenMeterBilling, retrying: OpenMeterBilling, sleeps: list[float]
) -> None:
    await make_metered(om, entitlement=METERED)
    rule = local.faults.drop(route=INGEST, when="after", for_=1)
    await retrying.events.ingest(type="tokens", customer="acme", data={"value": 5})
    assert rule.hits == 1
    assert len(local.snapshot()["events"]) == 1  # the retry was deduplicated
    local.clock.advance(minutes=1)
    value = await om.entitlements.value("acme", "tokens")
    assert value.usage == 5


async def test_value_reads_are_rate_limited_per_second_of_the_emulator_clock(
    local: LocalOpenMeter, om: OpenMeterBilling, raw: httpx.AsyncClient
) -> None:
    await make_metered(om, entitlement=METERED)
    rule = local.faults.rate_limit(per_second=2)
    url = "/api/v2/customers/acme/entitlements/tokens/value"
    statuses = [(await raw.get(url)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = await raw.get(url)
    assert limited.headers["retry-after"] == "1"
    assert (await raw.get("/api/v1/meters")).status_code == 200  # only value reads count
    local.clock.advance(seconds=1)
    assert (await raw.get(url)).status_code == 200
    assert rule.hits == 2
    await om.entitlements.value("acme", "tokens")
    with pytest.raises(RateLimitError):
        await om.entitlements.value("acme", "tokens")


async def test_a_rule_used_as_a_context_manager_is_removed_on_exit(
    local: LocalOpenMeter, raw: httpx.AsyncClient
) -> None:
    with local.faults.outage():
        assert (await raw.get("/api/v1/meters")).status_code == 503
    assert (await raw.get("/api/v1/meters")).status_code == 200
    assert local.faults.rules == []


def test_faults_are_counted_exactly_under_concurrent_requests() -> None:
    local = LocalOpenMeter(start=START, faults=Faults(seed=3))
    rule = local.faults.fail(route="GET /api/v1/meters", share=0.5)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(transport=local, base_url=local.base_url) as http:
            for _ in range(25):
                code = http.get("/api/v1/meters").status_code
                with lock:
                    statuses.append(code)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rule.seen == 100
    assert statuses.count(503) == rule.hits
    assert statuses.count(200) == 100 - rule.hits


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda f: f.fail(status=404), "status"),
        (lambda f: f.fail(share=0), "share"),
        (lambda f: f.fail(share=1.5), "share"),
        (lambda f: f.fail(for_=0), "for_"),
        (lambda f: f.fail(for_=timedelta(0)), "for_"),
        (lambda f: f.fail(after=-1), "after"),
        (lambda f: f.fail(retry_after=-1), "retry_after"),
        (lambda f: f.delay(seconds=0), "seconds"),
        (lambda f: f.drop(when="during"), "when"),
        (lambda f: f.rate_limit(per_second=0), "per_second"),
        (lambda f: f.fail(route=""), "route"),
    ],
)
def test_bad_fault_rules_are_refused_naming_the_field(call: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        call(Faults())  # type: ignore[operator]
    assert caught.value.field == field


def test_rules_report_their_actions() -> None:
    faults = Faults()
    assert faults.outage(route=INGEST).action == Fail(503)
    assert faults.delay(seconds=1).action == Delay(1)
    assert faults.drop(when="after").action == Drop("after")
    assert len(faults.rules) == 3
    faults.clear()
    assert not faults
