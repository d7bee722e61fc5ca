"""Raw ASGI and WSGI callables around `AsyncWebhooks.handle`: no framework needed."""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

if TYPE_CHECKING:
    from .handler import AsyncWebhooks, WebhookResult

__all__ = ["asgi_app", "wsgi_app"]


def _provider_of(path: str, fixed: str | None) -> str:
    return fixed or path.rstrip("/").rsplit("/", 1)[-1]


def _json(result: WebhookResult) -> bytes:
    return json.dumps(
        {"outcome": result.outcome, "reason": result.reason, "delivery_id": result.delivery_id}
    ).encode()


def asgi_app(webhooks: AsyncWebhooks, provider: str | None) -> Callable[..., Awaitable[None]]:
    async def app(
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _send(send, 405, b'{"outcome": "invalid", "reason": "POST only"}')
            return
        chunks, more = [], True
        limit = max(
            (getattr(p, "max_body_bytes", 1_048_576) for p in webhooks.providers.values()),
            default=1_048_576,
        )
        size = 0
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send(send, 413, b'{"outcome": "invalid", "reason": "body_too_large"}')
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        name = _provider_of(scope.get("path", ""), provider)
        result = await webhooks.handle(name, headers=headers, body=b"".join(chunks))
        await _send(send, result.http_status, _json(result))

    return app


async def _send(
    send: Callable[[dict[str, Any]], Awaitable[None]], status: int, body: bytes
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Portal:
    """One event loop thread for the WSGI app, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._cm: Any = None

    def get(self) -> BlockingPortal:
        with self._lock:
            if self._portal is None:
                self._cm = start_blocking_portal()
                self._portal = self._cm.__enter__()
            return self._portal


def wsgi_app(
    webhooks: AsyncWebhooks,
    provider: str | None,
    run: Callable[[Callable[[], Awaitable[WebhookResult]]], WebhookResult] | None = None,
) -> Callable[..., Iterable[bytes]]:
    portal = _Portal()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            start_response("405 Method Not Allowed", [("Content-Type", "application/json")])
            return [b'{"outcome": "invalid", "reason": "POST only"}']
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = [
            (k[5:].replace("_", "-").lower(), v)
            for k, v in environ.items()
            if k.startswith("HTTP_")
        ]
        if environ.get("CONTENT_TYPE"):
            headers.append(("content-type", environ["CONTENT_TYPE"]))
        name = _provider_of(environ.get("PATH_INFO", ""), provider)

        def call() -> Awaitable[WebhookResult]:
            return webhooks.handle(name, headers=headers, body=body)

        result = run(call) if run is not None else portal.get().call(call)
        start_response(
            f"{result.http_status} {_REASONS.get(result.http_status, 'Status')}",
            [("Content-Type", "application/json")],
        )
        return [_json(result)]

    return app


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
