"""An asyncio event loop in a daemon thread: how the sync facade runs the async client.

Why not anyio's blocking portal: its loop thread is not a daemon, so a script that never closes
its client waits for that thread at interpreter exit, forever. Here the thread is a daemon and a
`weakref.finalize` (which also runs at exit) drains and stops it within a bound; an unclosed
client costs at most that bound at exit. After ``os.fork()`` the child has no such thread: the
first call there starts a new one and leaves the inherited loop untouched.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._exceptions import ConfigurationError
from ._runtime import abandon, fork_generation

__all__ = ["LoopThread"]

logger = logging.getLogger("openmeter_billing")

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on a private event loop for blocking callers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._start()

    def _start(self) -> None:
        self._generation = fork_generation()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=_run_forever, args=(self.loop,), name="openmeter-billing-sync", daemon=True
        )
        self.thread.start()

    @property
    def closed(self) -> bool:
        """Whether `stop` ran."""
        return self._closed

    def run(self, func: Callable[[], Awaitable[T]]) -> T:
        """Run ``func()`` on the loop and wait for its result (Ctrl-C cancels it)."""
        if self._closed:
            raise ConfigurationError(
                "this SyncOpenMeterBilling is closed; create a new one (copies made with "
                "with_options() close with the client they came from)"
            )
        if self._generation != fork_generation():
            self._restart_after_fork()
        if threading.current_thread() is self.thread:
            raise ConfigurationError(
                "the sync client was called from its own event loop thread (for example from "
                "an async identity resolver); use the async OpenMeterBilling there"
            )
        future = asyncio.run_coroutine_threadsafe(_call(func), self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def _restart_after_fork(self) -> None:
        with self._lock:
            if self._generation != fork_generation():
                abandon((self.loop, self.thread))  # the parent's; its thread does not exist here
                self._start()

    def stop(self, last: Callable[[], Awaitable[object]] | None, timeout: float) -> None:
        """Run ``last()`` (bounded), then stop the loop and join the thread (bounded)."""
        if self._closed:
            return
        self._closed = True
        if self._generation != fork_generation() or not self.thread.is_alive():
            return  # inherited from a parent process, or the loop is already gone
        if last is not None:
            future = asyncio.run_coroutine_threadsafe(_call(last), self.loop)
            try:
                future.result(timeout)
            except concurrent.futures.TimeoutError:
                future.cancel()
                logger.warning("closing the sync client took longer than %.1f s", timeout)
            except Exception:
                logger.warning("closing the sync client failed", exc_info=True)
        if threading.current_thread() is self.thread:
            self.loop.call_soon(self.loop.stop)  # collected on the loop itself: cannot wait here
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        if not self.thread.is_alive():
            self.loop.close()


async def _call(func: Callable[[], Awaitable[T]]) -> T:
    return await func()


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        with contextlib.suppress(Exception):  # best effort at the end of the thread
            loop.run_until_complete(loop.shutdown_asyncgens())
