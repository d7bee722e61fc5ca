"""``LocalOpenMeter``: the emulator as an httpx transport (sync and async).

It is nothing but a transport, so the client has no "local" branch: pass it as ``transport=`` and
every request the client would send over the network is answered in-process, under one lock, by
the same routes the loopback server exposes.
"""

from __future__ import annotations

import email.utils
import functools
import hmac
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import anyio
import httpx

from openmeter_billing.local._clock import Clock
from openmeter_billing.local.api import (
    routes_customers,
    routes_entitlements,
    routes_events,
    routes_features,
    routes_grants,
    routes_meters,
    routes_portal,
)
from openmeter_billing.local.api.inputs import Query, parse_json
from openmeter_billing.local.api.problems import Problem, bad_request
from openmeter_billing.local.api.router import _UNPARSED, Context, Reply, Router
from openmeter_billing.local.api.snapshot import snapshot_of
from openmeter_billing.local.api.validate import check_body, check_params, operation
from openmeter_billing.local.faults import Delay, Drop, Fail, FaultAction, Faults
from openmeter_billing.local.state.ids import IdFactory
from openmeter_billing.local.state.store import State

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from openmeter_billing._client import OpenMeterBilling
    from openmeter_billing._options import ClientOptions
    from openmeter_billing._sync import SyncOpenMeterBilling

__all__ = ["LocalOpenMeter", "Observer"]

logger = logging.getLogger("openmeter_billing")

Observer = Callable[[httpx.Request, httpx.Response], None]
"""Called with every request and the response Local OpenMeter gave it."""


def _build_router() -> Router:
    router = Router()
    routes_customers.register(router)
    routes_meters.register(router)
    routes_features.register(router)
    routes_events.register(router)
    routes_entitlements.register(router)
    routes_grants.register(router)
    routes_portal.register(router)
    return router


_ROUTER = _build_router()


