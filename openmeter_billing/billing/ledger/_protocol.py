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
            out (it probably crashed). Its work may have reached the outside world, so check
            OpenMeter before acting again.
    """

    state: ClaimState
    key: str
    token: str | None
    result: Mapping[str, Any] | None
    recovered: bool = False


@runtime_checkable
class Ledger(Protocol):
    """An exactly-once guard: one ``claim`` per key wins until it completes, releases or expires.

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
        """Peek at ``key`` without claiming it; ``None`` when nobody holds or finished it."""
        ...

    async def aclose(self) -> None:
        """Release connections and files held by the ledger."""
        ...
