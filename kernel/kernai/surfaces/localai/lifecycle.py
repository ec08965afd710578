"""LocalAI's model switches: ``PUT /api/models/{name}/{action}`` (enable, disable) and toggle-pinned."""

from __future__ import annotations

from litestar import Controller, put
from msgspec import Struct

from kernai.errors import InvalidRequest
from kernai.http.routes import RouteClass, route_opt
from kernai.manager import ModelManager

STATE_ACTIONS = {"enable": False, "disable": True}
PIN_ACTIONS = {"pin": True, "unpin": False}


class ToggleResult(Struct):
    success: bool
    message: str
    model: str
    disabled: bool
    pinned: bool


def _action(action: str, choices: dict[str, bool]) -> bool:
    if action not in choices:
        raise InvalidRequest(f"Unknown action '{action}': use {' or '.join(choices)}", param="action")
    return choices[action]


class LifecycleController(Controller):
    path = "/api/models"
    tags = ["localai"]
    opt = route_opt(RouteClass.MANAGEMENT)

    @put(
        ["/{name:str}/{action:str}", "/toggle-state/{name:str}/{action:str}"],
        summary="Enable or disable a model (a disabled model stops and refuses requests)",
    )
    async def toggle_state(self, name: str, action: str, manager: ModelManager) -> ToggleResult:
        model = await manager.set_flag(name, "disabled", _action(action, STATE_ACTIONS))
        return ToggleResult(
            True, f"model '{name}' {action}d", name, model.config.disabled, model.config.pinned
        )

    @put(
        "/toggle-pinned/{name:str}/{action:str}",
        summary="Pin a model (never evicted or idle-unloaded) or unpin it",
    )
    async def toggle_pinned(self, name: str, action: str, manager: ModelManager) -> ToggleResult:
        model = await manager.set_flag(name, "pinned", _action(action, PIN_ACTIONS))
        return ToggleResult(
            True, f"model '{name}' {action}ned", name, model.config.disabled, model.config.pinned
        )
