"""The demo: a month in the life of a metered AI feature, told step by step with balances.

``openmeter-billing demo`` runs it on Local OpenMeter (no account, no network); ``--remote`` runs
the same story against a real OpenMeter. :func:`run_demo` is the story itself, importable and
tested; it only talks to the public client.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import anyio

from openmeter_billing import (
    ConflictError,
    Identity,
    OpenMeterBilling,
    Organization,
    OrganizationResolver,
    User,
    UserResolver,
)
from openmeter_billing.local._clock import Clock
from openmeter_billing.types import EntitlementValue

__all__ = ["DemoNames", "run_demo"]

Out = Callable[[str], None]


@dataclass(frozen=True)
class DemoNames:
    """Keys the story creates; a remote run adds a suffix so it never collides with real data."""

    meter: str = "ai_tokens"
    feature: str = "ai_tokens"
    suffix: str = ""

    @classmethod
    def unique(cls) -> DemoNames:
        tag = secrets.token_hex(3)
        return cls(meter=f"demo_ai_tokens_{tag}", feature=f"demo_ai_tokens_{tag}", suffix=f"-{tag}")


def demo_identity(names: DemoNames) -> Identity:
    """Resolvers as an app would write them: users and organizations get prefixed keys."""
    return Identity(
        user=UserResolver(key="user:{id}" + names.suffix),
        organization=OrganizationResolver(key="org:{id}" + names.suffix),
    )


def _fmt(value: float | None) -> str:
    return f"{value or 0:,.0f}"


def _balance_line(v: EntitlementValue) -> str:
    access = "yes" if v.has_access else "NO"
    return (
        f"balance {_fmt(v.balance)} | usage {_fmt(v.usage)} | overage {_fmt(v.overage)} | "
        f"access {access}"
    )


class _Story:
    def __init__(
        self,
        client: OpenMeterBilling,
        names: DemoNames,
        out: Out,
        clock: Clock | None,
        settle: Callable[[], Awaitable[None]],
    ) -> None:
        self.client = client
        self.names = names
        self.out = out
        self.clock = clock
        self.settle = settle
        self.step_no = 0
        self.org = Organization(id="acme", name="Acme Inc", slug="acme")
        self.user = User(id="ada", email="ada@example.com", name="Ada Lovelace")
        self.period_start: datetime | None = None

    def step(self, title: str) -> None:
        self.step_no += 1
        self.out("")
        self.out(f"{self.step_no}. {title}")

    def say(self, text: str) -> None:
        self.out(f"   {text}")

    async def value(self) -> EntitlementValue:
        await self.settle()
        value = await self.client.entitlements.value(self.org, self.names.feature)
        self.say(_balance_line(value))
        return value

    async def setup_catalog(self) -> None:
        self.step("Define what we meter: a meter summing $.tokens and a feature on it")
        try:
            await self.client.meters.create(
                slug=self.names.meter,
                event_type="ai-tokens",
                aggregation="SUM",
                value_property="$.tokens",
                name="AI tokens",
            )
        except ConflictError:
            self.say("meter already exists, reusing it")
        try:
            await self.client.features.create(
                key=self.names.feature, name="AI tokens", meter_slug=self.names.meter
            )
        except ConflictError:
            self.say("feature already exists, reusing it")
        self.say(f"meter {self.names.meter} (SUM of $.tokens on ai-tokens events)")
        self.say(f"feature {self.names.feature}")

    async def sync_customers(self) -> None:
        self.step("Sync a user and an organization through the identity resolvers")
        for principal in (self.user, self.org):
            customer = await self.client.customers.sync(principal)
            self.say(f"{type(principal).__name__:<12} -> customer {customer.key} ({customer.id})")

    async def allowance(self) -> None:
        self.step("Give Acme a monthly allowance of 10,000 tokens")
        ent = await self.client.entitlements.create(
            self.org,
            {
                "type": "metered",
                "featureKey": self.names.feature,
                "usagePeriod": {"interval": "MONTH"},
                "issue": {"amount": 10_000},
            },
        )
        period = getattr(ent, "current_usage_period", None)
        if period is not None:
            self.period_start = period.from_
            self.say(f"usage period {period.from_:%Y-%m-%d} -> {period.to:%Y-%m-%d}")
        await self.value()

    async def use(self) -> None:
        self.step("Acme's team uses the AI feature: a batch of 5 requests, 6,200 tokens")
        batch = [
            {"type": "ai-tokens", "data": {"tokens": t, "model": "small"}}
            for t in (1_200, 800, 2_500, 700, 1_000)
        ]
        await self.client.events.ingest_batch(batch, customer=self.org)
        await self.value()
        allowed = await self.client.entitlements.has(self.org, self.names.feature)
        self.say(f"may Acme call the model? {'yes' if allowed else 'no'}")

    async def exceed(self) -> None:
        self.step("A long document: 4,500 more tokens, past the allowance")
        await self.client.events.ingest(type="ai-tokens", customer=self.org, data={"tokens": 4_500})
        value = await self.value()
        if not value.has_access:
            self.say("access denied: the app would refuse the next request")

    async def top_up(self) -> None:
        self.step("Acme buys a 5,000 token top-up (a grant); it pays the 700 overage first")
        await self.client.entitlements.grants.create(
            self.org,
            self.names.feature,
            {"amount": 5_000, "effectiveAt": self._effective_at(), "priority": 10},
        )
        await self.value()

    async def next_month(self) -> None:
        if self.clock is not None:
            self.step("Advance the clock 31 days, past the monthly reset")
            moved = self.clock.advance(days=31)
            self.say(f"now {moved:%Y-%m-%d %H:%M} UTC")
        else:
            self.step("Reset the usage period (a real server's clock cannot be moved)")
            await self.client.entitlements.reset(self.org, self.names.feature)
        self.say("allowance back to 10,000; the unused top-up (4,300) rolls over")
        await self.value()

    def _effective_at(self) -> str:
        """Now on Local OpenMeter; the period start on a remote server, whose clock we cannot
        read (a grant may not start before the period, and one effective "now" by this
        machine's clock could be in the server's future)."""
        if self.clock is not None:
            return self.clock.now().replace(second=0, microsecond=0).isoformat()
        assert self.period_start is not None
        return self.period_start.isoformat()


async def run_demo(
    client: OpenMeterBilling,
    *,
    clock: Clock | None = None,
    out: Out = print,
    names: DemoNames | None = None,
    settle: Callable[[], Awaitable[None]] | None = None,
    where: str = "Local OpenMeter (in-process)",
) -> None:
    """Tell the story with ``client``; ``clock`` (Local OpenMeter's) moves time, else a reset.

    ``settle`` runs before every balance read; remote runs use it to wait for OpenMeter's
    asynchronous event processing.
    """

    async def nothing() -> None:
        return None

    story = _Story(client, names or DemoNames(), out, clock, settle or nothing)
    out(f"openmeter-billing demo on {where}")
    await story.setup_catalog()
    await story.sync_customers()
    await story.allowance()
    await story.use()
    await story.exceed()
    await story.top_up()
    await story.next_month()
    out("")
    out("Done. Everything above went through the public client; see docs/local.md.")


def wait_seconds(seconds: float) -> Callable[[], Awaitable[None]]:
    """A ``settle`` for remote runs: OpenMeter meters events a few seconds after ingestion."""

    async def settle() -> None:
        await anyio.sleep(seconds)

    return settle
