"""Defaults in one place, so they are documented and patchable."""

from __future__ import annotations

import httpx

DEFAULT_BASE_URL = "https://openmeter.cloud"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: A server's Retry-After is honoured up to this many seconds; longer waits fall back to backoff.
MAX_RETRY_AFTER = 60.0
DEFAULT_EVENT_SOURCE = "openmeter-billing"

ENV_TOKEN = "OPENMETER_TOKEN"  # noqa: S105 - the variable's name, not a secret
ENV_ENDPOINT = "OPENMETER_ENDPOINT"

#: Hosts that need an API key: OpenMeter Cloud. Self-hosted OpenMeter has no auth by default.
CLOUD_HOSTS = frozenset({"openmeter.cloud"})
