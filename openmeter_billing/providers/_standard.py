"""Shared verification for the Standard Webhooks family (Polar, Dodo) and Svix (Autumn)."""

from __future__ import annotations

from typing import ClassVar

from .._exceptions import ConfigurationError
from ._adapter import ProviderAdapter
from .signatures import (
    HeaderMap,
    hmac_keys,
    require_header,
    standard_webhooks_keys,
    verify_standard_webhooks,
)

__all__ = ["StandardWebhooksAdapter"]


class StandardWebhooksAdapter(ProviderAdapter):
    """``<prefix>-id``, ``-timestamp`` and ``-signature`` headers; base64 HMAC of ``id.ts.body``."""

    header_prefix: ClassVar[str] = "webhook"
    #: Polar's secrets made before 2026-09-08 key the HMAC with the secret's own UTF-8 bytes.
    legacy_keys: ClassVar[bool] = False

    def _prepare(self) -> None:
        keys: list[bytes] = []
        for secret in self._secret_values():
            try:
                keys.extend(standard_webhooks_keys(secret, legacy=self.legacy_keys))
            except ValueError:
                raise ConfigurationError(
                    f"{self.name}: a webhook secret is not of the form 'whsec_<base64>' "
                    "(copy it exactly from the provider's dashboard)"
                ) from None
        self._keys = hmac_keys(keys)

    def _check_signature(self, headers: HeaderMap, body: bytes, now: float) -> int:
        prefix = self.header_prefix
        message_id = require_header(headers, f"{prefix}-id", self.name)
        timestamp = require_header(headers, f"{prefix}-timestamp", self.name)
        signature = require_header(headers, f"{prefix}-signature", self.name)
        return verify_standard_webhooks(
            message_id,
            timestamp,
            signature,
            body,
            self._keys,
            tolerance=self.tolerance,
            now=now,
            provider=self.name,
        )
