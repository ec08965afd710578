"""LocalAI's model configuration routes: ``PATCH /api/models/config-json/{name}`` (deep-merge JSON into a
model's config), ``GET /api/models/config-metadata`` (each config key, generated from
:class:`~kernai.config.ModelConfig` and the backends' declared options) and its autocomplete providers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from litestar import Controller, get, patch
from litestar.exceptions import NotFoundException
from msgspec import Struct

from kernai.capabilities import Capability
from kernai.config import (
    SECTIONS,
    InvalidConfig,
    ModelConfig,
    dump_model_config,
    parse_model_config,
    write_atomically,
)
from kernai.config_metadata import FieldMetadata, config_fields
from kernai.errors import InvalidRequest
from kernai.http.routes import RouteClass, route_opt
from kernai.instances import instance_source, is_instance
from kernai.manager import ModelManager
from kernai.plugins import PluginRegistry

MODEL_PROVIDERS = {
    "models": None,
    "models:chat": Capability.CHAT,
    "models:completion": Capability.COMPLETION,
    "models:embeddings": Capability.EMBEDDINGS,
    "models:tokenize": Capability.TOKENIZE,
    "models:apply_template": Capability.APPLY_TEMPLATE,
    "models:tts": Capability.SPEECH,
    "models:transcript": Capability.TRANSCRIPTION,
    "models:vad": Capability.VAD,
    "models:rerank": Capability.RERANK,
    "models:detection": Capability.DETECTION,
}
"""LocalAI's model providers, and kernai's other capabilities the same way."""


class ConfigUpdated(Struct):
    success: bool
    message: str
    filename: str
    config: dict[str, Any]
    restarted: bool


class Section(Struct):
    id: str
    label: str
    url: str


class SectionIndex(Struct):
    sections: list[Section]
    hint: str


class FieldList(Struct):
    section: str
    fields: list[FieldMetadata]


class AutocompleteValues(Struct):
    provider: str
    values: list[str]


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` merged in: mappings merge key by key, ``null`` removes a key, anything else
    replaces."""
    merged = dict(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _stored_config(config: ModelConfig, manager: ModelManager) -> dict[str, Any]:
    """The mapping the model's config was read from: its instance row or its YAML file."""
    if is_instance(config):
        return {**(manager.instances.data(config.name) or {}), "name": config.name}
    assert config.source is not None
    data = yaml.safe_load(Path(config.source).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


class ConfigEditController(Controller):
    path = "/api/models"
    tags = ["localai"]
    opt = route_opt(RouteClass.MANAGEMENT)

    @patch(
        "/config-json/{name:str}",
        summary="Deep-merge JSON into a model's config (validated, written atomically, reloaded)",
    )
    async def patch_config(self, name: str, data: dict[str, Any], manager: ModelManager) -> ConfigUpdated:
        """``null`` removes a key. Nothing is written unless the merged config is valid (400 naming the
        key); a running worker restarts only when a key it depends on changed."""
        model = manager.get(name)
        if "name" in data and data["name"] != name:
            raise InvalidRequest("A model cannot be renamed through its config", param="name")
        merged = deep_merge(_stored_config(model.config, manager), data)
        merged["name"] = name
        source = instance_source(name) if is_instance(model.config) else str(model.config.source)
        try:
            parse_model_config(
                merged,
                file=source,
                models_dir=manager.settings.models_path,
                backends=manager.registry.backend_map(),
            )
        except InvalidConfig as exc:
            raise InvalidRequest(f"Invalid config: {exc.error}", param=exc.error.field) from None
        was_running = model.running
        if is_instance(model.config):
            manager.instances.put(name, {k: v for k, v in merged.items() if k != "name"})
        else:
            write_atomically(Path(source), dump_model_config(merged))
        manager.reload()
        reloaded = manager.get(name)
        restarted = was_running and not reloaded.running and not reloaded.config.disabled
        if restarted:
            await manager.start_model(name)
        return ConfigUpdated(True, f"Model '{name}' configuration updated", source, merged, restarted)

    @get("/config-metadata", summary="Model-config keys: type, default, description, section, backend")
    async def config_metadata(
        self, registry: PluginRegistry, section: str | None = None
    ) -> SectionIndex | FieldList:
        """Without ``section``: the sections. With one (or ``all``): its keys, generated from the config
        structs and the installed backends' declared options."""
        if section is None:
            return SectionIndex(
                [
                    Section(key, label, f"/api/models/config-metadata?section={key}")
                    for key, label in SECTIONS.items()
                ],
                "Ask for one section, or section=all for every key",
            )
        if section != "all" and section not in SECTIONS:
            raise InvalidRequest(
                f"Unknown section '{section}': use {', '.join(SECTIONS)} or all", param="section"
            )
        fields = config_fields(registry)
        return FieldList(section, [f for f in fields if section in ("all", f.section)])

    @get("/config-metadata/autocomplete/{provider:str}", summary="Values for a config key (backends, models)")
    async def autocomplete(
        self, provider: str, manager: ModelManager, registry: PluginRegistry
    ) -> AutocompleteValues:
        if provider == "backends":
            return AutocompleteValues(provider, sorted(registry.backend_map()))
        if provider not in MODEL_PROVIDERS:
            raise NotFoundException(
                f"Unknown provider '{provider}': use backends, {', '.join(MODEL_PROVIDERS)}"
            )
        capability = MODEL_PROVIDERS[provider]
        return AutocompleteValues(
            provider,
            sorted(m.name for m in manager.models.values() if capability is None or m.supports(capability)),
        )
