"""Retries, dead letters, shutdown and reconcile, in memory mode and with outboxes.

Outages are Local OpenMeter's own faults; `ObservedLocal` records what it acknowledged and stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import datetime, timezone

import pytest
from ingest._observed import INGEST, ObservedLocal

from openmeter_billing import DeadLetter, SQLiteOutbox

#: Local OpenMeter refuses (400) a batch holding an event over 1 MiB, as OpenMeter does.
POISON = {"pad": "x" * (1 << 20)}


async def test_transient_failures_are_retried_with_the_same_ids(make_client, faulty) -> None:
    errors: list[list[str]] = []
    client = make_client(on_error=lambda ids, exc: errors.append(list(ids)))
    faulty.local.faults.outage(INGEST, for_=3)
    ids = [client.events.submit(type="t", subject="s") for _ in range(5)]
    assert await client.events.flush() == 0
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)
    assert errors == [ids, ids, ids]  # the same batch, the same ids, three times
    stats = client.events.stats()
    assert (stats.sent, stats.retried, stats.dropped) == (5, 15, 0)


@pytest.mark.parametrize(("header", "expected"), [(30, 0.2), (0.05, 0.05)])
async def test_retry_after_is_honoured_and_capped(
    make_client, faulty, monkeypatch, header, expected
) -> None:
    from openmeter_billing.ingest import _sender

    delays: list[float] = []
    real = _sender._delay

    def record(*args: object) -> float:
        delays.append(real(*args))  # type: ignore[arg-type]
        return delays[-1]

    monkeypatch.setattr(_sender, "_delay", record)
    client = make_client(max_backoff=0.2)
    faulty.local.faults.outage(INGEST, for_=2, retry_after=header)
    client.events.submit(type="t", subject="s")
    await client.events.flush()
    assert delays == [expected, expected]  # the server's hint, never above max_backoff


async def test_a_rejected_event_is_dead_lettered_and_the_rest_delivered(
    make_client, faulty
) -> None:
    letters: list[DeadLetter] = []
    client = make_client(on_dead_letter=letters.append, batch_bytes=4_000_000)
    ids = [client.events.submit(type="t", subject="s", data={"i": i}) for i in range(9)]
    bad = client.events.submit(type="t", subject="s", data=POISON)
    ids += [client.events.submit(type="t", subject="s") for _ in range(6)]
    await client.events.flush()
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)
    assert [(d.event_id, d.status) for d in letters] == [(bad, 400)]
    assert "larger than the 1048576 bytes an event may take" in letters[0].reason
    assert json.loads(letters[0].body)["data"] == POISON
    assert faulty.posts > 4  # the batch of 16 was split until the bad event stood alone
    stats = client.events.stats()
    assert (stats.sent, stats.dead_lettered, stats.pending) == (15, 1, 0)


async def test_memory_mode_gives_up_after_max_attempts_and_says_so(make_client, faulty) -> None:
    dropped: list[tuple[list[str], str]] = []
    client = make_client(max_attempts=2, on_drop=lambda ids, why: dropped.append((list(ids), why)))
    faulty.down()
    event_id = client.events.submit(type="t", subject="s")
    assert await client.events.flush() == 0
    assert dropped == [([event_id], "retries exhausted")]
    assert client.events.stats().dropped == 1


async def test_close_flushes_and_reports_what_it_could_not_send(faulty, caplog) -> None:
    from openmeter_billing import IngestOptions, OpenMeterBilling

    dropped: list[tuple[list[str], str]] = []
    options = IngestOptions(
        drain_timeout=0.3,
        initial_backoff=0.05,
        on_drop=lambda ids, why: dropped.append((list(ids), why)),
    )
    client = OpenMeterBilling(
        base_url=faulty.local.base_url, transport=faulty.local, ingest=options
    )
    sent = client.events.submit(type="t", subject="s")
    await client.events.flush()
    faulty.down()
    stuck = [client.events.submit(type="t", subject="s") for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="openmeter_billing"):
        await client.aclose()
    assert faulty.stored_ids() == {sent: 1}
    assert [sorted(ids) for ids, _ in dropped] == [sorted(stuck)]
    assert dropped[0][1] == "client closed"
    assert "dropping 3 usage events" in caplog.text


async def test_durable_mode_retries_through_an_outage_and_keeps_rows(
    make_client, faulty, tmp_path
) -> None:
    outbox = SQLiteOutbox(tmp_path / "outbox.db")
    client = make_client(outbox=outbox, max_attempts=1)  # ignored: durable mode never gives up
    faulty.local.faults.outage(INGEST, for_=4)
    ids = [client.events.submit(type="t", subject="s") for _ in range(20)]
    assert outbox.pending() == 20  # committed before submit returned
    assert await client.events.flush() == 0
    assert outbox.pending() == 0
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)
    assert client.events.stats().dropped == 0


async def test_durable_dead_letters_are_kept_in_the_outbox(make_client, faulty, tmp_path) -> None:
    outbox = SQLiteOutbox(tmp_path / "outbox.db")
    client = make_client(outbox=outbox)
    good = client.events.submit(type="t", subject="s")
    bad = client.events.submit(type="t", subject="s", data=POISON)
    await client.events.flush()
    assert [d.event_id for d in outbox.dead_letters()] == [bad]
    assert faulty.stored_ids() == {good: 1}
    assert outbox.pending() == 0


async def test_a_new_client_delivers_what_an_earlier_one_left(
    faulty, make_client, tmp_path
) -> None:
    path = tmp_path / "outbox.db"
    outage = faulty.down()
    first = make_client(outbox=SQLiteOutbox(path), drain_timeout=0.2)
    ids = [first.events.submit(type="t", subject="s") for _ in range(12)]
    await first.aclose()
    assert SQLiteOutbox(path).pending() == 12  # kept, not dropped
    outage.remove()
    second = make_client(outbox=SQLiteOutbox(path))
    assert await second.events.flush() == 0
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_outage_then_flaky_server_loses_nothing_and_sends_once(
    make_client, faulty: ObservedLocal, tmp_path, kind
) -> None:
    """CI-sized version of the benchmark's fault run: 100 % 503, then 30 % random 503."""
    outbox = SQLiteOutbox(tmp_path / "o.db") if kind == "sqlite" else None
    client = make_client(outbox=outbox, batch_size=25, max_attempts=None)
    outage = faulty.down()
    ids = [client.events.submit(type="t", subject="s") for _ in range(150)]
    await client.events.flush(timeout=0.3)
    assert sum(faulty.stored_ids().values()) == 0
    outage.remove()
    flaky = faulty.local.faults.fail(INGEST, share=0.3)
    ids += [client.events.submit(type="t", subject="s") for _ in range(150)]
    assert await client.events.flush(timeout=30) == 0
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)  # 0 lost, 0 stored twice
    assert max(faulty.acknowledged.values()) == 1  # and no batch was acknowledged twice
    assert flaky.hits > 0  # the flaky phase really failed some sends


