"""What the gate and the instance proxy leave on a request's scope for its handler: the caller, and the
instance a proxied request is for.

The caller is the scope's ``user``, where Litestar's authentication middleware would leave it: a handler
that serves a model takes the ``scope`` and hands ``caller_of(scope)`` to the model manager
(``manager.predict(model, request, caller=caller)``), which checks that its key may use the model and
notes the model for the request's metrics and trace. (Not a dependency: a second dependency beside
``manager`` makes Litestar resolve the two in a task group, some 60 µs a request.)
"""

from __future__ import annotations

from litestar.types import Scope

from kernai.auth.principal import Caller

INSTANCE = "kernai_instance"


def set_caller(scope: Scope, caller: Caller) -> None:
    scope["user"] = caller


def caller_of(scope: Scope) -> Caller:
    """The request's caller, which the gate set (every route is behind it)."""
    caller: Caller = scope["user"]
    return caller


def set_instance(scope: Scope, name: str) -> None:
    """Mark a request forwarded by llamactl's instance proxy as one to instance ``name``'s own server."""
    scope["state"][INSTANCE] = name


def instance_of(scope: Scope) -> str | None:
    """The instance whose own server a proxied request addresses; ``None`` for a request to kernai."""
    instance: str | None = scope["state"].get(INSTANCE)
    return instance
