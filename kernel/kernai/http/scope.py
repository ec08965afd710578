"""What the gate and the instance proxy leave on a request's scope for its handler: the caller, and the
instance a proxied request is for.

Handlers receive the caller as the ``caller`` dependency and hand it to the model manager
(``manager.predict(model, request, caller=caller)``), which checks that its key may use the model and
notes the model for the request's metrics and trace.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.types import Scope

from kernai.auth.principal import Caller

CALLER = "kernai_caller"
INSTANCE = "kernai_instance"


def set_caller(scope: Scope, caller: Caller) -> None:
    scope["state"][CALLER] = caller


def caller_of(scope: Scope) -> Caller:
    """The request's caller, which the gate set (every route is behind it)."""
    caller: Caller = scope["state"][CALLER]
    return caller


def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    """The ``caller`` dependency."""
    return caller_of(request.scope)


def set_instance(scope: Scope, name: str) -> None:
    """Mark a request forwarded by llamactl's instance proxy as one to instance ``name``'s own server."""
    scope["state"][INSTANCE] = name


def instance_of(scope: Scope) -> str | None:
    """The instance whose own server a proxied request addresses; ``None`` for a request to kernai."""
    instance: str | None = scope["state"].get(INSTANCE)
    return instance
