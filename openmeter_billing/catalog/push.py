"""Push a catalog's meters and features to OpenMeter, like ``terraform apply``.

`push_catalog` first builds a plan: for each meter and feature ``create`` (missing in
OpenMeter), ``unchanged`` (already there, same definition) or ``conflict`` (there, but different:
the differing fields are listed), plus ``archive`` for features this library created earlier that
the catalog no longer has (only with ``archive_missing=True``). Then, unless ``dry_run``, it
applies the plan. A plan with any conflict changes nothing: OpenMeter cannot update a meter's
aggregation or a feature's meter in place, so a human decides (rename the key, or archive the
old feature by hand). Pushing twice is safe: the second push is all ``unchanged``.

Meters are never deleted and features are only archived (OpenMeter's ``DELETE`` archives).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .compile_openmeter import MANAGED_KEY, compile_openmeter_features, compile_openmeter_meters
from .dsl import Catalog

__all__ = ["FieldDifference", "PushAction", "PushClient", "PushPlan", "push_catalog"]

logger = logging.getLogger("openmeter_billing")

Action = Literal["create", "unchanged", "conflict", "archive"]


class _MetersAPI(Protocol):
    def list(self) -> Awaitable[Sequence[Any]]:
        """List the items."""

    async def create(
        self,
        *,
        slug: str,
        event_type: str,
        aggregation: Any,
        value_property: str | None = ...,
        group_by: Mapping[str, str] | None = ...,
        name: str | None = ...,
        description: str | None = ...,
        metadata: Mapping[str, str] | None = ...,
    ) -> Any:
        """Create one item."""


class _FeaturesAPI(Protocol):
    def list(self, *, include_archived: bool | None = ...) -> AsyncIterable[Any]:
        """List the items."""

    async def create(
        self,
        *,
        key: str,
        name: str,
        meter_slug: str | None = ...,
        meter_group_by_filters: Mapping[str, str] | None = ...,
        metadata: Mapping[str, str] | None = ...,
    ) -> Any:
        """Create one item."""

    async def delete(self, feature: str) -> None:
        """Archive a feature."""


class PushClient(Protocol):
    """What `push_catalog` needs from a client: `OpenMeterBilling` provides it."""

    @property
    def meters(self) -> _MetersAPI:
        """Meters API."""

    @property
    def features(self) -> _FeaturesAPI:
        """Features API."""


@dataclass(frozen=True)
class PushTarget:
    """The two resources a push touches (what a client hands over instead of itself)."""

    meters: _MetersAPI
    features: _FeaturesAPI


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class FieldDifference(_Frozen):
    """One field where OpenMeter disagrees with the catalog."""

    field: str
    catalog: Any
    openmeter: Any


class PushAction(_Frozen):
    """What a push does (or would do) to one meter or feature."""

    kind: Literal["meter", "feature"]
    key: str
    action: Action
    differences: tuple[FieldDifference, ...] = ()


class PushPlan(_Frozen):
    """The outcome of `push_catalog`: every action, and whether it was applied."""

    actions: tuple[PushAction, ...]
    dry_run: bool
    applied: bool = Field(description="True when the changes were made in OpenMeter")

    @property
    def conflicts(self) -> tuple[PushAction, ...]:
        """The actions that block the push."""
        return tuple(a for a in self.actions if a.action == "conflict")

    @property
    def changes(self) -> tuple[PushAction, ...]:
        """The creates and archives (what a non-dry run changes)."""
        return tuple(a for a in self.actions if a.action in ("create", "archive"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (for ``catalog push --json``)."""
        return self.model_dump(mode="json")

    def render(self) -> str:
        """A terraform-like text plan for people."""
        signs = {"create": "+", "unchanged": "=", "conflict": "!", "archive": "-"}
        lines = [f"{signs[a.action]} {a.kind} {a.key}: {a.action}" for a in self.actions]
        for action in self.conflicts:
            for diff in action.differences:
                lines.append(
                    f"    {action.kind} {action.key}.{diff.field}: catalog {diff.catalog!r}, "
                    f"OpenMeter {diff.openmeter!r}"
                )
        counts = {name: sum(a.action == name for a in self.actions) for name in signs}
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        if self.conflicts:
            verdict = "nothing applied: resolve the conflicts first"
        elif self.dry_run:
            verdict = "dry run: nothing applied"
        else:
            verdict = "applied"
        lines.append(f"{summary} ({verdict})")
        return "\n".join(lines)