async def test_reconcile_resends_acknowledged_events_openmeter_lost(make_client, faulty) -> None:
    client = make_client()
    ids = [client.events.submit(type="t", subject="s") for _ in range(6)]
    await client.events.flush()
    lost = random.Random(3).sample(ids, 2)
    state = faulty.local._state
    state.events = [r for r in state.events if r.event.id not in lost]
    state.seen_events = {k for k in state.seen_events if k[1] not in lost}
    result = await client.events.reconcile(ids, min_age=0)
    assert sorted(result.checked) == sorted(ids)
    assert result.missing == sorted(lost)
    await client.events.flush()
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)
    again = await client.events.reconcile(
        since=datetime(2000, 1, 1, tzinfo=timezone.utc), min_age=0
    )
    assert again.missing == []
    unknown = await client.events.reconcile(["never-sent"], min_age=0)
    assert unknown.unknown == ["never-sent"]


async def test_an_unclosed_client_collected_mid_process_reports_its_queue(faulty) -> None:
    """Garbage collection with events queued: on_drop and a ResourceWarning, never silence."""
    import gc

    from openmeter_billing import IngestOptions, OpenMeterBilling

    dropped: list[tuple[list[str], str]] = []
    options = IngestOptions(
        flush_interval=3600, on_drop=lambda ids, why: dropped.append((list(ids), why))
    )
    client = OpenMeterBilling(
        base_url=faulty.local.base_url, transport=faulty.local, ingest=options
    )
    sent = client.events.submit(type="t", subject="s")
    assert await client.events.flush() == 0  # the flusher runs on this loop
    queued = [client.events.submit(type="t", subject="s") for _ in range(3)]
    # Collected at the del (no cycle) or by the collector (a cycle): either way, reported.
    with pytest.warns(ResourceWarning, match="garbage-collected with 3 usage events"):  # noqa: PT031
        del client
        gc.collect()
    assert dropped == [(queued, "client garbage-collected")]
    await asyncio.sleep(0.05)  # the orphaned flusher task ends without sending anything
    assert faulty.stored_ids() == {sent: 1}


async def test_a_collected_durable_client_leaves_its_rows(faulty, tmp_path) -> None:
    import gc

    from openmeter_billing import IngestOptions, OpenMeterBilling

    outbox = SQLiteOutbox(tmp_path / "o.db")
    client = OpenMeterBilling(
        base_url=faulty.local.base_url,
        transport=faulty.local,
        outbox=outbox,
        ingest=IngestOptions(flush_interval=3600),
    )
    faulty.down()
    client.events.submit(type="t", subject="s")
    del client
    gc.collect()  # no warning: nothing is lost, the row stays for the next process
    assert outbox.pending() == 1
