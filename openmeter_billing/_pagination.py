"""Page objects for OpenMeter's page/pageSize lists.

``await client.customers.list()`` gives the first `AsyncPage`; ``async for c in
client.customers.list()`` walks every item of every page. Pages are objects (not async
generators) so the sync facade can drive them too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["AsyncPage", "AsyncPaginator", "PageFetcher"]

#: Fetches page number ``n`` (1-based).
PageFetcher = Callable[[int], Awaitable["AsyncPage[T]"]]


class AsyncPage(Generic[T]):
    """One page of results.

    Attributes:
        items: The items on this page.
        page: This page's number (1-based).
        page_size: The requested page size.
        total_count: How many items exist in all pages, as the server reports it.
    """

    def __init__(
        self,
        *,
        items: list[T],
        page: int,
        page_size: int,
        total_count: int,
        fetch: PageFetcher[T],
    ) -> None:
        self.items = items
        self.page = page
        self.page_size = page_size
        self.total_count = total_count
        self._fetch = fetch

    def __repr__(self) -> str:
        return (
            f"<AsyncPage page={self.page} items={len(self.items)} "
            f"page_size={self.page_size} total_count={self.total_count}>"
        )

    def has_next_page(self) -> bool:
        """Whether another page holds more items."""
        return bool(self.items) and self.page * self.page_size < self.total_count

    async def get_next_page(self) -> AsyncPage[T]:
        """Fetch the following page; raises `StopAsyncIteration` if there is none."""
        if not self.has_next_page():
            raise StopAsyncIteration("no next page")
        return await self._fetch(self.page + 1)

    async def iter_pages(self) -> AsyncIterator[AsyncPage[T]]:
        """This page and every following one."""
        page: AsyncPage[T] = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = await page.get_next_page()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iter_items()

    async def _iter_items(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.items:
                yield item


class AsyncPaginator(Generic[T]):
    """What list methods return: await it for the first page, or ``async for`` over every item."""

    def __init__(self, fetch: PageFetcher[T], first_page: int = 1) -> None:
        self._fetch = fetch
        self._first_page = first_page

    async def first_page(self) -> AsyncPage[T]:
        """Fetch the first page."""
        return await self._fetch(self._first_page)

    def __await__(self) -> Generator[Any, None, AsyncPage[T]]:
        return self.first_page().__await__()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iter_items()

    async def _iter_items(self) -> AsyncIterator[T]:
        page = await self.first_page()
        async for item in page:
            yield item

    async def to_list(self) -> list[T]:
        """Every item of every page, in order."""
        return [item async for item in self]
