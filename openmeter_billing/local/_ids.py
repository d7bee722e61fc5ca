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


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, index = divmod(number, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


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
        return _encode(ms, 10) + _encode(random, 16)
