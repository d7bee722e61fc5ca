"""Identity resolvers: principals of three scopes become customer keys, subjects and profiles."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from openmeter_billing import (
    CustomerProfile,
    Identity,
    IdentityResolutionError,
    Organization,
    OrganizationResolver,
    Team,
    TeamResolver,
    User,
    UserResolver,
)


@dataclass
class AppUser:
    pk: int
    email: str
    display: str


async def test_default_resolvers_cover_all_three_scopes() -> None:
    identity = Identity()
    user = await identity.resolve(User(id="u1", email="ada@example.com", name="Ada"))
    assert (user.scope, user.key, user.subject) == ("user", "u1", "u1")
    assert user.profile.name == "Ada"
    assert user.profile.primary_email == "ada@example.com"
    assert user.profile.metadata == {"user_id": "u1", "email": "ada@example.com"}

    org = await identity.resolve(Organization(id="o1", slug="acme"))
    assert (org.scope, org.key) == ("organization", "o1")
    assert org.profile.name == "acme"  # no name: slug comes next
    assert org.profile.primary_email is None
    assert org.profile.metadata == {"organization_id": "o1", "slug": "acme"}

    team = await identity.resolve(Team(id="t1", name="Platform", organization_id="o1"))
    assert (team.scope, team.key, team.profile.name) == ("team", "t1", "Platform")
    assert team.profile.metadata == {"team_id": "t1", "organization_id": "o1"}


async def test_name_falls_back_to_email_then_id() -> None:
    identity = Identity()
    assert (await identity.resolve(User(id="u1", email="a@b.c"))).profile.name == "a@b.c"
    assert (await identity.resolve(User(id="u1"))).profile.name == "u1"


async def test_namespaced_keys_are_one_line() -> None:
    identity = Identity(
        user=UserResolver(key="user:{id}"), organization=OrganizationResolver(key="org:{id}")
    )
    assert (await identity.resolve(User(id="42"))).key == "user:42"
    resolved = await identity.resolve(Organization(id="7"))
    assert (resolved.key, resolved.subject) == ("org:7", "org:7")


async def test_customer_create_body_carries_identity() -> None:
    resolved = await Identity(
        user=UserResolver(key="user:{id}", subject="sub-{id}", currency="EUR")
    ).resolve(User(id="9", email="x@y.z"))
    body = resolved.to_create().to_body()
    assert body == {
        "key": "user:9",
        "name": "x@y.z",
        "primaryEmail": "x@y.z",
        "currency": "EUR",
        "usageAttribution": {"subjectKeys": ["sub-9"]},
        "metadata": {"user_id": "9", "email": "x@y.z"},
    }


async def test_custom_principal_class_with_sync_and_async_callables() -> None:
    async def subject_of(user: AppUser) -> str:
        return f"s{user.pk}"

    def profile(user: AppUser, defaults: CustomerProfile) -> dict[str, object]:
        return {"description": "from hook", "metadata": {"plan": "pro"}}

    identity = Identity(
        user=UserResolver(
            accepts=AppUser,
            key=lambda u: f"user:{u.pk}",
            subject=subject_of,
            name=lambda u: u.display,
            metadata={"source": "app"},
            profile=profile,
        )
    )
    resolved = await identity.resolve(AppUser(pk=5, email="e@x.io", display="Eve"))
    assert (resolved.key, resolved.subject) == ("user:5", "s5")
    assert resolved.profile.name == "Eve"
    assert resolved.profile.description == "from hook"
    # hook metadata merges over defaults instead of replacing them
    assert resolved.profile.metadata == {"email": "e@x.io", "source": "app", "plan": "pro"}


async def test_predicate_accepts_and_extra_resolvers() -> None:
    extra = TeamResolver(accepts=lambda p: isinstance(p, dict) and "team" in p, key="team:{team}")
    identity = Identity(extra)
    resolved = await identity.resolve({"team": "blue", "id": "x"})
    assert resolved.key == "team:blue"


async def test_unknown_principal_names_the_missing_resolver() -> None:
    with pytest.raises(
        IdentityResolutionError,
        match=r"no identity resolver accepts a AppUser.*UserResolver\(accepts=AppUser",
    ):
        await Identity().resolve(AppUser(pk=1, email="", display=""))


async def test_template_reading_missing_attribute_says_how_to_fix() -> None:
    identity = Identity(user=UserResolver(key="user:{uuid}"))
    with pytest.raises(IdentityResolutionError, match="'uuid'.*key=<callable>"):
        await identity.resolve(User(id="1"))


async def test_resolver_exception_is_wrapped_with_cause() -> None:
    def boom(user: User) -> str:
        raise RuntimeError("db down")

    identity = Identity(user=UserResolver(key=boom))
    with pytest.raises(IdentityResolutionError, match="db down") as caught:
        await identity.resolve_key(User(id="1"))
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_empty_key_is_refused() -> None:
    identity = Identity(user=UserResolver(key=lambda u: ""))
    with pytest.raises(IdentityResolutionError, match="non-empty"):
        await identity.resolve(User(id="1"))


async def test_profile_hook_with_unknown_field_is_refused() -> None:
    identity = Identity(user=UserResolver(profile=lambda u, d: {"nickname": "x"}))
    with pytest.raises(IdentityResolutionError, match="nickname"):
        await identity.resolve(User(id="1"))
