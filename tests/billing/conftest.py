"""Billing fixtures: Local OpenMeter with the test catalog, and ledgers (memory, SQLite, PostgreSQL).

PostgreSQL tests read ``OPENMETER_BILLING_TEST_PG_DSN`` (``eval "$(bash .ci/postgres.sh)"`` starts a
throwaway server and sets it). Without it, or without a reachable server, they skip, except under CI
(``CI=true``) where a missing database is a failure. Each run uses its own table and drops it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from billing.test_billing_helpers import CATALOG, START, prepare

from openmeter_billing import OpenMeterBilling
from openmeter_billing.billing.ledger import (
    InMemoryLedger,
    PostgresLedger,
    SQLiteLedger,
    postgres_ledger_ddl,
)
from openmeter_billing.local import LocalOpenMeter

PG_ENV = "OPENMETER_BILLING_TEST_PG_DSN"
LEDGER_KINDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),  # one connection of its own
    pytest.param("postgres-pool", marks=pytest.mark.postgres),  # a pool, in transactions
]


@pytest.fixture
def local() -> LocalOpenMeter:
    """Local OpenMeter for the billing runtime tests, at the helpers' START."""
    return LocalOpenMeter(start=START)


@pytest.fixture
async def om(local: LocalOpenMeter) -> AsyncIterator[OpenMeterBilling]:
    """A client on ``local`` with the test catalog pushed and an in-memory ledger."""
    async with local.client(catalog=CATALOG, ledger=InMemoryLedger(), max_retries=0) as client:
        await prepare(client)
        yield client


class FakeClock:
    """A clock the test moves by hand, so lease expiry needs no sleeping."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Outside CI a missing database is a skip; under CI it must not pass silently."""
    if under_ci():
        pytest.fail(f'{reason} (CI=true requires PostgreSQL: run `eval "$(bash .ci/postgres.sh)"`)')
    pytest.skip(reason)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The test server's DSN, after checking that it answers."""
    dsn = os.environ.get(PG_ENV, "")
    if not dsn:
        skip_or_fail(f'{PG_ENV} is not set; start a server with `eval "$(bash .ci/postgres.sh)"`')
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        skip_or_fail(f"no PostgreSQL server reachable at {PG_ENV}: {exc}")
    return dsn


def pg_execute(dsn: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="session")
def pg_table(pg_dsn: str) -> Iterator[str]:
    """A table unique to this test run (parallel runs on one database cannot collide)."""
    table = f"omb_ledger_test_{os.getpid()}_{secrets.token_hex(4)}"
    pg_execute(pg_dsn, postgres_ledger_ddl(table))
    yield table
    pg_execute(pg_dsn, f'DROP TABLE IF EXISTS "{table}"')


class TinyPool:
    """The part of psycopg_pool.AsyncConnectionPool the ledger uses, over N real connections.

    psycopg_pool is not a dependency; this stand-in lends connections the same way (pool
    connections are not in autocommit mode unless configured so).
    """

    def __init__(self, connections: list[Any]) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[Any](len(connections))
        for conn in connections:
            self._send.send_nowait(conn)
        self.connections = connections

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        conn = await self._receive.receive()
        try:
            yield conn
        finally:
            await self._send.send(conn)

    async def close(self) -> None:
        for conn in self.connections:
            await conn.close()
        self._send.close()
        self._receive.close()


async def open_tiny_pool(dsn: str, size: int, *, autocommit: bool) -> TinyPool:
    import psycopg

    conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=autocommit) for _ in range(size)]
    return TinyPool(conns)


@pytest.fixture
async def open_pool(pg_dsn: str) -> AsyncIterator[Callable[..., Any]]:
    """``await open_pool(size, autocommit=...)``: a TinyPool on the test server, closed afterwards."""
    pools: list[TinyPool] = []

    async def open_(size: int, *, autocommit: bool) -> TinyPool:
        pools.append(await open_tiny_pool(pg_dsn, size, autocommit=autocommit))
        return pools[-1]

    yield open_
    for pool in pools:
        await pool.close()


LedgerFactory = Callable[..., Any]


@pytest.fixture(params=LEDGER_KINDS)
async def make_ledger(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[LedgerFactory]:
    """Build ledgers of the parametrised kind on one shared store, closing them afterwards.

    Two calls give two ledgers over the same SQLite file or PostgreSQL table, like two workers; for
    memory they are the same instance, since memory cannot be shared.
    """
    kind: str = request.param
    built: list[Any] = []
    if kind.startswith("postgres"):
        dsn: str = request.getfixturevalue("pg_dsn")
        table: str = request.getfixturevalue("pg_table")
        pg_execute(dsn, f'TRUNCATE "{table}"')
    pool = await open_tiny_pool(dsn, 3, autocommit=False) if kind == "postgres-pool" else None
    shared_memory: dict[tuple[Any, ...], InMemoryLedger] = {}

    def make(**options: Any) -> Any:
        options.setdefault("now", clock)
        ledger: Any
        if kind == "memory":
            signature = tuple(sorted((k, repr(v)) for k, v in options.items()))
            ledger = shared_memory.setdefault(signature, InMemoryLedger(**options))
        elif kind == "sqlite":
            ledger = SQLiteLedger(tmp_path / "ledger.sqlite3", **options)
        else:
            source: Any = pool if kind == "postgres-pool" else dsn
            ledger = PostgresLedger(source, table=table, **options)
        built.append(ledger)
        return ledger

    yield make
    for ledger in built:
        await ledger.aclose()
    if pool is not None:
        await pool.close()


@pytest.fixture
def ledger(make_ledger: LedgerFactory) -> Any:
    """One ledger of the parametrised kind with the default lease and the fake clock."""
    return make_ledger()
