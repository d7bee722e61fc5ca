"""The lifecycle owner: connection pools per event loop and process, and background services.

One `Runtime` belongs to a client (its `with_options` copies share it). It exists because:

- httpx pools bind connections to the event loop that opened them: a pool reused by a second
  ``asyncio.run(...)`` fails with "Event loop is closed", and two threads with their own loops
  must not share sockets. So each running loop gets its own pool, made on first use.
- After ``os.fork()`` the child inherits the parent's open keep-alive sockets; if both write on
  one, each can read the other's response (another customer's data). The child starts with new
  pools and services and never touches inherited connections, not even to close them: closing a
  TLS connection would send ``close_notify`` on the parent's stream.
- Background services (the entitlement cache refresher, the ingest flusher) need an owner that
  starts them lazily on the loop in use, drains them with a bound on close, and drains them when
  the loop ends without a close (``asyncio.run`` finalises async generators before it closes the
  loop: the owner registers one per loop to hear about it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, TypeVar, cast, runtime_checkable

import httpx

from ._exceptions import ConfigurationError

# asyncio and anyio load when a loop runs (then they are loaded already), not at import: a
# process that never runs async code (a Django worker using the sync facade's thread) or only
# imports the package does not pay for them.
if TYPE_CHECKING:
    import asyncio

__all__ = ["BackgroundService", "Runtime", "fork_generation"]

T = TypeVar("T")

logger = logging.getLogger("openmeter_billing")

#: Bumped in every child process right after a fork; objects compare it with the one they saw.
_fork_generation = 0
#: What a child inherited and must neither use nor close (closing would disturb the parent).
_abandoned: list[object] = []


def _after_fork_in_child() -> None:
    global _fork_generation  # noqa: PLW0603 - one counter per process, by design
    _fork_generation += 1


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def fork_generation() -> int:
    """How many forks separate this process from the one that imported the library."""
    return _fork_generation


def abandon(thing: object) -> None:
    """Keep an inherited object alive and untouched for the rest of this process."""
    _abandoned.append(thing)


@runtime_checkable
class BackgroundService(Protocol):
    """Work that runs beside requests on the client's event loop (a refresher, a flusher).

    The runtime starts ``run`` on each event loop the client is used on (and again in a forked
    child), cancels it on close, and calls ``drain`` once before that, within the drain timeout,
    so pending work (queued events) is finished or handed to durable storage.
    """

    @property
    def name(self) -> str:
        """A short name for logs."""
        ...

    async def run(self) -> None:
        """Work until cancelled."""
        ...

    async def drain(self) -> None:
        """Finish pending work; called once when the client closes or its event loop ends."""
        ...


class _SharedTransport(httpx.AsyncBaseTransport):
    """Lends a caller's transport to one pool per loop without letting any of them close it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """The runtime closes the inner transport once, when the client closes."""


class _LoopState:
    """What the runtime keeps for one event loop: its pool, its services, their supervisor."""

    def __init__(self, runtime: Runtime, loop: asyncio.AbstractEventLoop | None) -> None:
        self.runtime = runtime
        self.loop = loop
        self.http_client = runtime._make_http_client()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.closed = False
        self.watcher: Any = None  # the async generator that hears the loop end

    def start(self, service: BackgroundService) -> None:
        if self.loop is None or self.closed or service.name in self.tasks:
            return
        task = self.loop.create_task(_supervise(service), name=f"openmeter-billing:{service.name}")
        self.tasks[service.name] = task

    async def close(self, services: list[BackgroundService], timeout: float) -> None:
        """Drain the services (bounded), stop them, close this loop's pool."""
        if self.closed:
            return
        self.closed = True
        import anyio

        with anyio.move_on_after(timeout) as scope:
            for service in services:
                try:
                    await service.drain()
                except Exception:
                    logger.exception("draining %s failed", service.name)
        if scope.cancelled_caught:
            logger.warning("background services did not drain within %.1f s", timeout)
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(BaseException):  # cancelled or crashed: done either way
                await task
        if self.http_client is not self.runtime._user_client:  # the caller closes their own
            await self.http_client.aclose()


async def _supervise(service: BackgroundService) -> None:
    """Run a service; a crash is logged and the service restarted after a pause."""
    import asyncio

    delay = 0.5
    while True:
        try:
            await service.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "background service %s crashed; restarting in %.1f s", service.name, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _watch_loop_end(state: _LoopState) -> Any:
    """An async generator parked at ``yield``; the loop finalises it when it shuts down."""
    try:
        yield None
    finally:
        if not state.closed:
            await state.close(list(state.runtime._services), state.runtime.drain_timeout)


