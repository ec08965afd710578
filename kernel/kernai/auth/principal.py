"""Who made the current request, carried in a context variable from the HTTP gate to the model manager."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum

from kernai.errors import Forbidden


class KeyKind(StrEnum):
    MANAGEMENT = "management"
    INFERENCE = "inference"


@dataclass(frozen=True)
class Principal:
    """An authenticated API key: its kind, its id (``None`` for keys from the config) and its models."""

    kind: KeyKind
    key_id: int | None = None
    name: str = "config"
    instances: frozenset[str] | None = None
    """The models this key may use; ``None``: all of them."""

    def allows(self, model: str) -> bool:
        return self.kind is KeyKind.MANAGEMENT or self.instances is None or model in self.instances


@dataclass
class RequestContext:
    """Facts about the request in flight that the manager reads and fills in."""

    principal: Principal | None = None
    models: list[str] = field(default_factory=list)


current_request: ContextVar[RequestContext | None] = ContextVar("kernai_request", default=None)


def authorize_model(model: str) -> None:
    """Note that the current request uses ``model``; 403 when its API key may not."""
    context = current_request.get()
    if context is None:
        return
    if model not in context.models:
        context.models.append(model)
    if context.principal is not None and not context.principal.allows(model):
        raise Forbidden(f"This API key may not use model '{model}'")
