"""llamactl's management API under ``/api/v1`` (instances and their proxy, version, config, nodes): a
default plugin. Errors are ``{"error": "..."}``; every route is a management route.

:mod:`.controller` serves the instances, :mod:`.proxy` an instance's own server, :mod:`.schemas` holds
the wire structs. llamactl's API key routes (``/api/v1/auth``) are the core's.
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
    from kernai.surfaces.llamactl.controller import InstancesController
    from kernai.surfaces.llamactl.proxy import InstanceProxyController

    policy = route_opt(RouteClass.MANAGEMENT, errors=llamactl_shape)
    return [Router("/api/v1", route_handlers=[InstancesController, InstanceProxyController], opt=policy)]
