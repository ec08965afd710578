"""API keys, in llamactl's API: ``/api/v1/auth/keys`` and ``/api/v1/auth/settings`` (management keys
only, when auth is on; errors ``{"error": "..."}``). Part of the core: the gate checks these keys."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, delete, get, post, put
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from msgspec import Struct, field

from kernai.auth.keys import ApiKey, KeyStore, PermissionMode
from kernai.auth.principal import KeyKind
from kernai.errors import InvalidRequest
from kernai.http.errors import llamactl_shape
from kernai.http.routes import RouteClass, route_opt
from kernai.http.wire import Int64
from kernai.manager import ModelManager


class KeyCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    permission_mode: Literal["allow_all", "per_instance"] = "allow_all"
    instance_ids: list[Int64] = field(default_factory=list)
    instance_names: list[str] = field(default_factory=list)
    """kernai: models by name, which also covers models defined by YAML files."""
    expires_at: Int64 | None = None
    """Unix time after which the key is refused (401)."""
    kind: Literal["inference", "management"] = "inference"


class KeyInfo(Struct, kw_only=True):
    id: int
    name: str
    kind: str
    key_prefix: str
    permission_mode: str
    expires_at: int | None
    enabled: bool
    created_at: int
    updated_at: int
    last_used_at: int | None
    instance_names: list[str]


class CreatedKey(KeyInfo, kw_only=True):
    key: str
    """The secret; shown only in this response."""


class KeyPermission(Struct):
    instance_id: int | None
    instance_name: str
    can_infer: bool = True


def provide_keys(state: State) -> KeyStore:
    return state["key_store"]


def _info(key: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        name=key.name,
        kind=key.kind,
        key_prefix=key.key_prefix,
        permission_mode=key.permission_mode,
        expires_at=key.expires_at,
        enabled=key.enabled,
        created_at=key.created_at,
        updated_at=key.updated_at,
        last_used_at=key.last_used_at,
        instance_names=key.instances,
    )


def _found(keys: KeyStore, key_id: int) -> ApiKey:
    key = keys.get(key_id)
    if key is None:
        raise NotFoundException(f"API key {key_id} not found")
    return key


class AuthSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """Whether management and inference routes need a key; a change is kept in the database."""

    require_management_auth: bool | None = None
    require_inference_auth: bool | None = None


def _auth_settings(keys: KeyStore) -> AuthSettings:
    return AuthSettings(
        require_management_auth=keys.required[KeyKind.MANAGEMENT],
        require_inference_auth=keys.required[KeyKind.INFERENCE],
    )


class AuthSettingsController(Controller):
    path = "/api/v1/auth/settings"
    tags = ["llamactl"]
    opt = route_opt(RouteClass.MANAGEMENT, errors=llamactl_shape, traced=False)
    dependencies = {"key_store": Provide(provide_keys, sync_to_thread=False)}

    @get("", summary="Whether each kind of route needs an API key")
    async def get_settings(self, key_store: KeyStore) -> AuthSettings:
        return _auth_settings(key_store)

    @put("", summary="Switch management or inference auth on or off (kept in the database)")
    async def put_settings(self, data: AuthSettings, key_store: KeyStore) -> AuthSettings:
        if data.require_management_auth is not None:
            key_store.require(KeyKind.MANAGEMENT, data.require_management_auth)
        if data.require_inference_auth is not None:
            key_store.require(KeyKind.INFERENCE, data.require_inference_auth)
        return _auth_settings(key_store)


class AuthController(Controller):
    path = "/api/v1/auth/keys"
    tags = ["llamactl"]
    opt = route_opt(RouteClass.MANAGEMENT, errors=llamactl_shape, traced=False)
    dependencies = {"key_store": Provide(provide_keys, sync_to_thread=False)}

    @get("", summary="List API keys (never their secrets)")
    async def list_keys(self, key_store: KeyStore) -> list[KeyInfo]:
        return [_info(key) for key in key_store.list()]

    @post("", summary="Create an API key; the response is the only place its secret appears", status_code=201)
    async def create_key(self, data: KeyCreate, key_store: KeyStore, manager: ModelManager) -> CreatedKey:
        if not data.name.strip():
            raise InvalidRequest("name must not be empty", param="name")
        by_id = {key_id: name for name, key_id in manager.instances.ids().items()}
        if unknown := [i for i in data.instance_ids if i not in by_id]:
            raise InvalidRequest(f"Unknown instance ids: {unknown}", param="instance_ids")
        if unknown_names := [
            n for n in data.instance_names if n not in manager.models and n not in by_id.values()
        ]:
            raise InvalidRequest(f"Unknown instances: {', '.join(unknown_names)}", param="instance_names")
        names = sorted({*(by_id[i] for i in data.instance_ids), *data.instance_names})
        key, secret = key_store.create(
            data.name, KeyKind(data.kind), PermissionMode(data.permission_mode), names, data.expires_at
        )
        info = _info(key)
        return CreatedKey(**{f: getattr(info, f) for f in info.__struct_fields__}, key=secret)

    @get("/{key_id:int}", summary="One API key")
    async def get_key(self, key_id: int, key_store: KeyStore) -> KeyInfo:
        return _info(_found(key_store, key_id))

    @delete("/{key_id:int}", summary="Delete an API key", status_code=204)
    async def delete_key(self, key_id: int, key_store: KeyStore) -> None:
        if not key_store.delete(key_id):
            raise NotFoundException(f"API key {key_id} not found")

    @get("/{key_id:int}/permissions", summary="The instances a key may use")
    async def permissions(
        self, key_id: int, key_store: KeyStore, manager: ModelManager
    ) -> list[KeyPermission]:
        key = _found(key_store, key_id)
        ids = manager.instances.ids()
        names = (
            key.instances if key.permission_mode == PermissionMode.PER_INSTANCE else sorted(manager.models)
        )
        return [KeyPermission(ids.get(name), name) for name in names]
