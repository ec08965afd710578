"""Dependencies the controllers receive by name."""

from __future__ import annotations

from litestar.datastructures import State

from kernai.manager import ModelManager
from kernai.plugins import PluginRegistry
from kernai.settings import Settings


def provide_manager(state: State) -> ModelManager:
    return state.manager


def provide_settings(state: State) -> Settings:
    return state.settings


def provide_registry(state: State) -> PluginRegistry:
    return state.registry