class Runtime:
    """Owns a client's connection pools and background services (see the module docstring).

    Args:
        make_http_client: Builds a new pool (an `httpx.AsyncClient`) for a loop or process.
        user_client: The caller's own `httpx.AsyncClient`: used as it is, never replaced, never
            closed; bound to one event loop and one process, so other use is an error.
        transport: The caller's transport, shared by every pool, closed when the client closes.
        drain_timeout: How long closing waits for background services to finish their work.
    """

    def __init__(
        self,
        *,
        make_http_client: Callable[[httpx.AsyncBaseTransport | None], httpx.AsyncClient],
        user_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        drain_timeout: float = 2.0,
    ) -> None:
        self._factory = make_http_client
        self._user_client = user_client
        self._transport = transport
        self._shared_transport = _SharedTransport(transport) if transport is not None else None
        self.drain_timeout = drain_timeout
        self._states: dict[object, _LoopState] = {}
        self._services: list[BackgroundService] = []
        self._lock = threading.Lock()
        self._generation = _fork_generation
        self._pid = os.getpid()
        self._user_loop: object = None
        self._closed = False
        self._draining: dict[object, _LoopState] = {}  # states being closed by aclose
        # The fast path: the state used last, valid while the loop and process are the same.
        self._last_key: object = None
        self._last_state: _LoopState | None = None
        self._shared: dict[str, object] = {}
        self._shared_lock = threading.RLock()  # factories may register services (self._lock)

    def __repr__(self) -> str:
        return f"<Runtime loops={len(self._states)} services={len(self._services)}>"

    @property
    def closed(self) -> bool:
        """Whether `aclose` ran."""
        return self._closed

    def _make_http_client(self) -> httpx.AsyncClient:
        if self._user_client is not None:
            return self._user_client
        return self._factory(self._shared_transport)

    def http_client(self) -> httpx.AsyncClient:
        """The pool for the running event loop in this process (made on first use)."""
        key = _loop_key()
        state = self._last_state
        if key is self._last_key and state is not None and self._generation == _fork_generation:
            return state.http_client
        return self._state_for(key).http_client

    def _state_for(self, key: object) -> _LoopState:
        if self._closed:
            draining = self._draining.get(key)
            if draining is not None:  # a service finishing its work during close may still send
                return draining
            raise ConfigurationError(
                "this client is closed; create a new OpenMeterBilling (or do not close the one "
                "you share)"
            )
        with self._lock:
            if self._generation != _fork_generation:
                self._forget_inherited_state()
            if self._user_client is not None:
                self._check_user_client(key)
            state = self._states.get(key)
            if state is None:
                state = self._new_state(key)
            self._last_key, self._last_state = key, state
        return state

    def _forget_inherited_state(self) -> None:
        """In a forked child: leave the parent's pools and tasks alone, start afresh."""
        if self._user_client is not None:
            raise ConfigurationError(
                "this client was created before os.fork() with your own http_client=, whose "
                "connections the child would share with the parent; create the client after the "
                "fork (for example in a post-fork hook) or let the library own the pool"
            )
        abandon(self._states)
        self._states = {}
        self._generation = _fork_generation
        self._pid = os.getpid()
        self._last_key = self._last_state = None

    def _check_user_client(self, key: object) -> None:
        if self._user_loop is None:
            self._user_loop = key
        elif self._user_loop is not key:
            raise ConfigurationError(
                "this client uses your own http_client=, which is bound to the event loop it "
                "was first used on; use it from that loop only, or let the library own the "
                "pool (it then keeps one per event loop)"
            )

    def _new_state(self, key: object) -> _LoopState:
        loop = key if _is_loop(key) else None
        self._prune_closed_loops()
        state = _LoopState(self, loop)
        self._states[key] = state
        if loop is not None:
            state.watcher = _watch_loop_end(state)
            _prime(state.watcher)
            for service in self._services:
                state.start(service)
        return state

    def _prune_closed_loops(self) -> None:
        for key, state in list(self._states.items()):
            if state.loop is not None and state.loop.is_closed():
                del self._states[key]

    def shared(self, name: str, factory: Callable[[], T]) -> T:
        """One object per client (its `with_options` copies included), made on first use."""
        with self._shared_lock:
            if name not in self._shared:
                self._shared[name] = factory()
            return cast("T", self._shared[name])

    def add_service(self, service: BackgroundService) -> None:
        """Register a background service; it starts now on a running loop, else on first use."""
        if not isinstance(service, BackgroundService):
            raise ConfigurationError(
                f"{type(service).__name__} is not a BackgroundService (needs name, run, drain)"
            )
        with self._lock:
            if any(existing.name == service.name for existing in self._services):
                return
            self._services.append(service)
        key = _loop_key()
        if _is_loop(key):
            self._state_for(key).start(service)

    def ensure_started(self) -> None:
        """Start the background services on the running loop (without sending anything)."""
        self._state_for(_loop_key())

    async def aclose(self) -> None:
        """Drain services (bounded by ``drain_timeout``), close every pool this process owns."""
        if self._closed:
            return
        self._closed = True
        if self._generation != _fork_generation:
            self._states = {}  # inherited: never closed from here
        here = _loop_key()
        states, self._states = self._states, {}
        self._last_key = self._last_state = None
        services = list(self._services)
        self._draining = states
        try:
            for key, state in states.items():
                if key is here:
                    await state.close(services, self.drain_timeout)
                else:
                    await _close_elsewhere(state, services, self.drain_timeout)
        finally:
            self._draining = {}
        if self._transport is not None:
            await self._transport.aclose()


def _loop_key() -> object:
    """The running asyncio loop, or the thread for other async libraries (or none)."""
    asyncio = sys.modules.get("asyncio")  # no asyncio loop can run before asyncio is imported
    if asyncio is not None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            pass
    return threading.get_ident()


def _is_loop(key: object) -> TypeGuard[asyncio.AbstractEventLoop]:
    return not isinstance(key, int)


def _prime(agen: Any) -> None:
    """Start an async generator synchronously so the running loop tracks (and finalises) it."""
    with contextlib.suppress(StopIteration):
        agen.__anext__().send(None)


async def _close_elsewhere(
    state: _LoopState, services: list[BackgroundService], timeout: float
) -> None:
    """Close a pool that belongs to another thread's loop, in that loop, if it still runs."""
    loop = state.loop
    if loop is None or loop.is_closed() or not loop.is_running():
        state.closed = True  # its loop is gone: nothing can be sent or awaited there any more
        return
    import asyncio

    import anyio

    future = asyncio.run_coroutine_threadsafe(state.close(services, timeout), loop)
    try:
        await anyio.to_thread.run_sync(functools.partial(future.result, timeout + 1.0))
    except Exception:
        logger.warning("closing the pool of another event loop failed or timed out", exc_info=True)
