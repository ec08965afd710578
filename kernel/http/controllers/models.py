"""``GET /v1/models``: every configured model, and the configs that failed with their errors."""

from __future__ import annotations

import os

from litestar import Controller, get
from msgspec import Struct

from kernai.manager import ModelManager


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


def _created(path: str | None) -> int:
    try:
        return int(os.stat(path).st_mtime) if path else 0
    except OSError:
        return 0


class ModelsController(Controller):
    tags = ["openai"]

    @get(["/v1/models", "/models"], summary="List models (OpenAI format)")
    async def list_models(self, manager: ModelManager) -> ModelList:
        cards = [
            ModelCard(
                id=model.name,
                owned_by=model.config.backend,
                status=ModelStatus(model.state.value, model.last_error),
                capabilities=[c.value for c in model.backend.backend.capabilities],
                created=_created(model.config.source),
            )
            for model in manager.models.values()
        ]
        cards += [
            ModelCard(id=error.model, owned_by="kernai", status=ModelStatus("error", str(error)),
                      capabilities=[], created=_created(error.file))
            for error in manager.config_errors
        ]
        return ModelList(cards)
