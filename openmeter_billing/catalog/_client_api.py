"""``client.catalog``: the catalog the client was built with, and pushing it to OpenMeter."""

from __future__ import annotations

from .._exceptions import ConfigurationError
from .dsl import Catalog
from .push import PushClient, PushPlan, push_catalog

__all__ = ["AsyncCatalogAPI", "require_catalog"]


def require_catalog(catalog: object) -> Catalog:
    """The client's catalog, or a `ConfigurationError` saying how to pass one."""
    if catalog is None:
        raise ConfigurationError(
            "this client has no billing catalog; pass OpenMeterBilling(catalog=...)"
        )
    if not isinstance(catalog, Catalog):
        raise ConfigurationError(
            f"catalog must be built with define_catalog(), got {type(catalog).__name__}"
        )
    return catalog


class AsyncCatalogAPI:
    """The client's billing catalog (``OpenMeterBilling(catalog=...)``).

    Gets the catalog and where to push it (the meters and features resources), not the client.
    """

    def __init__(self, catalog: Catalog | None, target: PushClient) -> None:
        self._catalog = catalog
        self._target = target

    @property
    def definition(self) -> Catalog:
        """The catalog passed at construction; `ConfigurationError` if there is none."""
        return require_catalog(self._catalog)

    async def push(self, *, dry_run: bool = False, archive_missing: bool = False) -> PushPlan:
        """Create missing meters and features in OpenMeter; report unchanged ones and conflicts.

        Nothing is applied when any item conflicts; nothing is archived without
        ``archive_missing=True``. See `openmeter_billing.catalog.push_catalog`.
        """
        return await push_catalog(
            self._target, self.definition, dry_run=dry_run, archive_missing=archive_missing
        )
