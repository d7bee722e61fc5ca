"""``client.catalog``: the catalog the client was built with, and pushing it to OpenMeter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import ConfigurationError
from .dsl import Catalog
from .push import PushPlan, push_catalog

if TYPE_CHECKING:
    from .._client import OpenMeterBilling

__all__ = ["AsyncCatalogAPI"]


class AsyncCatalogAPI:
    """The client's billing catalog (``OpenMeterBilling(catalog=...)``)."""

    def __init__(self, client: OpenMeterBilling) -> None:
        self._client = client

    @property
    def definition(self) -> Catalog:
        """The catalog passed at construction; `ConfigurationError` if there is none."""
        catalog = self._client.catalog_definition
        if catalog is None:
            raise ConfigurationError(
                "this client has no billing catalog; pass OpenMeterBilling(catalog=...)"
            )
        if not isinstance(catalog, Catalog):
            raise ConfigurationError(
                f"catalog must be built with define_catalog(), got {type(catalog).__name__}"
            )
        return catalog

    async def push(self, *, dry_run: bool = False, archive_missing: bool = False) -> PushPlan:
        """Create missing meters and features in OpenMeter; report unchanged ones and conflicts.

        Nothing is applied when any item conflicts; nothing is archived without
        ``archive_missing=True``. See `openmeter_billing.catalog.push_catalog`.
        """
        return await push_catalog(
            self._client, self.definition, dry_run=dry_run, archive_missing=archive_missing
        )
