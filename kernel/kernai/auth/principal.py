"""Who makes a request: the HTTP gate finds out, handlers hand it to the model manager explicitly."""

from __future__ import annotations

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
class Caller:
    """The caller of one request: its key's principal (``None`` when the route needed no key), and the
    models the request used, which label its metrics and trace. The gate makes one per request."""

    principal: Principal | None = None
    models: list[str] = field(default_factory=list)

    def use(self, model: str) -> None:
        """Note that the request uses ``model``; 403 when its API key may not."""
        if model not in self.models:
            self.models.append(model)
        if self.principal is not None and not self.principal.allows(model):
            raise Forbidden(f"This API key may not use model '{model}'")
