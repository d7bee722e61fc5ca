"""`events.submit` in memory mode against Local OpenMeter: ids, validation, batching, overflow."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from ingest._observed import ObservedLocal

from openmeter_billing import (
    ConfigurationError,
    Identity,
    IngestOptions,
    InvalidInputError,
    QueueFullError,
    SubjectMismatchError,
    User,
    UserResolver,
)


async def test_submit_returns_the_id_openmeter_stores(make_client, faulty: ObservedLocal) -> None:
    client = make_client()
    ids = [client.events.submit(type="ai-tokens", customer="c1", data={"n": i}) for i in range(7)]
    assert len(set(ids)) == 7
    assert await client.events.flush() == 0
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)
    stored = await client.events.list(limit=100)
    assert {e.event.id for e in stored} == set(ids)
    assert {e.event.subject for e in stored} == {"c1"}
    assert client.events.stats().sent == 7


async def test_submit_keeps_given_id_source_and_time(make_client, faulty: ObservedLocal) -> None:
    client = make_client()
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    event_id = client.events.submit(
        type="t", subject="s1", id="evt-1", source="billing-api", time=when, data={"x": 1}
    )
    assert event_id == "evt-1"
    await client.events.flush()
    (stored,) = await client.events.list(from_=when, limit=10)
    assert stored.event.source == "billing-api"
    assert stored.event.time == when
    assert stored.event.data == {"x": 1}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "", "subject": "s"}, "event.type"),
        ({"type": "t"}, "event.subject"),
        ({"type": "t", "subject": "s", "data": [1]}, "event.data"),
        ({"type": "t", "subject": "s", "data": {"x": object()}}, "event.data.x"),
        ({"type": "t", "subject": "s", "data": {"x": float("nan")}}, "event.data.x"),
        ({"type": "t", "subject": "s", "data": {"x": -float("inf")}}, "event.data.x"),
        (
            {"type": "t", "subject": "s", "data": {"x": {"y": [1, float("nan")]}}},
            "event.data.x.y[1]",
        ),
        ({"type": "t", "subject": "s", "data": {"x": 10**400}}, "event.data.x"),
        ({"type": "t", "subject": "s", "data": {1: 2}}, "event.data"),
        ({"type": "t", "subject": "s", "data": {"x": "\ud800"}}, "event"),
        ({"type": 5, "subject": "s"}, "event.type"),
        ({"type": "t", "subject": "s", "id": 12}, "event.id"),
        ({"type": "t", "subject": "s", "time": datetime(2026, 1, 1)}, "event.time"),
        ({"type": "t", "subject": "s", "id": ""}, "event.id"),
        ({"type": "t", "customer": ""}, "event.subject"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_queued(make_client, kwargs, field) -> None:
    client = make_client()
    with pytest.raises(InvalidInputError) as caught:
        client.events.submit(**kwargs)
    assert caught.value.field == field
    assert client.events.stats().submitted == 0


async def test_encoding_round_trips_through_openmeter(make_client) -> None:
    """The hand-written envelope escapes what JSON needs and keeps every value exact."""
    client = make_client()
    odd = 'quote " backslash \\ tab \t é 😀'
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    data = {"s": odd, "n": 3, "f": 2.5, "b": True, "none": None, "nested": {"l": [1, "a"]}}
    event_id = client.events.submit(
        type=odd, subject=odd, id=odd, data={**data, "when": moment}, time=moment
    )
    assert event_id == odd
    await client.events.flush()
    (stored,) = await client.events.list(from_=moment, limit=10)
    assert (stored.event.id, stored.event.type, stored.event.subject) == (odd, odd, odd)
    assert stored.event.data == {**data, "when": moment.isoformat()}


def test_generated_ids_are_unique_uuids_and_differ_in_a_forked_child() -> None:
    import os
    import uuid

    from openmeter_billing.ingest._prepare import new_event_id

    ids = {new_event_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert {uuid.UUID(i).version for i in ids} == {8}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_id = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    assert child_id[:24] != new_event_id()[:24]  # a new random prefix, not the parent's stream


async def test_principals_resolve_without_awaiting(faulty: ObservedLocal, make_client) -> None:
    client = make_client(identity=Identity(user=UserResolver(key="user-{id}")))
    client.events.submit(type="t", customer=User(id="7"))
    with pytest.raises(SubjectMismatchError):
        client.events.submit(type="t", customer=User(id="7"), subject="someone-else")
    await client.events.flush()
    assert [e.event.subject for e in await client.events.list()] == ["user-7"]


async def test_a_resolver_that_waits_for_io_is_refused(make_client) -> None:
    async def key(user: User) -> str:
        await asyncio.sleep(0)
        return f"user-{user.id}"

    client = make_client(identity=Identity(user=UserResolver(key=key)))
    with pytest.raises(InvalidInputError, match="cannot do") as caught:
        client.events.submit(type="t", customer=User(id="7"))
    assert caught.value.field == "customer"


async def test_a_full_batch_is_sent_before_the_interval(make_client, faulty) -> None:
    client = make_client(batch_size=10, flush_interval=60)
    async with client:
        for i in range(10):
            client.events.submit(type="t", subject="s", data={"i": i})
        for _ in range(200):
            if client.events.stats().sent == 10:
                break
            await asyncio.sleep(0.01)
    assert client.events.stats().sent == 10
    assert faulty.posts == 1


async def test_batches_respect_count_and_bytes(make_client, faulty) -> None:
    client = make_client(batch_size=4, batch_bytes=600)
    for i in range(20):
        client.events.submit(type="t", subject="s", data={"pad": "x" * 100, "i": i})
    await client.events.flush()
    assert sum(faulty.stored_ids().values()) == 20
    assert faulty.posts >= 20 // 3  # ~180-byte events: at most 3 fit 600 bytes


async def test_on_submitted_hears_every_event(make_client) -> None:
    heard: list[tuple[str, str, str]] = []
    client = make_client(on_submitted=lambda *args: heard.append(args))
    event_id = client.events.submit(type="ai-tokens", customer="c9", data={"tokens": 3})
    assert heard == [(event_id, "c9", "ai-tokens")]


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
async def test_overflow_drops_are_reported_with_ids(make_client, faulty, policy) -> None:
    dropped: list[tuple[list[str], str]] = []
    outage = faulty.down()
    client = make_client(
        max_queue_events=3,
        overflow=policy,
        on_drop=lambda ids, why: dropped.append((list(ids), why)),
    )
    ids = [client.events.submit(type="t", subject="s") for _ in range(5)]
    expected = ids[3:] if policy == "drop_newest" else ids[:2]
    assert dropped == [([i], "queue full") for i in expected]
    stats = client.events.stats()
    assert (stats.submitted, stats.dropped, stats.pending) == (5, 2, 3)
    outage.remove()
    await client.events.flush()
    assert set(faulty.stored_ids()) == set(ids) - set(expected)


async def test_overflow_raise_names_the_event(make_client, faulty) -> None:
    faulty.down()
    client = make_client(max_queue_events=1, overflow="raise")
    client.events.submit(type="t", subject="s")
    with pytest.raises(QueueFullError) as caught:
        client.events.submit(type="t", subject="s", id="second")
    assert caught.value.event_id == "second"


def test_overflow_block_waits_for_room_then_gives_up() -> None:
    # The queue itself: with a client, its flusher frees room at times no test can pin down.
    from openmeter_billing.ingest._queue import MemoryQueue

    queue = MemoryQueue(max_events=2, max_bytes=10_000)
    for name in ("a", "b"):
        assert queue.put((name, b"{}"), "block", 0.1, may_block=True) == []
    with pytest.raises(QueueFullError) as caught:
        queue.put(("c", b"{}"), "block", 0.1, may_block=True)  # waited, no room came
    assert caught.value.event_id == "c"
    with pytest.raises(QueueFullError):  # inside an event loop's thread it cannot wait
        queue.put(("c", b"{}"), "block", 5.0, may_block=False)
    freed = threading.Timer(0.05, lambda: queue.take(1, 10_000))
    freed.start()
    assert queue.put(("d", b"{}"), "block", 5.0, may_block=True) == []  # room came in time
    freed.join()
    assert [i for i, _ in queue.take(10, 10_000)] == ["b", "d"]


def test_sync_facade_submits_without_blocking_and_flushes(faulty) -> None:
    from openmeter_billing import SyncOpenMeterBilling

    with SyncOpenMeterBilling(base_url=faulty.local.base_url, transport=faulty.local) as client:
        ids = [client.events.submit(type="t", subject="s") for _ in range(30)]
        assert client.events.flush() == 0
        assert client.events.stats().sent == 30
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)


def test_ingest_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="batch_size"):
        IngestOptions(batch_size=0)
    with pytest.raises(ConfigurationError, match="overflow"):
        IngestOptions(overflow="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="flush_interval"):
        IngestOptions(flush_interval=0)


async def test_submit_after_close_is_an_error(make_client) -> None:
    client = make_client()
    await client.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        client.events.submit(type="t", subject="s")


async def test_with_options_copies_share_one_queue(make_client, faulty) -> None:
    client = make_client()
    copy = client.with_options(timeout=3)
    copy.events.submit(type="t", subject="s")
    client.events.submit(type="t", subject="s")
    assert client.events.stats().submitted == 2
    await copy.events.flush()
    assert sum(faulty.stored_ids().values()) == 2


@dataclass
class _Body:
    raw: bytes


async def test_encoded_event_is_compact_json(make_client, faulty) -> None:
    client = make_client()
    client.events.submit(type="t", subject="s", id="e1", data={"a": "é"})
    (item,) = client._ingest().queue.take(10, 10_000)
    assert json.loads(item[1]) == {
        "specversion": "1.0",
        "id": "e1",
        "source": "openmeter-billing",
        "type": "t",
        "subject": "s",
        "data": {"a": "é"},
    }
    assert b" " not in item[1]