async def push_catalog(
    client: PushClient,
    catalog: Catalog,
    *,
    dry_run: bool = False,
    archive_missing: bool = False,
) -> PushPlan:
    """Create missing meters and features in OpenMeter and report the rest (see module doc).

    Args:
        client: An `OpenMeterBilling` (or anything with the same ``meters``/``features``).
        catalog: A valid catalog (checked first).
        dry_run: Only plan; change nothing.
        archive_missing: Also archive features marked as created by this library
            (``openmeter_billing.managed``) that the catalog no longer defines.

    Raises:
        CatalogError: the catalog is invalid.
        APIError: OpenMeter could not be read or a change failed.
    """
    catalog.check()
    meter_bodies = compile_openmeter_meters(catalog)
    feature_bodies = compile_openmeter_features(catalog)
    remote_meters = {m.slug: m for m in await client.meters.list()}
    remote_features = {f.key: f async for f in client.features.list(include_archived=False)}
    actions = [_plan_meter(body, remote_meters.get(body["slug"])) for body in meter_bodies]
    actions += [_plan_feature(body, remote_features.get(body["key"])) for body in feature_bodies]
    if archive_missing:
        wanted = {body["key"] for body in feature_bodies}
        actions += [
            PushAction(kind="feature", key=key, action="archive")
            for key, feature in remote_features.items()
            if key not in wanted and _is_managed(feature)
        ]
    conflicted = any(a.action == "conflict" for a in actions)
    apply = not dry_run and not conflicted
    if apply:
        await _apply(client, actions, meter_bodies, feature_bodies)
    return PushPlan(actions=tuple(actions), dry_run=dry_run, applied=apply)


def _plan_meter(body: Mapping[str, Any], remote: Any) -> PushAction:
    key = body["slug"]
    if remote is None:
        return PushAction(kind="meter", key=key, action="create")
    pairs = [
        ("aggregation", body["aggregation"], str(remote.aggregation).upper()),
        ("event_type", body["eventType"], remote.event_type),
        ("value_property", body.get("valueProperty"), remote.value_property),
        ("group_by", body.get("groupBy") or {}, dict(remote.group_by or {})),
    ]
    return _compare("meter", key, pairs)


def _plan_feature(body: Mapping[str, Any], remote: Any) -> PushAction:
    key = body["key"]
    if remote is None:
        return PushAction(kind="feature", key=key, action="create")
    pairs = [
        ("name", body["name"], remote.name),
        ("meter_slug", body.get("meterSlug"), remote.meter_slug),
        (
            "meter_group_by_filters",
            body.get("meterGroupByFilters") or {},
            dict(remote.meter_group_by_filters or {}),
        ),
    ]
    return _compare("feature", key, pairs)


def _compare(
    kind: Literal["meter", "feature"], key: str, pairs: list[tuple[str, Any, Any]]
) -> PushAction:
    diffs = tuple(
        FieldDifference(field=field, catalog=mine, openmeter=theirs)
        for field, mine, theirs in pairs
        if mine != theirs
    )
    return PushAction(
        kind=kind, key=key, action="conflict" if diffs else "unchanged", differences=diffs
    )


def _is_managed(feature: Any) -> bool:
    metadata = getattr(feature, "metadata", None) or {}
    return bool(metadata.get(MANAGED_KEY) == "true")


async def _apply(
    client: PushClient,
    actions: Sequence[PushAction],
    meter_bodies: Sequence[Mapping[str, Any]],
    feature_bodies: Sequence[Mapping[str, Any]],
) -> None:
    creates = {(a.kind, a.key) for a in actions if a.action == "create"}
    # Meters first: a feature names its meter, which must exist.
    for body in meter_bodies:
        if ("meter", body["slug"]) in creates:
            logger.info("catalog push: creating meter %s", body["slug"])
            await client.meters.create(
                slug=body["slug"],
                event_type=body["eventType"],
                aggregation=body["aggregation"],
                value_property=body.get("valueProperty"),
                group_by=body.get("groupBy"),
                name=body.get("name"),
                description=body.get("description"),
                metadata=body.get("metadata"),
            )
    for body in feature_bodies:
        if ("feature", body["key"]) in creates:
            logger.info("catalog push: creating feature %s", body["key"])
            await client.features.create(
                key=body["key"],
                name=body["name"],
                meter_slug=body.get("meterSlug"),
                meter_group_by_filters=body.get("meterGroupByFilters"),
                metadata=body.get("metadata"),
            )
    for action in actions:
        if action.action == "archive":
            logger.info("catalog push: archiving feature %s", action.key)
            await client.features.delete(action.key)
