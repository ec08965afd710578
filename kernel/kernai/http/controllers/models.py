"""``GET /v1/models``: every configured model, and the configs that failed with their errors."""

from __future__ import annotations

import os

from litestar import Controller, get
from msgspec import Struct

from kernai.http.routes import RouteClass, route_opt
from kernai.instances import is_instance
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


def file_time(path: str | None) -> int:
    """A config file's modification time (Unix seconds); 0 when there is no such file."""
    try:
        return int(os.stat(path).st_mtime) if path else 0
    except OSError:
        return 0


def created_at(model: ManagedModel, manager: ModelManager) -> int:
    """When the model was made: an instance's creation (in the database), else its config file's time."""
    row = manager.instances.row(model.name) if is_instance(model.config) else None
    return row["created_at"] if row else file_time(model.config.source)


def model_card(model: ManagedModel, manager: ModelManager) -> ModelCard:
    return ModelCard(
        id=model.name,
        owned_by=model.config.backend,
        status=ModelStatus(model.state.value, model.last_error),
        capabilities=[c.value for c in model.backend.backend.capabilities],
        created=created_at(model, manager),
    )


class ModelsController(Controller):
    tags = ["openai"]
    opt = route_opt(RouteClass.INFERENCE)

    @get(["/v1/models", "/models"], summary="List models (OpenAI format)")
    async def list_models(self, manager: ModelManager) -> ModelList:
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
