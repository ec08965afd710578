"""Wire formats of llamactl's management API under ``/api/v1`` (instances, nodes, version); its API key
routes are the core's (:mod:`kernai.http.controllers.auth`)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

from kernai.config import Count, PositiveCount, Seconds


class InstanceOptions(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """An instance's options. ``backend_options`` holds the rest of a kernai model config
    (``parameters``, ``context_size``, backend options; ``model`` is short for ``parameters.model``).
    ``idle_timeout`` is in minutes and ``restart_delay`` in seconds, as in llamactl."""

    backend_type: str
    backend_options: dict[str, Any] = field(default_factory=dict)
    auto_restart: bool | None = None
    max_restarts: Count | None = None
    restart_delay: Seconds | None = None
    on_demand_start: bool | None = None
    idle_timeout: Seconds | None = None
    environment: dict[str, str] | None = None
    nodes: list[str] | None = None
    # kernai
    description: str | None = None
    pinned: bool | None = None
    disabled: bool | None = None
    parallel: PositiveCount | None = None
    ignored_flags: list[str] | None = None
    """parse-command's note of the command's flags kernai does not honour (each with the reason); not
    stored with the instance."""


class Instance(Struct, kw_only=True):
    name: str
    status: str
    """running, stopped, failed, restarting or shutting_down."""
    created: int
    options: InstanceOptions
    id: int | None = None
    source: str | None = None
    """``instance`` for instances made through this API, else the YAML file that defines the model."""
    pid: int | None = None
    restarts: int = 0
    active_requests: int = 0
    queued_requests: int = 0
    error: str | None = None
    log_tail: list[str] | None = None


class VersionInfo(Struct):
    version: str
    commit: str
    build_time: str


class NodeInfo(Struct):
    address: str


class ParseCommandRequest(Struct):
    command: str
