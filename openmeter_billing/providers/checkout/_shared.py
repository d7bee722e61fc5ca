"""Small helpers the per-provider checkout modules share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._exceptions import InvalidInputError, ProviderAPIError
from .._api import ProviderAPI
from ._plan import CheckoutLink, CheckoutPlan

__all__ = ["link", "need_customer_id", "required"]


def required(api: ProviderAPI, answer: Mapping[str, Any], name: str) -> str:
    """``answer[name]`` as a string, or a `ProviderAPIError` saying the answer lacks it."""
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderAPIError(
            api.provider, 200, f"the answer has no {name!r}", method="POST", url=api.base_url
        )
    return value


def link(plan: CheckoutPlan, url: str, session_id: object) -> CheckoutLink:
    return CheckoutLink(
        url,
        session_id if isinstance(session_id, str) else None,
        plan.provider,
        plan.customer_key,
        plan.mode,
        plan.idempotency_key,
    )


def need_customer_id(provider: str, value: str | None, example: str) -> str:
    if not value:
        raise InvalidInputError(
            f"{provider}'s portal needs the provider's customer id",
            field="provider_customer_id",
            hint=f"pass provider_customer_id='{example}' (webhook billing events carry it in "
            "metadata['provider_customer_id'])",
        )
    return value
