"""Exact sums of values over time ranges that stay cheap when values arrive out of order.

A meter series needs "the sum of the values with ``low <= time < high``" on every entitlement read.
One prefix-sum array answers that with two bisects but has to be rebuilt (O(n)) whenever an event
lands before the newest one, which backfills and late deliveries do all the time. Here values
live in blocks of at most ``2 * _BLOCK`` sorted entries, each with its own prefix sums, plus prefix
sums over the block totals: an insert touches one block and the block totals after it
(O(sqrt n) in the worst case, O(1) for an append), a range sum is two bisects per level
(O(log n)). Pure code: no state, no clock.
"""

from __future__ import annotations

import bisect
from decimal import Context, Decimal

__all__ = ["RangeSums"]

_BLOCK = 256
_ZERO = Decimal(0)


class RangeSums:
    """Values keyed by an integer time, summed exactly over ``[low, high)``.

    Example::

        sums = RangeSums(Context(prec=60))
        sums.insert(10, Decimal("1.5"))
        sums.insert(5, Decimal(2))            # out of order: no rebuild
        sums.between(0, 11)                   # Decimal("3.5")
    """

    def __init__(self, context: Context) -> None:
        self._ctx = context
        self._times: list[list[int]] = []  # per block, ascending
        self._prefix: list[list[Decimal]] = []  # per block: prefix[i] = sum(values[:i])
        self._values: list[list[Decimal]] = []
        self._last: list[int] = []  # the last (largest) time of each block
        self._before: list[Decimal] = [_ZERO]  # _before[k] = sum of blocks[:k]

    def insert(self, t: int, value: Decimal) -> None:
        """Add ``value`` at time ``t`` (equal times keep their arrival order)."""
        if not self._times:
            self._new_block(0, [t], [value])
            self._totals_from(0)
            return
        k = min(bisect.bisect_right(self._last, t), len(self._times) - 1)
        times, values = self._times[k], self._values[k]
        i = bisect.bisect_right(times, t)
        times.insert(i, t)
        values.insert(i, value)
        self._last[k] = times[-1]
        prefix = self._prefix[k]
        if i == len(values) - 1:
            prefix.append(self._ctx.add(prefix[-1], value))
        else:
            del prefix[i + 1 :]
            for v in values[i:]:
                prefix.append(self._ctx.add(prefix[-1], v))
        if len(times) > 2 * _BLOCK:
            self._split(k)
        self._totals_from(k)

    def between(self, low: int, high: int) -> Decimal:
        """Exact sum of the values with ``low <= time < high``."""
        if high <= low:
            return _ZERO
        return self._ctx.subtract(self._below(high), self._below(low))

    def _below(self, t: int) -> Decimal:
        """Sum of the values with ``time < t``."""
        k = bisect.bisect_left(self._last, t)  # blocks before k end before t
        if k == len(self._times):
            return self._before[k]
        i = bisect.bisect_left(self._times[k], t)
        return self._ctx.add(self._before[k], self._prefix[k][i])

    def _new_block(self, k: int, times: list[int], values: list[Decimal]) -> None:
        prefix = [_ZERO]
        for v in values:
            prefix.append(self._ctx.add(prefix[-1], v))
        self._times.insert(k, times)
        self._values.insert(k, values)
        self._prefix.insert(k, prefix)
        self._last.insert(k, times[-1])
        self._before.insert(k + 1, _ZERO)  # fixed by _totals_from

    def _split(self, k: int) -> None:
        times, values = self._times[k], self._values[k]
        del self._times[k], self._values[k], self._prefix[k], self._last[k], self._before[k + 1]
        self._new_block(k, times[:_BLOCK], values[:_BLOCK])
        self._new_block(k + 1, times[_BLOCK:], values[_BLOCK:])

    def _totals_from(self, k: int) -> None:
        """Recompute the block totals' prefix sums from block ``k`` on."""
        before, prefix, add = self._before, self._prefix, self._ctx.add
        for j in range(k, len(prefix)):
            before[j + 1] = add(before[j], prefix[j][-1])
