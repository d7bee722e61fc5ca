"""Backfill and migration: bring an existing user base and its subscriptions into OpenMeter.

``client.backfill.customers(principals)`` and ``client.backfill.subscriptions(events)`` run with
bounded concurrency under a request-rate limit, retry transient failures, report progress and
a final tally, and resume from a `StateFile`. The ``openmeter-billing backfill`` command wraps
them. See ``docs/backfill.md``.
"""

from ._api import DEFAULT_RATE_LIMIT, AsyncBackfill
from ._report import BackfillFailure, BackfillProgress, BackfillReport, Outcome
from ._state import Checkpoint, StateFile

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "AsyncBackfill",
    "BackfillFailure",
    "BackfillProgress",
    "BackfillReport",
    "Checkpoint",
    "Outcome",
    "StateFile",
]
