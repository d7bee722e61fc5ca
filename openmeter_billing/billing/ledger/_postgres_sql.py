"""The SQL behind `PostgresLedger`, built once per table from checked identifiers.

Kept apart from the ledger so `postgres_ledger_ddl` works without psycopg installed (teams that run
their own migrations only need the text).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._common import MAX_KEY_LENGTH, check_identifier

DEFAULT_POSTGRES_TABLE = "openmeter_billing_ledger"


def quote_table(table: str) -> tuple[str, str]:
    """Return the quoted ``[schema.]table`` and a quoted name for its index."""
    parts = check_identifier("table", table, allow_schema=True)
    quoted = ".".join(f'"{p}"' for p in parts)
    # An index lives in its table's schema, so it takes the bare name (cut to Postgres's 63 bytes).
    index = f'"{(parts[-1] + "_completed_at_idx")[:63]}"'
    return quoted, index


def postgres_ledger_ddl(table: str = DEFAULT_POSTGRES_TABLE) -> str:
    """The SQL that creates the ledger table, for teams that run migrations themselves.

    It is idempotent (``IF NOT EXISTS``), so it can be applied on every deploy. Timestamps are
    seconds since the epoch from the ledger's clock (see `PostgresLedger`), stored as
    ``double precision``; ``result`` is ``jsonb`` so it can be queried.

    Example::

        print(postgres_ledger_ddl("billing.ledger"))  # paste into your migration tool
    """
    quoted, index = quote_table(table)
    return (
        f"CREATE TABLE IF NOT EXISTS {quoted} (\n"
        f"    key text PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND {MAX_KEY_LENGTH}),\n"
        "    state text NOT NULL CHECK (state IN ('in_progress', 'done')),\n"
        "    token text NOT NULL,\n"
        "    claimed_at double precision NOT NULL,\n"
        "    attempts integer NOT NULL DEFAULT 1,\n"
        "    completed_at double precision,\n"
        "    result jsonb,\n"
        "    heartbeat_at double precision\n"
        ");\n"
        # Tables created before heartbeats existed get the column on the next migration.
        f"ALTER TABLE {quoted} ADD COLUMN IF NOT EXISTS heartbeat_at double precision;\n"
        f"CREATE INDEX IF NOT EXISTS {index}\n"
        f"    ON {quoted} (completed_at) WHERE completed_at IS NOT NULL;\n"
    )


@dataclass(frozen=True)
class LedgerSQL:
    """Every statement the ledger runs, for one table."""

    ddl: str
    claim: str
    select: str
    complete: str
    release: str
    purge: str
    renew: str
    acquire: str
    unlock: str

    @classmethod
    def for_table(cls, table: str) -> LedgerSQL:
        """Build the statements for ``table`` (raises `ConfigurationError` for a bad name)."""
        t, _ = quote_table(table)
        # An unfinished row whose owner counts as gone: lease over, or heartbeat gone silent.
        stale = "(l.claimed_at <= %(stale_before)s OR l.heartbeat_at <= %(silent_before)s)"
        return cls(
            ddl=postgres_ledger_ddl(table),
            # `t` is a quoted, checked identifier, so the f-strings below cannot inject SQL (S608).
            # The whole claim is one statement: insert, or take over a stale in-progress row, or
            # (no row returned) leave a live or finished row alone. The unique key
            # serialises rivals.
            claim=(
                f"INSERT INTO {t} AS l (key, state, token, claimed_at, attempts) "  # noqa: S608
                "VALUES (%(key)s, 'in_progress', %(token)s, %(now)s, 1) "
                "ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, "
                "claimed_at = EXCLUDED.claimed_at, attempts = l.attempts + 1, "
                "heartbeat_at = NULL "
                f"WHERE l.state = 'in_progress' AND {stale} "
                "RETURNING l.attempts"
            ),
            select=(
                "SELECT state, token, claimed_at, attempts, completed_at, result::text, "  # noqa: S608
                f"heartbeat_at FROM {t} WHERE key = %(key)s"
            ),
            complete=(
                f"UPDATE {t} SET state = 'done', completed_at = %(now)s, "  # noqa: S608
                "result = %(result)s::jsonb "
                "WHERE key = %(key)s AND token = %(token)s AND state = 'in_progress' RETURNING 1"
            ),
            release=(
                f"DELETE FROM {t} "  # noqa: S608
                "WHERE key = %(key)s AND token = %(token)s AND state = 'in_progress' RETURNING 1"
            ),
            purge=f"DELETE FROM {t} WHERE completed_at <= %(cutoff)s",  # noqa: S608
            renew=(
                f"UPDATE {t} SET heartbeat_at = %(now)s "  # noqa: S608
                "WHERE key = %(key)s AND token = %(token)s AND state = 'in_progress' RETURNING 1"
            ),
            # A lock row is 'done' while free and keeps its saved data in `result`. Taking it
            # over from a gone holder counts attempts up, so `attempts > 1` means recovered.
            acquire=(
                f"INSERT INTO {t} AS l (key, state, token, claimed_at, attempts) "  # noqa: S608
                "VALUES (%(key)s, 'in_progress', %(token)s, %(now)s, 1) "
                "ON CONFLICT (key) DO UPDATE SET state = 'in_progress', token = EXCLUDED.token, "
                "claimed_at = EXCLUDED.claimed_at, completed_at = NULL, heartbeat_at = NULL, "
                "attempts = CASE WHEN l.state = 'done' THEN 1 ELSE l.attempts + 1 END "
                f"WHERE l.state = 'done' OR {stale} "
                "RETURNING l.attempts, l.result::text"
            ),
            unlock=(
                f"UPDATE {t} SET state = 'done', completed_at = %(now)s, "  # noqa: S608
                "result = %(result)s::jsonb, heartbeat_at = NULL "
                "WHERE key = %(key)s AND token = %(token)s AND state = 'in_progress' RETURNING 1"
            ),
        )
