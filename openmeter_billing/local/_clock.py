"""The controllable clock of Local OpenMeter.

Real OpenMeter reads the wall clock; tests of usage periods, expiries and resets cannot wait a
month. Local OpenMeter's clock is frozen when the emulator is created and only moves when told
to, so every test is reproducible and "a month later" is one call.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local._time import require_aware

__all__ = ["Clock"]


class Clock:
    """A frozen clock that moves only through :meth:`advance` and :meth:`set`.

    Example::

        local = LocalOpenMeter(start=datetime(2025, 1, 1, 12, tzinfo=timezone.utc))
        local.clock.advance(days=31)   # past the monthly reset
    """

    def __init__(self, start: datetime | None = None) -> None:
        # Default: the middle of the current minute. OpenMeter meters per minute and reads round
        # up to the next minute, so a read "now" includes events ingested "now" only when now is
        # not a whole minute; on a real server time has moved on by then, on a frozen clock not.
        initial = start or datetime.now(timezone.utc).replace(second=30, microsecond=0)
        self._now = require_aware(initial, "start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The emulator's current time (aware, UTC)."""
        with self._lock:
            return self._now

    def advance(
        self, *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
    ) -> datetime:
        """Move time forward and return the new time; moving backwards is refused."""
        step = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if step < timedelta(0):
            raise InvalidInputError(
                f"cannot move the clock backwards by {-step}",
                field="advance",
                hint="pass positive amounts; use clock.set() to jump to a specific time",
            )
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (forwards or backwards) and return it.

        Going backwards is allowed for test setup, but state created "in the future" stays as it is.
        """
        moved = require_aware(when, "when")
        with self._lock:
            self._now = moved
            return self._now

    def __repr__(self) -> str:
        return f"Clock(now={self.now().isoformat()})"
