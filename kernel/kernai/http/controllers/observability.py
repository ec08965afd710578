"""``/metrics`` (Prometheus), request and backend traces, backend logs and their live WebSocket."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Response, WebSocket, get, post, websocket
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import WebSocketDisconnect
from msgspec import Struct

from kernai.http.routes import RouteClass, route_opt
from kernai.http.wire import QueryInt64
from kernai.manager import ModelManager
from kernai.observability.metrics import CONTENT_TYPE
from kernai.observability.traces import TraceRing

LIVE_QUEUE = 1000


def provide_traces(state: State) -> TraceRing:
    return state["traces"]


class Cleared(Struct):
    cleared: int


class ModelLogs(Struct):
    model: str
    status: str
    lines: list[str]


class LogSummary(Struct):
    model: str
    status: str
    lines: int


class ObservabilityController(Controller):
    tags = ["observability"]
    opt = route_opt(RouteClass.MANAGEMENT, traced=False)
    dependencies = {"traces": Provide(provide_traces, sync_to_thread=False)}

    @get("/metrics", summary="Prometheus metrics", media_type=CONTENT_TYPE)
    async def metrics(self, manager: ModelManager) -> Response[bytes]:
        manager.update_metrics()
        return Response(manager.metrics.render(), media_type=CONTENT_TYPE)

    @get("/api/traces", summary="Recent requests and responses (bodies truncated, keys never recorded)")
    async def traces(self, traces: TraceRing) -> list[dict[str, Any]]:
        return traces.list()

    @post("/api/traces/clear", summary="Forget the recorded requests", status_code=200)
    async def clear_traces(self, traces: TraceRing) -> Cleared:
        return Cleared(traces.clear())

    @get("/api/backend-traces", summary="Recent backend calls: model, capability, timings, tokens, errors")
    async def backend_traces(self, manager: ModelManager) -> list[dict[str, Any]]:
        return manager.backend_traces.list()

    @post("/api/backend-traces/clear", summary="Forget the recorded backend calls", status_code=200)
    async def clear_backend_traces(self, manager: ModelManager) -> Cleared:
        return Cleared(manager.backend_traces.clear())

    @get("/api/backend-logs", summary="Every model's log size and status")
    async def backend_logs(self, manager: ModelManager) -> list[LogSummary]:
        return [LogSummary(m.name, m.status, len(m.logs)) for m in manager.models.values()]

    @get(
        "/api/backend-logs/{model:str}", summary="A model's worker log (the last `lines`, all when negative)"
    )
    async def model_logs(self, model: str, manager: ModelManager, lines: QueryInt64 = -1) -> ModelLogs:
        managed = manager.get(model)
        return ModelLogs(model, managed.status, list(managed.logs) if lines < 0 else managed.log_tail(lines))

    @post("/api/backend-logs/{model:str}/clear", summary="Clear a model's worker log", status_code=200)
    async def clear_model_logs(self, model: str, manager: ModelManager) -> Cleared:
        logs = manager.get(model).logs
        count = len(logs)
        logs.clear()
        return Cleared(count)

    @websocket("/ws/backend-logs/{model:str}")
    async def live_logs(
        self, socket: WebSocket[Any, Any, Any], model: str, manager: ModelManager, tail: QueryInt64 = 0
    ) -> None:
        """Stream a model's log lines as text messages: the last ``tail`` lines, then each new one."""
        managed = manager.models.get(model)
        if managed is None:
            await socket.close(code=1008, reason=f"model '{model}' not found")
            return
        await socket.accept()
        lines: asyncio.Queue[str] = asyncio.Queue(LIVE_QUEUE)

        def listen(line: str) -> None:
            if not lines.full():
                lines.put_nowait(line)

        for line in managed.log_tail(tail):
            listen(line)
        managed.log_listeners.add(listen)

        async def pump() -> None:
            while True:
                await socket.send_text(await lines.get())

        sender = asyncio.create_task(pump())
        try:
            while True:
                await socket.receive_data(mode="text")
        except WebSocketDisconnect:
            pass
        finally:
            managed.log_listeners.discard(listen)
            sender.cancel()
