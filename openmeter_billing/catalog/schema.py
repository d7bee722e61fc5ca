"""JSON Schema of the catalog file format, for editors and CI linters.

Point a catalog file at it with ``"$schema": "./catalog.schema.json"`` after
``openmeter-billing catalog schema > catalog.schema.json``. The schema checks shape only (field
names and types); the rules (references, currencies, amounts) are `validate_catalog`'s job.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from .dsl import Catalog

__all__ = ["SCHEMA_DIALECT", "catalog_json_schema"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def catalog_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a catalog file; a fresh copy on each call."""
    return copy.deepcopy(_build())


@cache
def _build() -> dict[str, Any]:
    schema = Catalog.model_json_schema(mode="validation")
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "openmeter-billing catalog"
    schema["description"] = (
        "Meters, features, plans, add-ons and top-ups. Items are keyed by catalog name; "
        "references use those names."
    )
    schema["properties"]["$schema"] = {"type": "string", "description": "Schema of this file."}
    defs = schema["$defs"]
    shorthand = [
        {"type": "boolean", "description": "boolean entitlement (enabled or not)"},
        {"type": "number", "description": "metered entitlement: the amount per period"},
        {"type": "string", "description": 'static entitlement: config {"value": <string>}'},
    ]
    typed = [
        {"$ref": "#/$defs/MeteredEntitlement"},
        {"$ref": "#/$defs/BooleanEntitlement"},
        {"$ref": "#/$defs/StaticEntitlement"},
    ]
    entitlement = {"anyOf": shorthand + typed}
    for model in ("Plan", "AddOn"):
        defs[model]["properties"]["entitlements"]["additionalProperties"] = entitlement
    # In files a static config may be a plain string, which becomes {"value": <string>}.
    defs["StaticEntitlement"]["properties"]["config"] = {
        "anyOf": [{"type": "object"}, {"type": "string"}, {"type": "null"}],
        "default": None,
    }
    return schema
