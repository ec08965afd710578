"""Open Responses: ``POST /v1/responses``, ``GET``/``DELETE /v1/responses/{id}``,
``GET /v1/responses/{id}/input_items``, ``POST /v1/responses/{id}/cancel``.

Stored responses (``store``, the default) live in SQLite in the data directory together with their
conversation, which ``previous_response_id`` continues. ``background`` responses run as server tasks
that ``GET`` polls and ``cancel`` stops.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Stream
from litestar.types import Scope

from kernai import capabilities as cap
from kernai.auth.principal import Caller
from kernai.errors import InvalidRequest, KernaiError
from kernai.http.inference import prefetch, sse_response
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.manager import ModelManager
from kernai.surfaces.responses import schemas as wire
from kernai.surfaces.responses.store import ResponseStore, StoredResponse, provide_store
from kernai.surfaces.responses.translate import (
    apply_result,
    assistant_turn,
    chat_request,
    input_messages,
    listed_items,
    new_response,
    response_events,
)


class ResponseNotFound(KernaiError):
    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, response_id: str, param: str | None = None) -> None:
        super().__init__(
            f"Response with id '{response_id}' not found.", param=param, code="response_not_found"
        )


# --- the controller --------------------------------------------------------------------------------


async def _run_background(
    manager: ModelManager,
    caller: Caller,
    store: ResponseStore,
    stored: StoredResponse,
    request: cap.ChatRequest,
) -> None:
    """Run a background response as a stream, so that cancelling the task stops it in the worker."""
    stored.response.status = "in_progress"
    store.save(stored)
    chunks = manager.stream(
        stored.response.model, msgspec.structs.replace(request, stream=True), caller=caller
    )
    try:
        async for _ in response_events(chunks, stored, store):
            pass
    finally:
        store.tasks.pop(stored.response.id, None)


def _stored(store: ResponseStore, response_id: str) -> StoredResponse:
    stored = store.get(response_id)
    if stored is None:
        raise ResponseNotFound(response_id)
    return stored


class ResponsesController(Controller):
    path = "/v1/responses"
    tags = ["open responses"]
    opt = route_opt(RouteClass.INFERENCE)
    dependencies = {"response_store": Provide(provide_store, sync_to_thread=False)}

    @post("/", summary="Create a response (Open Responses)", status_code=200)
    async def create(
        self, data: wire.CreateResponse, manager: ModelManager, scope: Scope, response_store: ResponseStore
    ) -> Response[wire.ResponseObject] | Stream:
        caller = caller_of(scope)
        model = manager.get(data.model, caller=caller)
        if data.background and not data.store:
            raise InvalidRequest("background responses need store=true", param="background")
        if data.background and data.stream:
            raise InvalidRequest(
                "background responses cannot be streamed here; poll GET /v1/responses/{id}", param="stream"
            )
        history: list[cap.ChatMessage] = []
        if data.previous_response_id:
            previous = response_store.get(data.previous_response_id)
            if previous is None:
                raise ResponseNotFound(data.previous_response_id, param="previous_response_id")
            if previous.response.status not in ("completed", "incomplete"):
                raise InvalidRequest(
                    f"Previous response is {previous.response.status}", param="previous_response_id"
                )
            history = list(previous.history)
        history += input_messages(data.input)
        request = chat_request(data, history, model.config.parameters)
        stored = StoredResponse(
            response=new_response(data, "queued" if data.background else "in_progress"),
            history=history,
            input_items=listed_items(data.input),
        )
        if data.background:
            response_store.save(stored)
            snapshot = msgspec.structs.replace(stored.response)
            response_store.tasks[stored.response.id] = asyncio.create_task(
                _run_background(manager, caller, response_store, stored, request)
            )
            return Response(snapshot)
        if data.stream:
            chunks = await prefetch(manager.stream(data.model, request, caller=caller))
            if data.store:
                response_store.save(stored)
            return sse_response(response_events(chunks, stored, response_store if data.store else None))
        result = await manager.predict(data.model, request, caller=caller)
        assert isinstance(result, cap.ChatResult)
        apply_result(stored.response, result)
        stored.history.append(assistant_turn(stored.response.output))
        if data.store:
            response_store.save(stored)
        return Response(stored.response)

    @get("/{response_id:str}", summary="Retrieve a stored response")
    async def retrieve(self, response_id: str, response_store: ResponseStore) -> wire.ResponseObject:
        return _stored(response_store, response_id).response

    @get("/{response_id:str}/input_items", summary="List the input items of a stored response")
    async def input_items(
        self,
        response_id: str,
        response_store: ResponseStore,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
    ) -> wire.InputItemList:
        items = _stored(response_store, response_id).input_items
        items = items[::-1] if order == "desc" else items
        if after is not None:
            position = next((i for i, item in enumerate(items) if item["id"] == after), None)
            if position is None:
                raise InvalidRequest(f"No input item with id '{after}'", param="after")
            items = items[position + 1 :]
        page = items[:limit]
        return wire.InputItemList(
            data=page,
            first_id=page[0]["id"] if page else None,
            last_id=page[-1]["id"] if page else None,
            has_more=len(items) > limit,
        )

    @delete("/{response_id:str}", summary="Delete a stored response", status_code=200)
    async def remove(self, response_id: str, response_store: ResponseStore) -> wire.DeletedResponse:
        if (task := response_store.tasks.get(response_id)) is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if not response_store.delete(response_id):
            raise ResponseNotFound(response_id)
        return wire.DeletedResponse(id=response_id)

    @post("/{response_id:str}/cancel", summary="Cancel a background response", status_code=200)
    async def cancel(self, response_id: str, response_store: ResponseStore) -> wire.ResponseObject:
        stored = _stored(response_store, response_id)
        if not stored.response.background:
            raise InvalidRequest(
                "Only responses created with background=true can be cancelled", param="response_id"
            )
        task = response_store.tasks.get(response_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            stored = _stored(response_store, response_id)
        return stored.response