class LocalOpenMeter(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An in-process OpenMeter: stateful, faithful to its balance engine, and an httpx transport.

    Example::

        local = LocalOpenMeter()
        async with local.client() as client:          # or OpenMeterBilling(transport=local, ...)
            await client.customers.sync(User(id="u_1", email="ada@example.com"))
        local.clock.advance(days=31)                   # time only moves when you say so

    Args:
        start: The clock's initial time; defaults to now (then frozen).
        api_key: When set, requests without ``Authorization: Bearer <api_key>`` get 401.
        faults: Fault rules to start with (see :mod:`openmeter_billing.local.faults`); also
            reachable, and changeable at any time, as :attr:`faults`.
    """

    base_url = "http://localhost:8888"
    """The base URL to give clients; any host works, as the transport ignores it."""

    def __init__(
        self,
        *,
        start: datetime | None = None,
        api_key: str | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.clock = Clock(start)
        self.faults = faults if faults is not None else Faults()
        """Faults on demand: outages, errors, delays, dropped connections, rate limits."""
        self.faults.bind(lambda: self.clock.now().timestamp())
        self._api_key = api_key
        self._state = State()
        self._ids = IdFactory()
        self._lock = threading.RLock()
        self._observers: list[Observer] = []
        self._request_ids = itertools.count(1)

    def __repr__(self) -> str:
        auth = "api_key=***" if self._api_key else "no auth"
        return f"LocalOpenMeter(now={self.clock.now().isoformat()}, {auth})"

    # -- test helpers -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every customer, meter, feature, entitlement, grant, event and token."""
        with self._lock:
            self._state = State()

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON-ready data, for assertions and debugging."""
        with self._lock:
            return snapshot_of(self._state, self.clock.now())

    def add_observer(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer(request, response)`` after every exchange; returns a remover."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    @staticmethod
    def routes() -> list[tuple[str, str]]:
        """Every (method, path template) Local OpenMeter serves."""
        return _ROUTER.templates()

    def client(self, **kwargs: Unpack[ClientOptions]) -> OpenMeterBilling:
        """An :class:`~openmeter_billing.OpenMeterBilling` wired to this emulator."""
        from openmeter_billing._client import OpenMeterBilling

        kwargs.setdefault("base_url", self.base_url)
        kwargs["transport"] = self
        return OpenMeterBilling(**kwargs)

    def sync_client(self, **kwargs: Unpack[ClientOptions]) -> SyncOpenMeterBilling:
        """A :class:`~openmeter_billing.SyncOpenMeterBilling` wired to this emulator."""
        from openmeter_billing._sync import SyncOpenMeterBilling

        kwargs.setdefault("base_url", self.base_url)
        kwargs["transport"] = self
        return SyncOpenMeterBilling(**kwargs)

    # -- transport ----------------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = self._answer(request)
        late = _late_by(request, response)
        if late:
            time.sleep(late)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = self._answer(request)
        late = _late_by(request, response)
        if late:
            await anyio.sleep(late)
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        request_id = f"local-{next(self._request_ids)}"
        fault = self._fault_for(request)
        if isinstance(fault, Drop) and fault.when == "before":
            raise httpx.ConnectError("Local OpenMeter fault: connection refused", request=request)
        reply = _fault_reply(fault, request_id) if isinstance(fault, Fail) else None
        response = _to_response(
            request, reply or self._reply(request, request_id), request_id, self.clock.now()
        )
        for observer in list(self._observers):
            observer(request, response)
        if isinstance(fault, Drop):
            raise httpx.RemoteProtocolError(
                "Local OpenMeter fault: server disconnected without sending a response",
                request=request,
            )
        if isinstance(fault, Delay):
            response.extensions["local_openmeter_delay"] = fault.seconds
        return response

    def _reply(self, request: httpx.Request, request_id: str) -> Reply:
        try:
            return self._dispatch(request)
        except Problem as problem:
            return Reply(
                problem.status,
                problem.body(request_id),
                content_type="application/problem+json",
                headers=dict(problem.headers),
            )
        except Exception:
            logger.exception("Local OpenMeter failed on %s %s", request.method, request.url.path)
            return Reply(
                500,
                {"type": "about:blank", "title": "Internal Server Error", "status": 500},
                content_type="application/problem+json",
            )

    def _fault_for(self, request: httpx.Request) -> FaultAction | None:
        if not self.faults:
            return None
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")
        return self.faults.decide(request.method, _ROUTER.template_of(request.method, path))

    def _dispatch(self, request: httpx.Request) -> Reply:
        self._authenticate(request)
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        handler, template, params = _ROUTER.resolve(request.method, path)
        pairs = parse_qsl(request.url.query.decode("utf-8"), keep_blank_values=True)
        headers = {k.lower(): v for k, v in request.headers.items()}
        parsed = _validated_body(request, template, params, pairs)
        with self._lock:
            ctx = Context(
                state=self._state,
                clock=self.clock,
                ids=self._ids,
                params=params,
                query=Query(pairs),
                body=request.content,
                headers=headers,
                parsed=parsed,
            )
            return handler(ctx)

    def _authenticate(self, request: httpx.Request) -> None:
        if self._api_key is None:
            return
        sent = request.headers.get("authorization", "")
        expected = f"Bearer {self._api_key}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Problem(401, "missing or invalid API token (send Authorization: Bearer <token>)")


def _validated_body(
    request: httpx.Request, template: str, params: dict[str, str], pairs: list[tuple[str, str]]
) -> Any:
    """Check the request against OpenMeter's rules; the parsed JSON body, if validated."""
    rules = operation(request.method, template)
    if rules is None:
        return _UNPARSED
    check_params(rules, params, pairs)
    if rules["bodies"] is None:
        return _UNPARSED
    if not request.content:
        if rules["body_required"]:
            raise bad_request("request body is required", field="body")
        return _UNPARSED
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = parse_json(request.content)
    check_body(rules, media, body)
    return body


def _fault_reply(fault: Fail, request_id: str) -> Reply:
    problem = Problem(fault.status, f"Local OpenMeter fault: injected {fault.status}")
    body = problem.body(request_id)
    reply = Reply(fault.status, body, content_type="application/problem+json")
    if fault.retry_after is not None:
        reply.headers["retry-after"] = f"{fault.retry_after:g}"
    return reply


def _late_by(request: httpx.Request, response: httpx.Response) -> float:
    """Seconds to hold a delayed answer; raise the client's ReadTimeout when it would expire."""
    delay = response.extensions.get("local_openmeter_delay")
    if not delay:
        return 0.0
    timeout = request.extensions.get("timeout", {}).get("read")
    if timeout is not None and delay >= timeout:
        raise httpx.ReadTimeout(
            f"Local OpenMeter fault: answer {delay:g} s late, past the {timeout:g} s read timeout",
            request=request,
        )
    return float(delay)


@functools.lru_cache(maxsize=64)
def _http_date(now: datetime) -> str:
    """The ``Date`` header for ``now`` (cached: a frozen clock answers many requests)."""
    return email.utils.format_datetime(now, usegmt=True)


def _to_response(
    request: httpx.Request, reply: Reply, request_id: str, now: datetime
) -> httpx.Response:
    # Like every Go net/http server, answer with a Date header: clients read the server's time
    # from it (for grant effectiveAt), which here is the emulator's clock.
    headers = {"x-request-id": request_id, "date": _http_date(now), **reply.headers}
    if reply.body is None:
        return httpx.Response(reply.status, headers=headers, request=request)
    headers["content-type"] = reply.content_type
    content = json.dumps(reply.body, separators=(",", ":")).encode()
    return httpx.Response(reply.status, headers=headers, content=content, request=request)
