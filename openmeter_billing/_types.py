"""Sentinels and small shared types."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Final, Literal, TypeAlias, TypeVar, cast

import httpx
from typing_extensions import override

__all__ = ["NOT_GIVEN", "MaybeAwaitable", "NotGiven", "TimeoutTypes", "maybe_await"]

T = TypeVar("T")


class NotGiven:
    """ "Not passed": use the client's default.

    Distinct from ``None``, which means "explicitly none" (for a timeout: wait forever)::

        client.with_options(timeout=None)       # no timeout at all
        client.with_options()                   # keep the client's timeout (NOT_GIVEN)
    """

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    @override
    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()

TimeoutTypes: TypeAlias = float | httpx.Timeout | None
MaybeAwaitable: TypeAlias = T | Awaitable[T]


async def maybe_await(value: MaybeAwaitable[T]) -> T:
    """The value of a user callback that may be sync or async (resolvers, mappers, hooks)."""
    if inspect.isawaitable(value):
        return await cast(Awaitable[T], value)
    return value
