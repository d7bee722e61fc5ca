"""Exactly-once ledgers: one delivery of a webhook or top-up does the work, repeats see its result.

Pick the store by deployment: `InMemoryLedger` for tests and one worker, `SQLiteLedger` for every
process on one host, `PostgresLedger` for several hosts. All three satisfy the `Ledger` protocol, so
the billing runtime takes any of them (or your own). See ``docs/idempotency.md``.
"""

from __future__ import annotations

from ._postgres_sql import DEFAULT_POSTGRES_TABLE, postgres_ledger_ddl
from ._protocol import Claim, ClaimState, Ledger, LedgerClaimLostError
from .memory import InMemoryLedger
from .postgres import AsyncConnectionPoolLike, PostgresLedger, migrate_postgres_ledger
from .sqlite import DEFAULT_SQLITE_PATH, SQLiteLedger

__all__ = [
    "DEFAULT_POSTGRES_TABLE",
    "DEFAULT_SQLITE_PATH",
    "AsyncConnectionPoolLike",
    "Claim",
    "ClaimState",
    "InMemoryLedger",
    "Ledger",
    "LedgerClaimLostError",
    "PostgresLedger",
    "SQLiteLedger",
    "migrate_postgres_ledger",
    "postgres_ledger_ddl",
]
