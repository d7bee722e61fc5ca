"""openmeter-billing: bill with OpenMeter from Python.

```python
from openmeter_billing import OpenMeterBilling, User

async with OpenMeterBilling(api_key="om_...") as client:
    await client.customers.sync(User(id="42", email="ada@example.com"))
    await client.events.ingest(type="ai-tokens", customer=User(id="42"), data={"tokens": 850})
    if await client.entitlements.has(User(id="42"), "ai_tokens"):
        ...
```
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._client import OpenMeterBilling
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CatalogError,
    CatalogIssue,
    ConfigurationError,
    ConflictError,
    IdentityResolutionError,
    InsufficientBalanceError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    OpenMeterBillingError,
    OperationInProgressError,
    PermissionDeniedError,
    PreconditionFailedError,
    Problem,
    ProviderAPIError,
    ProviderNotConfiguredError,
    ProviderUnsupportedError,
    RateLimitError,
    SubjectMismatchError,
    UnprocessableEntityError,
    ValidationIssue,
    WebhookVerificationError,
)
from ._types import NOT_GIVEN, NotGiven
from ._version import __version__

# Names whose modules load on first access (PEP 562): the sync facade, the billing workflows and
# the identity models pull in every resource and pydantic model, which a worker that only
# imports the package (or only the async client) should not pay for at start-up.
_LAZY: dict[str, str] = {
    "AsyncPage": "._pagination",
    "AsyncPaginator": "._pagination",
    "SyncOpenMeterBilling": "._sync",
    "SyncPage": "._sync",
    "BillingOptions": ".billing.engine",
    "ApplyResult": ".billing.events",
    "BillingEvent": ".billing.events",
    "EntitlementChange": ".billing.events",
    "TopupResult": ".billing.topups",
    "CustomerIdStore": ".identity",
    "CustomerProfile": ".identity",
    "CustomerResolver": ".identity",
    "Identity": ".identity",
    "InMemoryCustomerIdStore": ".identity",
    "Organization": ".identity",
    "OrganizationResolver": ".identity",
    "ResolvedCustomer": ".identity",
    "Team": ".identity",
    "TeamResolver": ".identity",
    "User": ".identity",
    "UserResolver": ".identity",
    "EntitlementCache": ".cache",
    "DeadLetter": ".ingest",
    "IngestOptions": ".ingest",
    "IngestStats": ".ingest",
    "PostgresOutbox": ".ingest",
    "QueueFullError": ".ingest",
    "ReconcileResult": ".ingest",
    "SQLiteOutbox": ".ingest",
    "CustomerDeletion": ".resources.customers",
}

if TYPE_CHECKING:
    from ._pagination import AsyncPage, AsyncPaginator
    from ._sync import SyncOpenMeterBilling, SyncPage
    from .billing.engine import BillingOptions
    from .billing.events import ApplyResult, BillingEvent, EntitlementChange
    from .billing.topups import TopupResult
    from .cache import EntitlementCache
    from .identity import (
        CustomerIdStore,
        CustomerProfile,
        CustomerResolver,
        Identity,
        InMemoryCustomerIdStore,
        Organization,
        OrganizationResolver,
        ResolvedCustomer,
        Team,
        TeamResolver,
        User,
        UserResolver,
    )
    from .ingest import (
        DeadLetter,
        IngestOptions,
        IngestStats,
        PostgresOutbox,
        QueueFullError,
        ReconcileResult,
        SQLiteOutbox,
    )
    from .resources.customers import CustomerDeletion


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'openmeter_billing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    _public(value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _public(obj: object) -> None:
    """Tracebacks and reprs read `openmeter_billing.NotFoundError`, not the private module."""
    if isinstance(obj, type) and obj.__module__.startswith("openmeter_billing._"):
        obj.__module__ = "openmeter_billing"


__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "ApplyResult",
    "AsyncPage",
    "AsyncPaginator",
    "AuthenticationError",
    "BadRequestError",
    "BillingEvent",
    "BillingOptions",
    "CatalogError",
    "CatalogIssue",
    "ConfigurationError",
    "ConflictError",
    "CustomerDeletion",
    "CustomerIdStore",
    "CustomerProfile",
    "CustomerResolver",
    "DeadLetter",
    "EntitlementCache",
    "EntitlementChange",
    "Identity",
    "IdentityResolutionError",
    "InMemoryCustomerIdStore",
    "IngestOptions",
    "IngestStats",
    "InsufficientBalanceError",
    "InternalServerError",
    "InvalidInputError",
    "NotFoundError",
    "NotGiven",
    "OpenMeterBilling",
    "OpenMeterBillingError",
    "OperationInProgressError",
    "Organization",
    "OrganizationResolver",
    "PermissionDeniedError",
    "PostgresOutbox",
    "PreconditionFailedError",
    "Problem",
    "ProviderAPIError",
    "ProviderNotConfiguredError",
    "ProviderUnsupportedError",
    "QueueFullError",
    "RateLimitError",
    "ReconcileResult",
    "ResolvedCustomer",
    "SQLiteOutbox",
    "SubjectMismatchError",
    "SyncOpenMeterBilling",
    "SyncPage",
    "Team",
    "TeamResolver",
    "TopupResult",
    "UnprocessableEntityError",
    "User",
    "UserResolver",
    "ValidationIssue",
    "WebhookVerificationError",
    "__version__",
]

for _name in __all__:
    if _name not in _LAZY:
        _public(globals()[_name])
del _name
