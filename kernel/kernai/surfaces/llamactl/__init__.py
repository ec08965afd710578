"""llamactl's API: a default plugin. The management API under ``/api/v1`` (instances and their proxy,
backends, version, config, nodes) answers errors as ``{"error": "..."}``; the llama-server routes of an
instance under ``/llama-cpp/{name}/`` (:mod:`.native`) are inference routes with llama-server's errors.

:mod:`.controller` serves the instances, :mod:`.proxy` an instance's own server, :mod:`.backends`
parse-command (:mod:`.commands` parses), :mod:`.schemas` holds the wire
structs (:mod:`.native_schemas` llama-server's). llamactl's API key routes (``/api/v1/auth``) are the
core's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kernai import hookimpl

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler


@hookimpl
def register_routes() -> Sequence[ControllerRouterHandler]:
    from litestar import Router

    from kernai.http.errors import llamactl_shape
    from kernai.http.routes import RouteClass, route_opt
    from kernai.surfaces.llamactl.backends import BackendFactsController, BackendsController
    from kernai.surfaces.llamactl.controller import InstancesController
    from kernai.surfaces.llamactl.native import LlamaCppController
    from kernai.surfaces.llamactl.native_schemas import llama_server_shape
    from kernai.surfaces.llamactl.proxy import InstanceProxyController

    management = route_opt(RouteClass.MANAGEMENT, errors=llamactl_shape)
    native = route_opt(RouteClass.INFERENCE, errors=llama_server_shape)
    return [
        Router(
            "/api/v1",
            route_handlers=[
                InstancesController,
                InstanceProxyController,
                BackendsController,
                BackendFactsController,
            ],
            opt=management,
        ),
        Router("/", route_handlers=[LlamaCppController], opt=native),
    ]
