"""``GET /v1/models``: every configured model, and the configs that failed with their errors."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from msgspec import Struct

from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import instance_of
from kernai.instances import created_at, file_time
from kernai.manager import ManagedModel, ModelManager


class ModelStatus(Struct, omit_defaults=True):
    state: str
    error: str | None = None


class ModelCard(Struct):
    id: str
    owned_by: str
    status: ModelStatus
    capabilities: list[str]
    object: str = "model"
    created: int = 0


class ModelList(Struct):
    data: list[ModelCard]
    object: str = "list"


def model_card(model: ManagedModel, manager: ModelManager) -> ModelCard:
    return ModelCard(
        id=model.name,
        owned_by=model.config.backend,
        status=ModelStatus(model.state.value, model.last_error),
        capabilities=[c.value for c in model.backend.backend.capabilities],
        created=created_at(model.config, manager.instances),
    )


class ModelsController(Controller):
    tags = ["openai"]
    opt = route_opt(RouteClass.INFERENCE)

    @get(["/v1/models", "/models"], summary="List models (OpenAI format)")
    async def list_models(self, request: Request[Any, Any, Any], manager: ModelManager) -> ModelList:
        """Every model; through llamactl's instance proxy, the instance alone, as its own server would."""
        if (instance := instance_of(request.scope)) is not None:
            return ModelList([model_card(manager.get(instance), manager)])
        cards = [model_card(model, manager) for model in manager.models.values()]
        cards += [
            ModelCard(
                id=error.model,
                owned_by="kernai",
                status=ModelStatus("error", str(error)),
                capabilities=[],
                created=file_time(error.file),
            )
            for error in manager.config_errors
        ]
        return ModelList(cards)
