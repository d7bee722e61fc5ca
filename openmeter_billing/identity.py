"""Identity: how your users, organizations and teams become OpenMeter customers.

A resolver maps one kind of principal to a customer key, a usage subject and a profile. Resolvers
are injected at construction, so any object works::

    identity = Identity(
        user=UserResolver(key="user:{id}"),              # namespaced keys are one line
        organization=OrganizationResolver(key="org:{id}"),
    )
    client = OpenMeterBilling(identity=identity)
    await client.customers.sync(User(id="42", email="ada@example.com"))

Every callable may be sync or async.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import (
    Any,
    Generic,
    Literal,
    Protocol,
    TypeAlias,
    TypeVar,
    runtime_checkable,
)

from ._exceptions import IdentityResolutionError, InvalidInputError
from ._types import MaybeAwaitable, maybe_await
from .types.customers import AddressInput, CustomerCreate, CustomerUsageAttributionInput

__all__ = [
    "CustomerIdStore",
    "CustomerProfile",
    "CustomerRef",
    "CustomerResolver",
    "Identity",
    "InMemoryCustomerIdStore",
    "Organization",
    "OrganizationResolver",
    "ResolvedCustomer",
    "Scope",
    "Team",
    "TeamResolver",
    "User",
    "UserResolver",
]

logger = logging.getLogger("openmeter_billing")

P = TypeVar("P")
T = TypeVar("T")
Scope: TypeAlias = Literal["user", "organization", "team"]
#: A customer as methods accept it: an OpenMeter id, a customer key, or a principal object.
CustomerRef: TypeAlias = object
#: A key or subject: a ``str.format`` template over the principal's attributes, or a callable.
KeySpec: TypeAlias = str | Callable[[Any], MaybeAwaitable[str]]


@dataclass(frozen=True)
class User:
    """A person. Any object with the attributes your resolver reads works just as well."""

    id: str
    email: str | None = None
    name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Organization:
    """A company or workspace that is billed as one customer."""

    id: str
    name: str | None = None
    slug: str | None = None
    email: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Team:
    """A team, optionally inside an organization."""

    id: str
    name: str | None = None
    slug: str | None = None
    organization_id: str | None = None
    email: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerProfile:
    """The descriptive fields of a customer (identity fields come from the resolver)."""

    name: str
    primary_email: str | None = None
    description: str | None = None
    currency: str | None = None
    billing_address: Mapping[str, str] | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedCustomer:
    """What a principal maps to: the customer key, its usage subject and its profile."""

    scope: Scope
    key: str
    subject: str
    profile: CustomerProfile

    def to_create(self) -> CustomerCreate:
        """The customer body: profile, key and ``usageAttribution.subjectKeys=[subject]``."""
        profile = self.profile
        address = (
            AddressInput.model_validate(profile.billing_address)
            if profile.billing_address
            else None
        )
        return CustomerCreate(
            key=self.key,
            name=profile.name,
            primary_email=profile.primary_email,
            description=profile.description,
            currency=profile.currency,
            billing_address=address,
            usage_attribution=CustomerUsageAttributionInput(subject_keys=[self.subject]),
            metadata=dict(profile.metadata) or None,
        )


class _AttributeView(Mapping[str, Any]):
    """Lets ``"user:{id}"`` read attributes (or mapping keys) of any principal."""

    def __init__(self, principal: object) -> None:
        self._principal = principal

    def __getitem__(self, name: str) -> Any:
        if isinstance(self._principal, Mapping):
            return self._principal[name]
        try:
            return getattr(self._principal, name)
        except AttributeError:
            raise KeyError(name) from None

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


def _attr(principal: object, name: str) -> Any:
    try:
        return _AttributeView(principal)[name]
    except KeyError:
        return None


class CustomerResolver(Generic[P]):
    """Maps principals of one scope (user, organization or team) to OpenMeter customers.

    Args:
        scope: Which kind of principal this resolves.
        accepts: The principal type(s) this resolver handles, or a predicate.
        key: Customer key: a template such as ``"org:{id}"`` or a callable. Default ``"{id}"``.
        subject: Usage subject events are attributed by. Defaults to the key.
        name: Display name. Default: the principal's name, then email (or slug), then id.
        currency: ISO 4217 code for new customers, or a callable.
        metadata: Extra metadata merged over the defaults (the principal's id, email or slug).
        profile: Called with the principal and the default `CustomerProfile`; may return a new
            profile, a mapping of fields to override, or None to keep the defaults.
    """

    def __init__(
        self,
        scope: Scope,
        *,
        accepts: type[Any] | tuple[type[Any], ...] | Callable[[object], bool],
        key: KeySpec = "{id}",
        subject: KeySpec | None = None,
        name: Callable[[P], MaybeAwaitable[str | None]] | None = None,
        currency: str | Callable[[P], MaybeAwaitable[str | None]] | None = None,
        metadata: Mapping[str, str]
        | Callable[[P], MaybeAwaitable[Mapping[str, str]]]
        | None = None,
        profile: Callable[
            [P, CustomerProfile],
            MaybeAwaitable[CustomerProfile | Mapping[str, Any] | None],
        ]
        | None = None,
    ) -> None:
        self.scope: Scope = scope
        self._accepts = accepts
        self._key = key
        self._subject = subject
        self._name = name
        self._currency = currency
        self._metadata = metadata
        self._profile = profile

    def __repr__(self) -> str:
        return f"<{type(self).__name__} scope={self.scope!r} key={self._key!r}>"

    def accepts(self, principal: object) -> bool:
        """Whether this resolver handles ``principal``."""
        if isinstance(self._accepts, (type, tuple)):
            return isinstance(principal, self._accepts)
        return bool(self._accepts(principal))

    async def resolve_key(self, principal: P) -> str:
        """Only the customer key: the cheap path used on every entitlement check."""
        return await self._render(self._key, principal, "key")

    async def resolve(self, principal: P) -> ResolvedCustomer:
        """Map ``principal`` to its customer key, subject and profile."""
        key = await self._render(self._key, principal, "key")
        subject = (
            key
            if self._subject is None
            else await self._render(self._subject, principal, "subject")
        )
        defaults = await self._default_profile(principal)
        profile = defaults
        if self._profile is not None:
            returned = await maybe_await(self._profile(principal, defaults))
            profile = _merge_profile(defaults, returned)
        return ResolvedCustomer(scope=self.scope, key=key, subject=subject, profile=profile)

    async def _render(self, spec: KeySpec, principal: P, what: str) -> str:
        value: object
        try:
            if isinstance(spec, str):
                value = string.Formatter().vformat(spec, (), _AttributeView(principal))
            else:
                value = await maybe_await(spec(principal))
        except KeyError as exc:
            raise IdentityResolutionError(
                f"the {self.scope} resolver's {what} template {spec!r} reads attribute {exc} that "
                f"{type(principal).__name__} does not have; pass {what}=<callable> instead"
            ) from exc
        if not isinstance(value, str) or not value:
            raise IdentityResolutionError(
                f"the {self.scope} resolver returned {value!r} as the customer {what} for "
                f"{type(principal).__name__}; it must be a non-empty string"
            )
        return value

    async def _default_profile(self, principal: P) -> CustomerProfile:
        name = await maybe_await(self._name(principal)) if self._name else None
        name = name or _attr(principal, "name") or _attr(principal, "email")
        name = name or _attr(principal, "slug") or str(_attr(principal, "id") or "")
        currency = self._currency
        if callable(currency):
            currency = await maybe_await(currency(principal))
        metadata = self._base_metadata(principal)
        if self._metadata is not None:
            extra = self._metadata
            if callable(extra):
                extra = await maybe_await(extra(principal))
            metadata.update(extra)
        email = _attr(principal, "email")
        return CustomerProfile(
            name=str(name) if name else "unnamed",
            primary_email=email if isinstance(email, str) and email else None,
            currency=currency,
            metadata=metadata,
        )

    def _base_metadata(self, principal: P) -> dict[str, str]:
        fields = {
            "user": ("id", "email"),
            "organization": ("id", "slug"),
            "team": ("id", "slug", "organization_id"),
        }[self.scope]
        prefix = {"user": "user", "organization": "organization", "team": "team"}[self.scope]
        metadata: dict[str, str] = {}
        for name in fields:
            value = _attr(principal, name)
            if value:
                label = f"{prefix}_id" if name == "id" else name
                metadata[label] = str(value)
        own = _attr(principal, "metadata")
        if isinstance(own, Mapping):
            metadata.update({str(k): str(v) for k, v in own.items()})
        return metadata


def _merge_profile(
    defaults: CustomerProfile, returned: CustomerProfile | Mapping[str, Any] | None
) -> CustomerProfile:
    """Overlay what a ``profile`` hook returned; metadata merges key by key."""
    if returned is None:
        return defaults
    if isinstance(returned, CustomerProfile):
        changes = {k: v for k, v in returned.__dict__.items() if v is not None}
    else:
        changes = {k: v for k, v in returned.items() if v is not None}
    unknown = set(changes) - set(CustomerProfile.__dataclass_fields__)
    if unknown:
        raise IdentityResolutionError(
            f"the profile hook returned unknown field(s) {sorted(unknown)}; allowed: "
            f"{sorted(CustomerProfile.__dataclass_fields__)}"
        )
    if "metadata" in changes:
        changes["metadata"] = {**defaults.metadata, **changes["metadata"]}
    return replace(defaults, **changes)


class UserResolver(CustomerResolver[Any]):
    """Resolves people. Accepts `User` unless told otherwise (``accepts=MyUser``)."""

    def __init__(self, *, accepts: Any = User, **options: Any) -> None:
        super().__init__("user", accepts=accepts, **options)


class OrganizationResolver(CustomerResolver[Any]):
    """Resolves organizations. Accepts `Organization` unless told otherwise."""

    def __init__(self, *, accepts: Any = Organization, **options: Any) -> None:
        super().__init__("organization", accepts=accepts, **options)


class TeamResolver(CustomerResolver[Any]):
    """Resolves teams. Accepts `Team` unless told otherwise."""

    def __init__(self, *, accepts: Any = Team, **options: Any) -> None:
        super().__init__("team", accepts=accepts, **options)


class Identity:
    """The resolvers a client uses, tried in order: user, organization, team, then extras.

    ``Identity()`` resolves the shipped `User`, `Organization` and `Team` with their id as key.
    """

    def __init__(
        self,
        *extra: CustomerResolver[Any],
        user: CustomerResolver[Any] | None = None,
        organization: CustomerResolver[Any] | None = None,
        team: CustomerResolver[Any] | None = None,
    ) -> None:
        self.resolvers: tuple[CustomerResolver[Any], ...] = (
            user or UserResolver(),
            organization or OrganizationResolver(),
            team or TeamResolver(),
            *extra,
        )

    def __repr__(self) -> str:
        return f"<Identity resolvers={list(self.resolvers)!r}>"

    def resolver_for(self, principal: object) -> CustomerResolver[Any]:
        """The first resolver that accepts ``principal``."""
        for resolver in self.resolvers:
            if resolver.accepts(principal):
                return resolver
        kind = type(principal).__name__
        scope, suggested, prefix = _likely_scope(principal)
        raise IdentityResolutionError(
            f"no identity resolver accepts a {kind}; configure one, for example "
            f"Identity({scope}={suggested}(accepts={kind}, key='{prefix}:{{id}}')), or pass the "
            "customer's OpenMeter id or key as a string"
        )

    async def resolve(self, principal: object) -> ResolvedCustomer:
        """Map ``principal`` to a customer; raises `IdentityResolutionError` if none applies."""
        resolver = self.resolver_for(principal)
        return await _guarded(resolver, principal, resolver.resolve(principal))

    async def resolve_key(self, principal: object) -> str:
        """Only the customer key of ``principal``."""
        resolver = self.resolver_for(principal)
        return await _guarded(resolver, principal, resolver.resolve_key(principal))

    async def customer_key(self, customer: object) -> str:
        """``customerIdOrKey`` for a ``customer`` argument: an id or key as given, else resolved."""
        if isinstance(customer, str):
            if not customer:
                raise InvalidInputError(
                    "customer must not be empty",
                    field="customer",
                    hint="pass an OpenMeter id, a customer key or a principal object",
                )
            return customer
        if customer is None:
            raise InvalidInputError(
                "customer is required",
                field="customer",
                hint="pass an OpenMeter id, a customer key or a principal object",
            )
        return await self.resolve_key(customer)


_SCOPE_HINTS = (
    (("org", "company", "account", "workspace", "tenant"), "organization", "OrganizationResolver"),
    (("team", "group", "project"), "team", "TeamResolver"),
)


def _likely_scope(principal: object) -> tuple[str, str, str]:
    """The resolver an error should suggest, guessed from the principal's class name."""
    name = type(principal).__name__.lower()
    for words, scope, resolver in _SCOPE_HINTS:
        if any(word in name for word in words):
            return scope, resolver, "org" if scope == "organization" else scope
    return "user", "UserResolver", "user"


async def _guarded(resolver: CustomerResolver[Any], principal: object, work: Awaitable[T]) -> T:
    """Await a resolver call, wrapping foreign errors so callers catch one type."""
    try:
        return await work
    except IdentityResolutionError:
        raise
    except Exception as exc:
        raise IdentityResolutionError(
            f"the {resolver.scope} resolver failed for {type(principal).__name__}: {exc}"
        ) from exc


@runtime_checkable
class CustomerIdStore(Protocol):
    """Where `customers.sync` records OpenMeter's generated customer id (for example a DB column).

    Both methods may be sync or async.
    """

    def get(self, key: str) -> MaybeAwaitable[str | None]:
        """The stored OpenMeter id for a customer key, if any."""
        ...

    def set(self, key: str, customer_id: str, principal: object) -> MaybeAwaitable[None]:
        """Store ``customer_id`` for ``key`` (called only when it changed)."""
        ...

    def delete(self, key: str) -> MaybeAwaitable[None]:
        """Forget ``key`` (called by `customers.delete`); a missing key is not an error."""
        ...


class InMemoryCustomerIdStore:
    """A `CustomerIdStore` in a dict: for tests and scripts."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """The stored id for ``key``."""
        return self.ids.get(key)

    def set(self, key: str, customer_id: str, principal: object) -> None:  # noqa: ARG002
        """Remember ``customer_id`` for ``key``."""
        self.ids[key] = customer_id

    def delete(self, key: str) -> None:
        """Forget ``key`` (``customers.delete``); forgetting an unknown key is a no-op."""
        self.ids.pop(key, None)


async def store_get(store: CustomerIdStore, key: str) -> str | None:
    """Call ``store.get`` whether it is sync or async."""
    return await maybe_await(store.get(key))


async def store_set(store: CustomerIdStore, key: str, customer_id: str, principal: object) -> None:
    """Call ``store.set`` whether it is sync or async."""
    await maybe_await(store.set(key, customer_id, principal))


async def store_delete(store: CustomerIdStore, key: str) -> bool:
    """Call ``store.delete(key)`` (sync or async); False for a store that has no ``delete``.

    A store written before `CustomerIdStore` had ``delete`` is skipped with a warning in the log,
    so upgrading does not break deletes; add the method to forget deleted customers' ids.
    """
    delete = getattr(store, "delete", None)
    if delete is None:
        logger.warning(
            "%s has no delete(key): the id of deleted customer %r stays stored",
            type(store).__name__,
            key,
        )
        return False
    await maybe_await(delete(key))
    return True
