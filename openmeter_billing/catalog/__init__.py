"""The billing catalog as code: define, validate, compile to OpenMeter and payment providers.

```python
from openmeter_billing.catalog import compile_openmeter_entitlements, load_catalog

catalog = load_catalog("billing/catalog.toml").check()
bodies = compile_openmeter_entitlements(catalog, "pro", {"priority_support_addon": 1})
```

Everything here is pure except `push_catalog`, which talks to OpenMeter.
"""

from __future__ import annotations

from .._exceptions import CatalogError, CatalogIssue
from .compile_openmeter import (
    RESERVED_METADATA_KEYS,
    compile_openmeter_entitlements,
    compile_openmeter_features,
    compile_openmeter_meters,
    compile_openmeter_topup_grant,
    topup_feature_key,
)
from .compile_providers import (
    PROVIDERS,
    CompileWarning,
    PaymentCatalog,
    PaymentPrice,
    PaymentProduct,
    compile_payment_catalog,
)
from .dsl import (
    AddOn,
    BooleanEntitlement,
    Catalog,
    Entitlement,
    Expiration,
    Feature,
    Meter,
    MeteredEntitlement,
    Plan,
    Price,
    Rollover,
    StaticEntitlement,
    TopUp,
    TopUpGrant,
    define_catalog,
)
from .loader import load_catalog
from .push import FieldDifference, PushAction, PushPlan, push_catalog
from .schema import catalog_json_schema
from .validate import validate_catalog

__all__ = [
    "PROVIDERS",
    "RESERVED_METADATA_KEYS",
    "AddOn",
    "BooleanEntitlement",
    "Catalog",
    "CatalogError",
    "CatalogIssue",
    "CompileWarning",
    "Entitlement",
    "Expiration",
    "Feature",
    "FieldDifference",
    "Meter",
    "MeteredEntitlement",
    "PaymentCatalog",
    "PaymentPrice",
    "PaymentProduct",
    "Plan",
    "Price",
    "PushAction",
    "PushPlan",
    "Rollover",
    "StaticEntitlement",
    "TopUp",
    "TopUpGrant",
    "catalog_json_schema",
    "compile_openmeter_entitlements",
    "compile_openmeter_features",
    "compile_openmeter_meters",
    "compile_openmeter_topup_grant",
    "compile_payment_catalog",
    "define_catalog",
    "load_catalog",
    "push_catalog",
    "topup_feature_key",
    "validate_catalog",
]
