"""The configured models: one YAML file each in the models dir and llamactl's instances in SQLite, their
flags (``disabled``, ``pinned``) and the configs that could not be read."""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec

from kernai.config import ConfigError, ModelConfig, load_model_configs
from kernai.instances import InstanceStore, update_config_source
from kernai.manager.model import ManagedModel
from kernai.plugins import PluginRegistry
from kernai.settings import Settings

log = logging.getLogger(__name__)

LIVE_FIELDS = (
    "description",
    "disabled",
    "pinned",
    "on_demand_start",
    "idle_timeout",
    "auto_restart",
    "max_restarts",
    "restart_delay",
    "source",
)
"""Config keys that take effect without restarting a running worker."""


class Catalog:
    """The models by name, read from the models dir and the instances table by :meth:`reload`."""

    def __init__(
        self,
        settings: Settings,
        registry: PluginRegistry,
        instances: InstanceStore,
        on_queue_full: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.instances = instances
        self.on_queue_full = on_queue_full
        """Called for each request a model's full queue refuses (counted in the metrics)."""
        self.models: dict[str, ManagedModel] = {}
        self.errors: list[ConfigError] = []
        self.ready = False
        """Whether the configs have been read once."""

    def reload(self) -> list[ManagedModel]:
        """Re-read the models dir and the instances table; return the models whose worker must stop.

        A model whose config changed only in :data:`LIVE_FIELDS` is kept (with its worker); one whose
        config changed otherwise, or that is gone, is replaced or dropped.
        """
        backends = self.registry.backend_map()
        configs, errors = load_model_configs(self.settings.models_path, backends)
        instance_configs, instance_errors = self.instances.configs(self.settings.models_path, backends)
        errors += instance_errors
        for config in instance_configs:
            if config.name in configs:
                errors.append(
                    ConfigError(
                        config.source or config.name,
                        "name",
                        f"'{config.name}' is also defined by {configs[config.name].source}",
                    )
                )
            else:
                configs[config.name] = config
        for error in errors:
            log.warning("model config: %s", error)
        models: dict[str, ManagedModel] = {}
        for name, config in configs.items():
            current = self.models.get(name)
            backend = self.registry.backends[config.backend]
            if current is not None and same_worker(current.config, config) and current.backend == backend:
                current.config = config
                models[name] = current
            else:
                models[name] = ManagedModel(
                    config,
                    backend,
                    self.settings.queue_size,
                    self.on_queue_full,
                )
        dropped = [model for name, model in self.models.items() if models.get(name) is not model]
        self.models, self.errors, self.ready = models, errors, True
        return [model for model in dropped if model.worker is not None]

    def error_for(self, name: str) -> ConfigError | None:
        """The error of an invalid config that names model ``name``, if one does."""
        return next((error for error in self.errors if error.model == name), None)

    def set_flag(self, model: ManagedModel, flag: str, value: bool) -> list[ManagedModel]:
        """Persist ``disabled`` or ``pinned`` in the model's YAML file or instance row and reload; return
        the models whose worker must stop."""
        update_config_source(model.config, self.instances, {flag: value})
        return self.reload()


def same_worker(old: ModelConfig, new: ModelConfig) -> bool:
    """Whether ``new`` differs from ``old`` only in keys a running worker does not depend on."""
    return msgspec.structs.replace(old, **{key: getattr(new, key) for key in LIVE_FIELDS}) == new
