"""The ledger contract: what every exactly-once store promises, and the values it hands back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ..._exceptions import OpenMeterBillingError

__all__ = ["Claim", "ClaimState", "Ledger", "LedgerClaimLostError"]

#: ``"new"``: you own the key now and must ``complete`` or ``release`` it.
#: ``"in_progress"``: someone else owns it and its lease has not run out; try again later.
#: ``"done"``: the work was finished before; ``Claim.result`` holds what it produced.
ClaimState = Literal["new", "in_progress", "done"]


class LedgerClaimLostError(OpenMeterBillingError):
    """A ``complete`` or ``release`` came from a token that no longer owns the key.

    This happens when the owner outlived its lease and another worker took the key over (or the key
    was released, or the token was never issued). The work done under the lost claim may now be done
    twice, so the caller should log loudly and let the new owner's outcome stand.

    Attributes:
        key: The idempotency key.
        token: The token that was refused.
    """

    def __init__(self, key: str, token: str, reason: str) -> None:
        self.key = key
        self.token = token
        super().__init__(
            f"ledger claim for key {key!r} is no longer held by this token: {reason} "
            "(the lease ran out and another worker took the key over, or the key was released; "
            "raise the ledger's `lease` above your slowest operation)"
        )


@dataclass(frozen=True)
class Claim:
    """The answer to ``Ledger.claim`` (and ``Ledger.get``): who owns a key and what it produced.

    Attributes:
        state: ``"new"`` (yours now), ``"in_progress"`` (someone else's) or ``"done"``.
        key: The idempotency key.
        token: The owner token when ``state == "new"``; pass it to ``complete``/``release``.
            ``None`` otherwise, so only the owner can finish the work.
        result: The stored result when ``state == "done"``, else ``None``.
        recovered: ``True`` when the claim is ``"new"`` only because an earlier owner's lease ran
            out or it stopped heartbeating (it probably crashed). Its work may have reached the
            outside world, so check OpenMeter before acting again.
        stale: From `Ledger.get` only: ``True`` when an ``"in_progress"`` owner counts as gone
            (lease over, or silent past the heartbeat liveness), so the next ``claim`` takes
            over. Lets waiters poll read-only and write only when taking over can succeed.
    """

    state: ClaimState
    key: str
    token: str | None
    result: Mapping[str, Any] | None
    recovered: bool = False
    stale: bool = False


@runtime_checkable
class Ledger(Protocol):
    """An exactly-once guard: one ``claim`` per key wins until it completes, releases or expires.

    It also keeps small named locks (`acquire`/`renew`/`unlock`) that carry a JSON value from
    one holder to the next: the billing runtime applies one subscription's events one at a time
    under such a lock and remembers there the newest event it applied.

    Webhooks arrive twice, out of order and at the same time; a ledger makes sure one delivery does
    the work and the others see either "in progress" or the finished result::

        claim = await ledger.claim(f"stripe:{event_id}")
        if claim.state == "done":
            return claim.result
        if claim.state == "in_progress":
            raise RetryLater()  # for example answer the webhook with 409/503
        try:
            result = await grant_credits()
        except BaseException:
            await ledger.release(claim.key, claim.token)
            raise
        await ledger.complete(claim.key, claim.token, result)
    """

    async def claim(self, key: str) -> Claim:
        """Try to take ``key``; atomic across every worker sharing the store."""
        ...

    async def complete(self, key: str, token: str, result: Mapping[str, Any]) -> None:
        """Record ``result`` (a JSON-serialisable mapping) and mark ``key`` done for good."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Give ``key`` back after a failure, so a retry can claim it as ``"new"``."""
        ...

    async def get(self, key: str) -> Claim | None:
        """Peek at ``key`` without claiming it; ``None`` when nobody holds or finished it.

        Read-only, so any number of waiters can poll it without contending for a write lock.
        """
        ...

    async def renew(self, key: str, token: str) -> None:
        """Heartbeat: prove the owner of ``key`` (a claim or a lock) is alive.

        Once an owner has renewed, its claim counts as abandoned after ``liveness`` seconds
        without another renew, instead of only after the whole lease: a crashed worker's key
        is recovered within seconds. Owners that never renew keep the lease as their bound.

        Raises:
            LedgerClaimLostError: the key was taken over, released or finished.
        """
        ...

    async def acquire(self, key: str) -> Claim:
        """Try to take the reusable lock ``key`` (never an idempotency key).

        ``"new"``: you hold it; ``Claim.result`` is the data saved by the last `unlock` (or
        ``None``). ``"in_progress"``: another live holder has it. A holder that crashed is taken
        over (``recovered=True``) once its lease or heartbeat ran out. Hold it with `renew` and
        give it back with `unlock`.
        """
        ...

    async def unlock(self, key: str, token: str, data: Mapping[str, Any]) -> None:
        """Give back the lock ``key``, saving ``data`` (JSON) for the next holder.

        Raises:
            LedgerClaimLostError: the lock was taken over meanwhile (the holder outlived it).
        """
        ...

    async def aclose(self) -> None:
        """Release connections and files held by the ledger."""
        ...
