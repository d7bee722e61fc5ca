"""Range sums stay exact whatever order values arrive in (checked against summing by hand)."""

from __future__ import annotations

import random
from decimal import Context, Decimal

import pytest

from openmeter_billing.local.meters.range_sums import RangeSums

EXACT = Context(prec=60)


def _by_hand(entries: list[tuple[int, Decimal]], low: int, high: int) -> Decimal:
    return sum((v for t, v in entries if low <= t < high), Decimal(0))


@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled", "backdated"])
def test_every_range_matches_a_plain_sum(order: str) -> None:
    rng = random.Random(order)
    times = [rng.randrange(0, 3000) for _ in range(2500)]  # ties on purpose, several blocks
    if order == "ascending":
        times.sort()
    elif order == "descending":
        times.sort(reverse=True)
    elif order == "backdated":
        times.sort()
        times = [t - 30 if i % 7 == 0 else t for i, t in enumerate(times)]
    sums = RangeSums(EXACT)
    entries: list[tuple[int, Decimal]] = []
    for n, t in enumerate(times):
        value = Decimal(f"{rng.randrange(-50, 1000)}.{n % 10}")
        sums.insert(t, value)
        entries.append((t, value))
        if n % 250 == 0:
            low, high = sorted(rng.sample(range(-10, 3010), 2))
            assert sums.between(low, high) == _by_hand(entries, low, high)
    for _ in range(200):
        low, high = sorted(rng.sample(range(-10, 3010), 2))
        assert sums.between(low, high) == _by_hand(entries, low, high)
    assert sums.between(-1, 10**9) == _by_hand(entries, -1, 10**9)


def test_empty_and_inverted_ranges_are_zero() -> None:
    sums = RangeSums(EXACT)
    assert sums.between(0, 100) == 0
    sums.insert(5, Decimal("0.1"))
    sums.insert(5, Decimal("0.2"))
    assert sums.between(5, 5) == 0
    assert sums.between(6, 5) == 0
    assert sums.between(5, 6) == Decimal("0.3")  # exact, not 0.30000000000000004
