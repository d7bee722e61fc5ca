"""`PostgresOutbox` and `submit_in` against a real PostgreSQL (``OPENMETER_BILLING_TEST_PG_DSN``)."""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from openmeter_billing import PostgresOutbox

DSN = os.environ.get("OPENMETER_BILLING_TEST_PG_DSN")
pytestmark = pytest.mark.skipif(not DSN, reason="needs OPENMETER_BILLING_TEST_PG_DSN")


@pytest.fixture
def table() -> object:
    import psycopg

    name = f"outbox_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP TABLE IF EXISTS "{name}", "{name}_dead"')


async def test_two_relays_never_send_the_same_rows(make_client, faulty, table) -> None:
    outboxes = [PostgresOutbox(DSN, table=table) for _ in range(2)]  # type: ignore[arg-type]
    first, second = (make_client(outbox=o, batch_size=10) for o in outboxes)
    ids = [first.events.submit(type="t", subject="s") for _ in range(100)]
    assert outboxes[0].pending() == 100
    left = await asyncio.gather(first.events.flush(), second.events.flush())
    assert left == [0, 0]
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)
    assert max(faulty.acknowledged.values()) == 1  # no row was sent by both
    await first.aclose()
    await second.aclose()
    for outbox in outboxes:
        outbox.close()


async def test_submit_in_counts_usage_only_if_the_transaction_commits(
    make_client, faulty, table
) -> None:
    import psycopg

    outbox = PostgresOutbox(DSN, table=table)  # type: ignore[arg-type]
    client = make_client(outbox=outbox, flush_interval=60)
    async with await psycopg.AsyncConnection.connect(DSN) as conn:  # type: ignore[arg-type]
        async with conn.transaction():
            kept = await client.events.submit_in(conn, type="t", customer="c1")
        with pytest.raises(RuntimeError):  # noqa: PT012 - the transaction is the subject
            async with conn.transaction():
                await client.events.submit_in(conn, type="t", customer="c1")
                raise RuntimeError("the business action failed")
    # The flusher may already have delivered the committed event (it sweeps the outbox when it
    # starts), so what counts is the end state: the committed event once, the other never.
    assert outbox.pending() <= 1
    assert await client.events.flush() == 0
    assert outbox.pending() == 0
    assert faulty.stored_ids() == {kept: 1}
    await client.aclose()
    outbox.close()


async def test_submit_in_needs_a_postgres_outbox(make_client) -> None:
    from openmeter_billing import ConfigurationError

    with pytest.raises(ConfigurationError, match="PostgresOutbox"):
        await make_client().events.submit_in(object(), type="t", subject="s")


def test_outbox_repr_hides_the_dsn(table) -> None:
    outbox = PostgresOutbox("postgresql://u:secret@127.0.0.1:1/x", create_table=False, table=table)
    assert "secret" not in repr(outbox)
