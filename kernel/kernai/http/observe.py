"""The gate's watch over one HTTP exchange: body sizes against the route's limit, the configured extra
response headers, the status, excerpts of both bodies; then a metric sample and a trace."""

from __future__ import annotations

import time
from typing import Any

from litestar.types import HTTPScope, Message, Receive, ReceiveMessage, Send

from kernai.auth.principal import Caller
from kernai.errors import PayloadTooLarge
from kernai.observability.metrics import Metrics
from kernai.observability.traces import TraceRing

DRAIN_LIMIT = 1 << 20
UI_POLL_HEADER = b"x-kernai-ui-poll"
"""A read (GET, HEAD) that carries ``X-Kernai-UI-Poll: 1`` is the web UI refreshing what a page shows
(the Models and Instances pages, a job's progress): counted in the metrics, not traced, so that
``/api/traces`` keeps the requests someone made."""


def is_ui_poll(scope: HTTPScope) -> bool:
    """Whether the request is a read that the web UI marked as its own polling."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    return any(name == UI_POLL_HEADER and value == b"1" for name, value in scope.get("headers") or [])


async def drain(receive: Receive, last: ReceiveMessage | None = None) -> None:
    """Read (and drop) up to ``DRAIN_LIMIT`` more bytes of a refused body, so that the client, still
    sending, reads the error instead of a reset connection."""
    drained = 0
    while (last is None or last.get("more_body", False)) and drained < DRAIN_LIMIT:
        last = await receive()
        if last["type"] != "http.request":
            return
        drained += len(last.get("body", b""))


def _excerpt(kept: bytearray, total: int) -> str:
    text = kept.decode(errors="replace")
    return text if total <= len(kept) else f"{text}... [truncated, {total} bytes in all]"


class Exchange:
    """The ``receive`` and ``send`` of one request, watched: a body over ``limit`` bytes is a 413, the
    first ``keep`` bytes of each body are kept, ``headers`` are added to the response where it lacks them."""

    def __init__(
        self,
        receive: Receive,
        send: Send,
        *,
        path: str,
        limit: int,
        keep: int,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self._receive = receive
        self._send = send
        self.path = path
        self.limit = limit
        self.keep = keep
        self.headers = headers
        self.status = 500
        self.started = False
        self.request_body = bytearray()
        self.response_body = bytearray()
        self.request_size = 0
        self.response_size = 0

    async def receive(self) -> ReceiveMessage:
        message = await self._receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            self.request_size += len(chunk)
            if self.request_size > self.limit:
                await drain(self._receive, message)
                raise PayloadTooLarge(f"Request body over the limit of {self.limit} bytes for {self.path}")
            if len(self.request_body) < self.keep:
                self.request_body.extend(chunk[: self.keep - len(self.request_body)])
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status, self.started = message["status"], True
            if self.headers:
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in self.headers if k not in present]
                if added:
                    message = {**message, "headers": [*message.get("headers", []), *added]}
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            self.response_size += len(body)
            if len(self.response_body) < self.keep:
                self.response_body.extend(body[: self.keep - len(self.response_body)])
        await self._send(message)

    def excerpts(self) -> tuple[str, str]:
        return (
            _excerpt(self.request_body, self.request_size),
            _excerpt(self.response_body, self.response_size),
        )


class Recorder:
    """Request metrics for every routed request, and a trace for those whose route is traced (but the web
    UI's polling)."""

    def __init__(self, metrics: Metrics, traces: TraceRing) -> None:
        self.metrics = metrics
        self.traces = traces

    def record(
        self, scope: HTTPScope, exchange: Exchange, caller: Caller, seconds: float, traced: bool
    ) -> None:
        route = scope.get("path_template") or scope["path"]
        model = ",".join(caller.models)
        method = scope["method"]
        self.metrics.requests.labels(method, route, str(exchange.status), model).inc()
        self.metrics.latency.labels(method, route, model).observe(seconds)
        if not traced or is_ui_poll(scope):
            return
        request_body, response_body = exchange.excerpts()
        trace: dict[str, Any] = {
            "time": time.time(),
            "method": method,
            "path": scope["path"],
            "route": route,
            "status": exchange.status,
            "duration_ms": round(seconds * 1000, 2),
            "model": model or None,
            "client": (scope.get("client") or (None,))[0],
            "key_id": caller.principal.key_id if caller.principal else None,
            "request": request_body,
            "response": response_body,
        }
        self.traces.add(trace)
