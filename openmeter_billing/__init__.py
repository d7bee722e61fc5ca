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
    ProviderNotConfiguredError,
    RateLimitError,
    SubjectMismatchError,
    UnprocessableEntityError,
    ValidationIssue,
    WebhookVerificationError,
)
from ._pagination import AsyncPage, AsyncPaginator
from ._sync import SyncOpenMeterBilling, SyncPage
from ._types import NOT_GIVEN, NotGiven
from ._version import __version__
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
    "CustomerIdStore",
    "CustomerProfile",
    "CustomerResolver",
    "EntitlementCache",
    "EntitlementChange",
    "Identity",
    "IdentityResolutionError",
    "InMemoryCustomerIdStore",
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
    "PreconditionFailedError",
    "Problem",
    "ProviderNotConfiguredError",
    "RateLimitError",
    "ResolvedCustomer",
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

# Tracebacks and reprs read `openmeter_billing.NotFoundError`, not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("openmeter_billing._"):
        _obj.__module__ = "openmeter_billing"
del _name, _obj
