"""Async resources: one small class per OpenMeter area, reached as ``client.<area>``."""

from .customers import CustomersResource
from .entitlements import AsyncEntitlements, AsyncGrants
from .events import AsyncEvents
from .features import AsyncFeatures
from .meters import AsyncMeters
from .portal import AsyncPortal

__all__ = [
    "AsyncEntitlements",
    "AsyncEvents",
    "AsyncFeatures",
    "AsyncGrants",
    "AsyncMeters",
    "AsyncPortal",
    "CustomersResource",
]
