"""What a route declares about itself in Litestar's ``opt``: its class, its error format, whether it is
traced.

Set once on a router or controller, whose handlers inherit it, with :func:`route_opt`::

    Router("/", route_handlers=[MessagesController], opt=route_opt(RouteClass.INFERENCE, errors=my_shape))

The gate (:mod:`kernai.http.gate`) and the error handlers (:mod:`kernai.http.errors`) read it from the
handler the request matched (``scope["route_handler"]``), never from the path. A route that declares
no class is ``management``, the safe default: it takes a management key when management auth is on. One
that declares no error format answers in OpenAI's shape, as a request that matches no route does.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from litestar.handlers import BaseRouteHandler
from litestar.types import Scope

from kernai.http.errors import ERROR_SHAPE, ErrorShape

ROUTE_CLASS = "kernai_route_class"
TRACED = "kernai_traced"
PROXIED_PATH = "kernai_proxied_path"
"""``opt`` key of a handler that forwards the request to another route of the app (llamactl's instance
proxy): the name of its path parameter that holds that route's path, whose body limit applies."""


class RouteClass(StrEnum):
    """Who may call a route: anyone (``public``), or the holder of an inference or a management key, when
    that kind of auth is on."""

    PUBLIC = "public"
    """Health, version, docs: no key, not traced."""
    INFERENCE = "inference"
    """Model requests: any key, when ``require_inference_auth`` is on."""
    MANAGEMENT = "management"
    """Everything else: a management key, when ``require_management_auth`` is on."""


def route_opt(
    route_class: RouteClass, *, errors: ErrorShape | None = None, traced: bool | None = None
) -> dict[str, Any]:
    """The ``opt`` of a router, controller or handler: its class, its error format (OpenAI's when
    ``None``) and whether its requests go to ``/api/traces`` (every route but a public one when ``None``)."""
    opt: dict[str, Any] = {ROUTE_CLASS: route_class}
    if errors is not None:
        opt[ERROR_SHAPE] = errors
    if traced is not None:
        opt[TRACED] = traced
    return opt


def route_class(handler: BaseRouteHandler) -> RouteClass:
    return RouteClass(handler.opt.get(ROUTE_CLASS, RouteClass.MANAGEMENT))


def is_traced(handler: BaseRouteHandler, kind: RouteClass) -> bool:
    return bool(handler.opt.get(TRACED, kind is not RouteClass.PUBLIC))


def limited_path(scope: Scope) -> str:
    """The path whose body limit applies to the request: that of the route a proxy forwards it to, else
    its own."""
    param = scope["route_handler"].opt.get(PROXIED_PATH)
    if param is None:
        return scope["path"]
    return "/" + str(scope["path_params"][param]).strip("/")
