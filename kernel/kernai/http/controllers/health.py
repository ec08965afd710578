"""Liveness, readiness and version: public routes of the core, for probes and load balancers."""

from __future__ import annotations

from litestar import Controller, get
from litestar.exceptions import HTTPException
from msgspec import Struct

from kernai import __version__
from kernai.http.routes import RouteClass, route_opt
from kernai.manager import ModelManager


class Health(Struct):
    status: str


class VersionInfo(Struct):
    name: str
    version: str


class HealthController(Controller):
    """Liveness, readiness and version: public, for probes and load balancers."""

    tags = ["system"]
    opt = route_opt(RouteClass.PUBLIC)

    @get("/healthz", summary="Liveness")
    async def healthz(self) -> Health:
        return Health("ok")

    @get("/readyz", summary="Readiness: the model configs are loaded")
    async def readyz(self, manager: ModelManager) -> Health:
        if not manager.ready:
            raise HTTPException(status_code=503, detail="not ready")
        return Health("ready")

    @get(["/version", "/v1/version"], summary="Server version")
    async def version(self) -> VersionInfo:
        return VersionInfo("kernai", __version__)
