"""What every ledger shares: argument checks, the JSON codec and the claim rules on a stored row.

The in-memory and SQLite ledgers keep the same row shape and apply `decide_claim`/`check_owner`
to it inside their lock or transaction, so the two cannot drift apart. PostgreSQL does the same
in SQL.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from typing_extensions import Self

from ..._exceptions import ConfigurationError, InvalidInputError
from ._protocol import Claim, LedgerClaimLostError

MAX_KEY_LENGTH = 512
DEFAULT_LEASE = 300.0
#: Seconds a heartbeating owner may stay silent before its claim counts as abandoned.
DEFAULT_LIVENESS = 5.0

Clock = Callable[[], float]
RowState = Literal["in_progress", "done"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class Row:
    """One stored key: who holds it, since when, and what it produced."""

    state: RowState
    token: str
    claimed_at: float
    attempts: int = 1
    completed_at: float | None = None
    result_json: str | None = None
    #: Last `renew` by the owner; ``None`` for owners that never renew (only the lease bounds them).
    heartbeat_at: float | None = None


def check_key(key: object) -> str:
    """Return ``key`` if it is a string of 1..512 characters, else raise `InvalidInputError`."""
    if not isinstance(key, str):
        raise InvalidInputError(
            f"must be a string, got {type(key).__name__} {key!r}",
            field="key",
            hint="derive it from the provider's event or payment id, e.g. 'stripe:evt_123'",
        )
    if not _storable_text(key):
        raise InvalidInputError(
            f"contains NUL or a lone surrogate, which databases cannot store: {key!r}",
            field="key",
            hint="use printable text such as 'stripe:evt_123'",
        )
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        shown = key if len(key) <= 40 else key[:40] + "..."
        raise InvalidInputError(
            f"must be 1..{MAX_KEY_LENGTH} characters, got {len(key)} ({shown!r})",
            field="key",
            hint="hash long keys, e.g. hashlib.sha256(key.encode()).hexdigest()",
        )
    return key


def check_token(token: object) -> str:
    """Return ``token`` if it looks like one `claim` could have issued."""
    if not isinstance(token, str) or not token:
        raise InvalidInputError(
            f"must be the non-empty token of a 'new' claim, got {token!r}",
            field="token",
            hint="pass claim.token from the claim that returned state='new'",
        )
    return token


def check_seconds(name: str, value: object, *, optional: bool = False) -> float | None:
    """Validate a lease or retention: a positive, finite number of seconds."""
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{name}: must be a positive number of seconds, got {value!r}"
            + (" (or None to keep results forever)" if optional else "")
        )
    return float(value)


def check_identifier(name: str, value: object, *, allow_schema: bool = False) -> tuple[str, ...]:
    """Split a table name into SQL identifiers, refusing anything that could smuggle SQL in."""
    parts = value.split(".") if isinstance(value, str) else [value]
    if (
        not isinstance(value, str)
        or len(parts) > (2 if allow_schema else 1)
        or not all(isinstance(p, str) and _IDENTIFIER.fullmatch(p) for p in parts)
    ):
        shape = "[schema.]name" if allow_schema else "name"
        raise ConfigurationError(
            f"{name}: must be a SQL identifier of the form {shape} (letters, digits and '_', "
            f"at most 63 characters each, not starting with a digit), got {value!r}"
        )
    return tuple(str(p) for p in parts)


def new_token() -> str:
    """An unguessable owner token, so a stray caller cannot finish someone else's claim."""
    return secrets.token_hex(16)


def encode_result(result: object) -> str:
    """Serialise a result to compact JSON, or raise `InvalidInputError` naming the bad part.

    Only what survives a JSON round trip unchanged is accepted (string keys, finite numbers), so
    every ledger returns exactly what was stored, whether it kept it in memory or in a database.
    """
    if not isinstance(result, Mapping):
        raise InvalidInputError(
            f"must be a mapping, got {type(result).__name__}",
            field="result",
            hint="store a dict such as {'grant_id': grant.id}",
        )
    _check_json(result, "result")
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _check_json(value: object, path: str) -> None:
    """Walk ``value`` and reject what JSON cannot carry faithfully."""
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, str):
        if _storable_text(value):
            return
        reason = f"{value!r} contains NUL or a lone surrogate, which databases cannot store"
    elif isinstance(value, float):
        if math.isfinite(value):
            return
        reason = f"{value!r} is not a finite number"
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str) or not _storable_text(k):
                raise InvalidInputError(
                    f"key {k!r} at {path} must be a string without NUL or lone surrogates",
                    field="result",
                    hint="convert mapping keys to str before storing",
                )
            _check_json(v, f"{path}[{k!r}]")
        return
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    else:
        reason = f"{type(value).__name__} {value!r} is not JSON-serialisable"
    raise InvalidInputError(
        f"{path}: {reason}",
        field="result",
        hint="store plain JSON values (str, int, float, bool, None, list, dict), "
        "e.g. ids and ISO timestamps as strings",
    )


