"""Alternative HTTP transports for uncached calls.

`AiohttpTransport` sends the client's requests with aiohttp instead of httpcore. On our 2-core
machines httpx's own async stack costs several times aiohttp's CPU per request; with this
transport the client keeps its retries, timeouts and typed errors (they live in the client, above
the transport) and spends less CPU per uncached call. Needs the extra: ``pip install
'openmeter-billing[aiohttp]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import httpx

from ._exceptions import ConfigurationError
from ._runtime import abandon, fork_generation

if TYPE_CHECKING:
    from httpx_aiohttp import AiohttpTransport as _Inner

__all__ = ["AiohttpTransport"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport backed by aiohttp: ``OpenMeterBilling(transport=AiohttpTransport())``.

    aiohttp sessions belong to one event loop, so one is opened per loop (and per process after a
    fork: a child never touches its parent's connections). Closing the client closes the session
    of the loop it closes on; sessions of loops that already ended are abandoned with their loop.

    Args:
        limits: Connection limits (default: 100 connections, 20 kept alive).
        verify: TLS verification (``True``, a CA bundle path, or an ``ssl.SSLContext``).
    """

    def __init__(self, *, limits: httpx.Limits | None = None, verify: Any = True) -> None:
        try:
            import httpx_aiohttp
        except ImportError as exc:
            raise ConfigurationError(
                "AiohttpTransport needs aiohttp and httpx-aiohttp: pip install "
                "'openmeter-billing[aiohttp]'"
            ) from exc
        self._make = httpx_aiohttp.AiohttpTransport
        self._limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._verify = verify
        self._inner: dict[tuple[asyncio.AbstractEventLoop, int], _Inner] = {}
        self._generation = fork_generation()

    def __repr__(self) -> str:
        return f"<AiohttpTransport sessions={len(self._inner)}>"

    def _for_this_loop(self) -> _Inner:
        if self._generation != fork_generation():  # a forked child: leave the parent's alone
            abandon(self._inner)
            self._inner, self._generation = {}, fork_generation()
        loop = asyncio.get_running_loop()
        key = (loop, self._generation)
        inner = self._inner.get(key)
        if inner is None:
            for old in [k for k in self._inner if k[0].is_closed()]:
                abandon(self._inner.pop(old))  # its loop is gone: nothing can close it now
            inner = self._make(limits=self._limits, verify=self._verify)
            self._inner[key] = inner
        return inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` with this event loop's aiohttp session."""
        return await self._for_this_loop().handle_async_request(request)

    async def aclose(self) -> None:
        """Close the session of the running loop (the client calls this when it closes)."""
        with contextlib.suppress(RuntimeError):
            key = (asyncio.get_running_loop(), self._generation)
            inner = self._inner.pop(key, None)
            if inner is not None:
                await inner.aclose()
