"""PostgresLedger specifics: real concurrency across connections, migrations, connection sources.

Tests marked ``postgres`` need ``OPENMETER_BILLING_TEST_PG_DSN`` (see conftest); the others check
what happens before any connection is made and always run.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest

from openmeter_billing import ConfigurationError
from openmeter_billing.billing.ledger import (
    PostgresLedger,
    migrate_postgres_ledger,
    postgres_ledger_ddl,
)

pg = pytest.mark.postgres


def unique_table() -> str:
    return f"omb_ledger_t_{secrets.token_hex(6)}"


async def drop(dsn: str, *tables: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for table in tables:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")


async def count_states(ledger: Any, key: str, times: int) -> dict[str, int]:
    states: dict[str, int] = {}

    async def one() -> None:
        state = (await ledger.claim(key)).state
        states[state] = states.get(state, 0) + 1

    async with anyio.create_task_group() as tg:
        for _ in range(times):
            tg.start_soon(one)
    return states


@pg
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transactions"])
async def test_fifty_claims_racing_on_ten_connections_have_one_winner(
    pg_dsn: str, pg_table: str, autocommit: bool, open_pool: Any
) -> None:
    pool = await open_pool(10, autocommit=autocommit)
    ledger = PostgresLedger(pool, table=pg_table)
    key = f"race-{secrets.token_hex(4)}"
    assert await count_states(ledger, key, 50) == {"new": 1, "in_progress": 49}
    await ledger.aclose()
    # Every connection is idle again: no claim was left inside an open transaction.
    assert {c.info.transaction_status.name for c in pool.connections} == {"IDLE"}


@pg
async def test_ledgers_on_separate_connections_agree_on_one_winner(
    pg_dsn: str, pg_table: str
) -> None:
    workers = [PostgresLedger(pg_dsn, table=pg_table) for _ in range(5)]
    key = f"hosts-{secrets.token_hex(4)}"
    claims = []

    async def claim(ledger: PostgresLedger) -> None:
        claims.append(await ledger.claim(key))

    async with anyio.create_task_group() as tg:
        for ledger in workers * 4:
            tg.start_soon(claim, ledger)
    assert sorted(c.state for c in claims) == ["in_progress"] * 19 + ["new"]
    for ledger in workers:
        await ledger.aclose()


@pg
async def test_first_use_by_many_workers_creates_the_table_once(pg_dsn: str) -> None:
    table = unique_table()
    workers = [PostgresLedger(pg_dsn, table=table) for _ in range(6)]
    try:
        async with anyio.create_task_group() as tg:
            for i, ledger in enumerate(workers):
                tg.start_soon(ledger.claim, f"k{i}")
        assert all([(await w.get(f"k{i}")) is not None for i, w in enumerate(workers)])
    finally:
        for ledger in workers:
            await ledger.aclose()
        await drop(pg_dsn, table)


@pg
async def test_migration_is_idempotent_and_accepts_a_schema(pg_dsn: str) -> None:
    import psycopg

    schema = f"omb_s_{secrets.token_hex(4)}"
    table = f"{schema}.ledger"
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        try:
            await migrate_postgres_ledger(pg_dsn, table=table)
            await migrate_postgres_ledger(conn, table=table)  # again, on a lent connection
            async with PostgresLedger(pg_dsn, table=table, create_table=False) as ledger:
                claim = await ledger.claim("k")
                await ledger.complete("k", claim.token or "", {"v": 1})
            cursor = await conn.execute(
                f"SELECT result->>'v', completed_at IS NOT NULL FROM {table}"
            )
            assert await cursor.fetchall() == [("1", True)]
        finally:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pg
async def test_without_the_table_and_create_table_false_the_database_error_surfaces(
    pg_dsn: str,
) -> None:
    import psycopg

    async with PostgresLedger(pg_dsn, table=unique_table(), create_table=False) as ledger:
        with pytest.raises(psycopg.errors.UndefinedTable):
            await ledger.claim("k")


@pg
async def test_a_lent_connection_is_used_and_left_open(pg_dsn: str, pg_table: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        ledger = PostgresLedger(conn, table=pg_table)
        claim = await ledger.claim(f"lent-{secrets.token_hex(4)}")
        assert claim.state == "new"
        await ledger.aclose()
        assert not conn.closed
        assert conn.info.transaction_status.name == "IDLE"  # the claim was committed


@pg
async def test_the_own_connection_is_reopened_after_the_server_drops_it(
    pg_dsn: str, pg_table: str
) -> None:
    import psycopg

    name = f"omb_reconnect_{secrets.token_hex(4)}"
    dsn = f"{pg_dsn}{'&' if '?' in pg_dsn else '?'}application_name={name}"
    async with PostgresLedger(dsn, table=pg_table) as ledger:
        assert (await ledger.claim(f"{name}-a")).state == "new"
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
        with pytest.raises(psycopg.OperationalError):
            await ledger.claim(f"{name}-b")  # the call in flight learns of the drop
        assert (await ledger.claim(f"{name}-b")).state == "new"  # the next one reconnects


@pg
@pytest.mark.parametrize("source", ["dsn", "pool"])
async def test_a_closed_ledger_refuses_further_use(
    pg_dsn: str, pg_table: str, open_pool: Any, source: str
) -> None:
    pool = await open_pool(1, autocommit=True)
    ledger = PostgresLedger(pg_dsn if source == "dsn" else pool, table=pg_table)
    await ledger.claim(f"closed-{secrets.token_hex(4)}")
    await ledger.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await ledger.get("k")
    assert not pool.connections[0].closed  # the pool is the caller's to close


def test_ddl_is_printable_and_quotes_the_table() -> None:
    ddl = postgres_ledger_ddl("billing.topup_ledger")
    assert 'CREATE TABLE IF NOT EXISTS "billing"."topup_ledger"' in ddl
    assert '"topup_ledger_completed_at_idx"' in ddl
    assert "char_length(key) BETWEEN 1 AND 512" in ddl


@pytest.mark.parametrize("table", ["x; DROP TABLE users", "a.b.c", "1st", "", "x" * 64, 'a"b'])
def test_unsafe_table_names_are_refused_before_connecting(table: str) -> None:
    with pytest.raises(ConfigurationError, match="table"):
        PostgresLedger("postgresql://127.0.0.1:1/none", table=table)
    with pytest.raises(ConfigurationError, match="table"):
        postgres_ledger_ddl(table)


async def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    with pytest.raises(ConfigurationError, match=r"openmeter-billing\[postgres\]"):
        PostgresLedger("postgresql://127.0.0.1/app")
    with pytest.raises(ConfigurationError, match=r"openmeter-billing\[postgres\]"):
        await migrate_postgres_ledger("postgresql://127.0.0.1/app")
    assert "CREATE TABLE" in postgres_ledger_ddl()  # the SQL needs no driver


class SyncPool:
    """Looks like psycopg_pool.ConnectionPool: a synchronous connection() context manager."""

    @staticmethod
    @contextmanager
    def connection() -> Iterator[Any]:
        yield None


@pytest.mark.parametrize("source", [SyncPool(), object(), 42, None])
def test_sources_that_async_code_cannot_use_are_refused(source: Any) -> None:
    with pytest.raises(ConfigurationError, match="dsn_or_pool"):
        PostgresLedger(source)


async def test_migration_refuses_a_bad_connection_argument() -> None:
    with pytest.raises(ConfigurationError, match="conn_or_dsn"):
        await migrate_postgres_ledger(object())  # type: ignore[arg-type]
