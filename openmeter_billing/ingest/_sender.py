"""Deliver one batch: the same bytes on every attempt, backoff with jitter, 400s bisected.

OpenMeter validates a batch as a whole, so one bad event fails all of them with a 400. The batch
is split in halves until the bad event stands alone; it becomes a `DeadLetter` with the server's
reason and the rest is delivered. Every other failure is transient: retried with exponential
backoff (``Retry-After`` honoured, capped at ``max_backoff``), forever in durable mode.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from .._exceptions import APIError, APIStatusError
from .._http import HTTPCore, parse_retry_after
from ._queue import Item
from .options import Counters, DeadLetter, IngestOptions

__all__ = ["Outcome", "deliver", "encode_batch"]

logger = logging.getLogger("openmeter_billing")

EVENTS = "/api/v1/events"
BATCH = "application/cloudevents-batch+json"
#: Statuses that mean "this content is refused", never "try later".
_REJECTED = frozenset({400, 413, 422})


def encode_batch(items: Sequence[Item]) -> bytes:
    """A JSON array of already-encoded events."""
    return b"[" + b",".join(body for _, body in items) + b"]"


@dataclass
class Outcome:
    """What became of a batch: delivered, dead-lettered, or given up on (memory mode only)."""

    delivered: list[str] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    given_up: list[Item] = field(default_factory=list)


@dataclass
class _Policy:
    options: IngestOptions
    durable: bool
    counters: Counters
    renew: Callable[[], object] | None = None

    @property
    def max_attempts(self) -> int | None:
        return None if self.durable else self.options.max_attempts


async def deliver(
    http: HTTPCore,
    items: list[Item],
    options: IngestOptions,
    counters: Counters,
    *,
    durable: bool,
    renew: Callable[[], object] | None = None,
    outcome: Outcome | None = None,
) -> Outcome:
    """Send ``items``; ``outcome`` (if given) fills in as parts finish, even if cancelled."""
    policy = _Policy(options, durable, counters, renew)
    result = outcome if outcome is not None else Outcome()
    parts = [items]
    while parts:
        part = parts.pop()
        rejected = await _send_with_retries(http, part, policy)
        if rejected is None:
            result.delivered.extend(event_id for event_id, _ in part)
        elif isinstance(rejected, _GaveUp):
            result.given_up.extend(part)
        elif len(part) > 1:
            half = len(part) // 2
            parts.extend((part[half:], part[:half]))  # first half is sent first
        else:
            result.dead.append(_dead_letter(part[0], rejected))
    return result


class _GaveUp(Exception):
    pass


_GAVE_UP = _GaveUp()


async def _send_with_retries(
    http: HTTPCore, part: list[Item], policy: _Policy
) -> APIStatusError | _GaveUp | None:
    """None when accepted; the 400-class error when refused; `_GAVE_UP` after the last attempt."""
    content = encode_batch(part)
    attempt = 0
    while True:
        try:
            await http.request(
                "POST", EVENTS, content=content, content_type=BATCH, idempotent=True, max_retries=0
            )
            return None
        except APIStatusError as exc:
            if exc.status_code in _REJECTED:
                return exc
            failure: APIError = exc
            hinted = parse_retry_after(exc.response.headers)
        except APIError as exc:  # connection failures and timeouts
            failure, hinted = exc, None
        attempt += 1
        _report(policy, part, failure)
        limit = policy.max_attempts
        if limit is not None and attempt >= limit:
            logger.error(
                "giving up on %d events after %d attempts: %s", len(part), attempt, failure
            )
            return _GAVE_UP
        policy.counters.add("retried", len(part))
        if policy.renew is not None:
            await anyio.to_thread.run_sync(policy.renew)
        await anyio.sleep(_delay(policy.options, attempt - 1, hinted))


def _delay(options: IngestOptions, attempt: int, hinted: float | None) -> float:
    if hinted is not None:
        return min(hinted, options.max_backoff)
    base = min(options.initial_backoff * 2.0**attempt, options.max_backoff)
    return base * (1.0 - 0.25 * random.random())  # noqa: S311 - jitter, not crypto


def _report(policy: _Policy, part: list[Item], failure: BaseException) -> None:
    logger.warning("sending %d events failed (%s); will retry", len(part), failure)
    callback = policy.options.on_error
    if callback is not None:
        try:
            callback([event_id for event_id, _ in part], failure)
        except Exception:
            logger.exception("the on_error callback raised")


def _dead_letter(item: Item, error: APIStatusError) -> DeadLetter:
    reason = error.problem.detail or error.problem.title or str(error)
    logger.error("OpenMeter rejected event %s (HTTP %d): %s", item[0], error.status_code, reason)
    return DeadLetter(item[0], item[1], error.status_code, reason)
