"""Find the catalog item a provider's product, price or plan id stands for (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..catalog.dsl import Catalog
from ..catalog.validate import price_lookup_key

__all__ = ["CatalogIndex", "ItemRef"]

Kind = Literal["plan", "addon", "topup"]


@dataclass(frozen=True)
class ItemRef:
    """A catalog item: its section and its key (what `BillingEvent.plan` and top-ups take)."""

    kind: Kind
    key: str


class CatalogIndex:
    """Provider ids (item and price ``provider_ids``, price lookup keys, item keys) -> item."""

    def __init__(self, catalog: Catalog | None, provider: str) -> None:
        self._by_id: dict[str, ItemRef] = {}
        if catalog is None:
            return
        sections: tuple[tuple[Kind, dict[str, object]], ...] = (
            ("plan", dict(catalog.plans)),
            ("addon", dict(catalog.addons)),
            ("topup", dict(catalog.topups)),
        )
        for kind, items in sections:
            for name, item in items.items():
                key = getattr(item, "key", None) or name
                ref = ItemRef(kind, key)
                ids = [getattr(item, "provider_ids", {}).get(provider)]
                for price_name, price in getattr(item, "prices", {}).items():
                    ids.append(price.provider_ids.get(provider))
                    ids.append(price_lookup_key(key, price_name, price))
                for ident in ids:
                    if ident:
                        self._by_id.setdefault(ident, ref)
                # Item keys last: an explicit provider id always wins over a key collision.
                self._fallback_key(key, ref)

    def _fallback_key(self, key: str, ref: ItemRef) -> None:
        self._by_id.setdefault(f"key:{key}", ref)

    @property
    def empty(self) -> bool:
        """No catalog (plans cannot be named; subscription events keep entitlements as they are)."""
        return not self._by_id

    def find(self, *ids: object, kind: Kind | None = None) -> ItemRef | None:
        """The first item any of ``ids`` names (provider ids first, then catalog keys)."""
        for ident in ids:
            if isinstance(ident, str) and ident:
                ref = self._by_id.get(ident) or self._by_id.get(f"key:{ident}")
                if ref is not None and (kind is None or ref.kind == kind):
                    return ref
        return None


_CACHE: dict[tuple[int, str], tuple[Catalog | None, CatalogIndex]] = {}


def index_for(catalog: Catalog | None, provider: str) -> CatalogIndex:
    """A cached index: catalogs are frozen, so one per catalog and provider is enough.

    Keyed by identity; the entry keeps the catalog alive so its id cannot be reused.
    """
    key = (id(catalog), provider)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is catalog:
        return hit[1]
    if len(_CACHE) > 64:
        _CACHE.clear()
    index = CatalogIndex(catalog, provider)
    _CACHE[key] = (catalog, index)
    return index