def _storable_text(text: str) -> bool:
    """True when SQLite and PostgreSQL both store ``text`` unchanged (valid UTF-8, no NUL)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_result(text: str | None) -> dict[str, Any] | None:
    """Turn stored JSON back into a fresh dict (callers may mutate it safely)."""
    if text is None:
        return None
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def is_stale(row: Row, now: float, lease: float, liveness: float) -> bool:
    """Whether an unfinished ``row``'s owner counts as gone.

    An owner that renews (heartbeats) is gone once it has been silent for ``liveness`` seconds;
    one that never renewed cannot be checked, so only the ``lease`` bounds it.
    """
    if now - row.claimed_at >= lease:
        return True
    return row.heartbeat_at is not None and now - row.heartbeat_at >= liveness


def decide_claim(
    key: str, row: Row | None, now: float, lease: float, liveness: float = DEFAULT_LIVENESS
) -> tuple[Claim, Row | None]:
    """Apply the claim rules to the stored ``row``: the answer, and the row to write (if any)."""
    if row is None:
        token = new_token()
        return Claim("new", key, token, None), Row("in_progress", token, now)
    if row.state == "done":
        return Claim("done", key, None, decode_result(row.result_json)), None
    if not is_stale(row, now, lease, liveness):
        return Claim("in_progress", key, None, None), None
    # The owner outlived its lease or stopped heartbeating: most likely it crashed.
    token = new_token()
    taken = Row("in_progress", token, now, attempts=row.attempts + 1)
    return Claim("new", key, token, None, recovered=True), taken


def decide_lock(
    key: str, row: Row | None, now: float, lease: float, liveness: float
) -> tuple[Claim, Row | None]:
    """The lock rules: a free (``done``) or abandoned lock row is taken, keeping its saved data."""
    if row is not None and row.state == "in_progress" and not is_stale(row, now, lease, liveness):
        return Claim("in_progress", key, None, None), None
    token = new_token()
    recovered = row is not None and row.state == "in_progress"
    attempts = row.attempts + 1 if row is not None and recovered else 1
    kept = row.result_json if row is not None else None
    taken = Row("in_progress", token, now, attempts=attempts, result_json=kept)
    return Claim("new", key, token, decode_result(kept), recovered=recovered), taken


def row_to_claim(
    key: str,
    row: Row | None,
    now: float | None = None,
    lease: float = DEFAULT_LEASE,
    liveness: float = DEFAULT_LIVENESS,
) -> Claim | None:
    """What `Ledger.get` reports for a stored row (never a token: peeking grants no ownership)."""
    if row is None:
        return None
    if row.state == "done":
        return Claim("done", key, None, decode_result(row.result_json))
    stale = now is not None and is_stale(row, now, lease, liveness)
    return Claim("in_progress", key, None, None, stale=stale)


def check_owner(key: str, token: str, row: Row | None, action: str) -> bool:
    """Check that ``token`` owns ``row``; True when it already completed it (a repeated call).

    Raises:
        LedgerClaimLostError: the key was taken over, released or never claimed with this token.
    """
    if row is None:
        raise LedgerClaimLostError(key, token, f"cannot {action}: the key is not claimed")
    if row.token != token:
        raise LedgerClaimLostError(key, token, f"cannot {action}: another token owns the key")
    return row.state == "done"


def check_live_owner(key: str, token: str, row: Row | None, action: str) -> Row:
    """Check that ``token`` holds ``row`` unfinished (for `renew` and `unlock`)."""
    if check_owner(key, token, row, action):
        raise LedgerClaimLostError(key, token, f"cannot {action}: the key is already done")
    assert row is not None
    return row


class LedgerBase:
    """Shared plumbing: settings checks and ``async with`` support."""

    def __init__(
        self,
        *,
        lease: float,
        retention: float | None,
        now: Clock,
        liveness: float = DEFAULT_LIVENESS,
    ) -> None:
        checked_lease = check_seconds("lease", lease)
        assert checked_lease is not None  # not optional, so it was checked
        self.lease: float = checked_lease
        checked_liveness = check_seconds("liveness", liveness)
        assert checked_liveness is not None
        self.liveness: float = checked_liveness
        self.retention: float | None = check_seconds("retention", retention, optional=True)
        if not callable(now):
            raise ConfigurationError(f"now: must be a callable returning seconds, got {now!r}")
        self._now = now

    def _peek(self, key: str, row: Row | None) -> Claim | None:
        """`row_to_claim` under this ledger's clock, lease and liveness."""
        return row_to_claim(key, row, self._now(), self.lease, self.liveness)

    async def aclose(self) -> None:
        """Release resources; subclasses extend this."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
