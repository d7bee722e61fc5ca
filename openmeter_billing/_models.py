"""Base classes for the models that mirror OpenMeter's spec.

Attributes are snake_case; on the wire they use the spec's camelCase names (aliases). Response
models allow unknown fields so a newer server never breaks an older client; request models forbid
them so a typo fails before the network.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from ._validate import check_json_value

__all__ = ["RequestModel", "ResponseModel"]


class ResponseModel(BaseModel):
    """A model parsed from an OpenMeter response: lenient about fields it does not know."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """The model as JSON-ready data with the API's field names."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class RequestModel(BaseModel):
    """A model sent to OpenMeter: strict, so bad input fails before any network call."""

    # allow_inf_nan=False: JSON has no NaN or infinity; they would reach OpenMeter as null or as
    # the invalid token Infinity.
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        allow_inf_nan=False,
    )

    def to_body(self) -> dict[str, Any]:
        """The JSON body to send, with the API's field names and unset fields left out.

        Free-form fields (``annotations``) are checked too: JSON mode would turn NaN into null.
        """
        for name, value in self.model_dump(by_alias=True, exclude_none=True).items():
            check_json_value(value, name)
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
