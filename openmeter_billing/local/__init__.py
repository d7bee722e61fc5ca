"""Local OpenMeter: an in-process, stateful emulator of the OpenMeter API.

Use it as the transport of either client, in your tests (see :mod:`openmeter_billing.testing`), in
the demo, or over HTTP with ``openmeter-billing local``. Its clock is frozen until you move it::

    from openmeter_billing.local import LocalOpenMeter

    local = LocalOpenMeter()
    client = local.client()
    local.clock.advance(days=31)
"""

from __future__ import annotations

from openmeter_billing.local._clock import Clock
from openmeter_billing.local._emulator import LocalOpenMeter, Observer
from openmeter_billing.local.faults import Faults

__all__ = ["Clock", "Faults", "LocalOpenMeter", "Observer"]
