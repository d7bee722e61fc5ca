"""ULID identifiers, the id format of every OpenMeter entity.

Ids are time-ordered (48-bit millisecond timestamp from the emulator clock) and monotonic within a
millisecond, so sorting by id matches creation order, as on the real server.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import datetime

__all__ = ["ULID_PATTERN", "IdFactory", "is_ulid"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")


def is_ulid(value: str) -> bool:
    """Whether ``value`` has OpenMeter's ULID shape (path params are ids when they do)."""
    return ULID_PATTERN.match(value) is not None


# Every pair of Crockford base32 digits: a 26-digit ULID is 13 table lookups.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = tuple(range(120, -1, -10))


def _ulid_text(ms: int, random: int) -> str:
    """48 bits of milliseconds and 80 random bits as 26 digits (the top two bits are zero)."""
    number = (ms << 80) | random
    return "".join([_PAIRS[(number >> shift) & 1023] for shift in _SHIFTS])


class IdFactory:
    """Makes monotonic ULIDs; one per emulator so ids never depend on global state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self, at: datetime) -> str:
        """A fresh ULID stamped with ``at`` (strictly greater than the previous one)."""
        ms = max(int(at.timestamp() * 1000), 0)
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                self._last_random += 1
            else:
                self._last_ms = ms
                self._last_random = int.from_bytes(os.urandom(10), "big") >> 1
            random = self._last_random
        return _ulid_text(ms, random)
