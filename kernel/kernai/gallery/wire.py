"""LocalAI's gallery wire formats: ``/models/*`` and ``/backends/*``."""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

from kernai.gallery.schema import BackendVariant, FileEntry


class _Wire(Struct, kw_only=True):
    pass


class ApplyModelRequest(_Wire):
    """``POST /models/apply``: a gallery entry ``id`` (``gallery@name`` or ``name``) or a ``url``."""

    id: str | None = None
    url: str | None = None
    name: str | None = None
    """Install under this name instead of the entry's."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Merged into the installed model config."""


class ApplyBackendRequest(_Wire):
    """``POST /backends/apply``."""

    id: str
    variant: str | None = None
    """Force a hardware variant (``cpu``, ``cuda``, ``rocm``, ``metal``); detected when absent."""
    force: bool = False
    """Replace an installed backend even while a model on it is pinned or busy (its workers stop)."""


class JobRef(_Wire):
    uuid: str
    status: str
    """The URL of the job's status."""


class JobStatus(_Wire):
    """A job's progress: LocalAI's fields (sizes as text), plus byte counts and the job's state."""

    uuid: str
    kind: str
    op: str
    state: str
    gallery_element_name: str
    deletion: bool
    processed: bool
    message: str
    error: str | None
    progress: float
    file_name: str
    file_size: str
    downloaded_size: str
    file_size_bytes: int
    downloaded_bytes: int
    cancellable: bool
    cancelled: bool
    created_at: float
    updated_at: float


class GalleryInfo(_Wire, omit_defaults=True):
    name: str
    url: str
    error: str | None = None
    """Why the gallery could not be read, when it could not."""


class GalleryRef(_Wire):
    name: str
    url: str


class AvailableModel(_Wire, omit_defaults=True):
    """A gallery model, as LocalAI lists it."""

    id: str
    name: str
    gallery: GalleryRef
    installed: bool
    description: str = ""
    license: str = ""
    tags: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    icon: str | None = None
    size: str | None = None
    backend: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)


class AvailableBackend(_Wire, omit_defaults=True):
    id: str
    name: str
    gallery: GalleryRef
    installed: bool
    distribution: str
    installed_version: str | None = None
    version: str | None = None
    description: str = ""
    capabilities: list[str] = field(default_factory=list)
    license: str = ""
    urls: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    variants: dict[str, BackendVariant] = field(default_factory=dict)


class InstalledBackend(_Wire):
    """``GET /backends``: a backend a loaded plugin provides."""

    name: str
    plugin: str
    distribution: str | None
    version: str | None
    capabilities: list[str]
    description: str
    environment: str | None = None
    """The backend environment it runs in; ``null``: the server's own (a development or pip install)."""


class UpgradeInfo(_Wire):
    name: str
    distribution: str
    installed_version: str
    available_version: str
    gallery: str
