"""The ``kernai_server`` fixture: real ``kernai serve`` processes for a test session.

The kernai distribution registers this module as a pytest plugin (entry point group ``pytest11``), so
every test suite in an environment with kernai installed, a backend plugin's included, has the fixture.
A conftest then holds little more than its models::

    @pytest.fixture(scope="session")
    def server(kernai_server: ServerFactory) -> KernaiServer:
        configs = model_configs({"tiny": {"parameters": {"model": "tiny.bin"}}}, backend="my-backend")
        return kernai_server({"tiny.bin": make_tiny_model(), **configs}, plugins="my-backend")

The fixture is a factory: each call with the same arguments returns the same running server (started
on the first call, started again if a test stopped or killed it), and every server stops when the
session ends. A different ``name`` gets a server of its own for the same models.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from kernai.testing.server import KernaiServer

ModelFile = str | bytes | os.PathLike[str] | Mapping[str, Any]
"""What goes at one name in the models dir: text or bytes written as they are, a path linked to (a file
or a folder), or a mapping written as YAML (a model config)."""


def model_configs(configs: Mapping[str, Mapping[str, Any]], **common: Any) -> dict[str, ModelFile]:
    """``NAME.yaml`` for each ``NAME: config``, the config given ``name: NAME`` and the ``common`` keys
    (which its own keys override)."""
    return {f"{name}.yaml": {"name": name, **common, **config} for name, config in configs.items()}


def write_models(folder: Path, models: Mapping[str, ModelFile]) -> Path:
    """Create ``folder`` with one entry per name of ``models`` (see :data:`ModelFile`); return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in models.items():
        target = folder / name
        if isinstance(content, os.PathLike):
            target.symlink_to(content)
        elif isinstance(content, Mapping):
            target.write_text(yaml.safe_dump(dict(content), sort_keys=False))
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return folder


def prepare_server(
    root: Path,
    models: Mapping[str, ModelFile] | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    plugins: str | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    python: str | None = None,
    server_class: type[KernaiServer] = KernaiServer,
) -> KernaiServer:
    """A server, not yet started, over ``root/models`` (written from ``models``) and ``root/data``.

    ``settings`` are written to ``root/kernai.yaml``, which ``KERNAI_CONFIG`` names; ``plugins`` is
    ``KERNAI_LOAD_PLUGINS`` (comma-separated plugin names); ``env`` is added to the server's environment,
    ``args`` to its command line; ``python`` is the interpreter it runs in.
    """
    environment = dict(env or {})
    if plugins is not None:
        environment["KERNAI_LOAD_PLUGINS"] = plugins
    if settings is not None:
        config_file = root / "kernai.yaml"
        config_file.write_text(yaml.safe_dump(dict(settings), sort_keys=False))
        environment["KERNAI_CONFIG"] = str(config_file)
    models_dir = write_models(root / "models", models or {})
    return server_class(models_dir, root / "data", env=environment, args=list(args), python=python)


class ServerFactory:
    """Starts servers on demand and keeps them for the session; the ``kernai_server`` fixture."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._servers: dict[str, KernaiServer] = {}

    def __call__(
        self,
        models: Mapping[str, ModelFile] | None = None,
        *,
        name: str = "kernai",
        settings: Mapping[str, Any] | None = None,
        plugins: str | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        python: str | None = None,
        server_class: type[KernaiServer] = KernaiServer,
    ) -> KernaiServer:
        """The running server for these arguments (see :func:`prepare_server`); ``name`` names its
        temporary folder."""
        arguments = {
            "models": models,
            "name": name,
            "settings": settings,
            "plugins": plugins,
            "env": env,
            "args": list(args),
            "python": python,
            "server_class": server_class,
        }
        key = json.dumps(arguments, sort_keys=True, default=repr)  # repr: a Path is not the same string
        server = self._servers.get(key)
        if server is None:
            root = self._tmp_path_factory.mktemp(name)
            server = prepare_server(
                root,
                models,
                settings=settings,
                plugins=plugins,
                env=env,
                args=args,
                python=python,
                server_class=server_class,
            ).start()
            self._servers[key] = server
        elif not server.running:
            server.restart()
        return server

    def stop_all(self) -> None:
        for server in reversed(self._servers.values()):
            server.stop()


@pytest.fixture(scope="session")
def kernai_test_cache() -> Path:
    """A folder kept between runs for test models fetched or built once: ``$KERNAI_TEST_CACHE``, else
    ``~/.cache/kernai/test-models``. Unlike pytest's cache it is there with ``-p no:cacheprovider``."""
    return Path(os.environ.get("KERNAI_TEST_CACHE") or Path.home() / ".cache" / "kernai" / "test-models")


@pytest.fixture(scope="session")
def kernai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Real ``kernai serve`` processes, one per set of arguments, stopped when the session ends."""
    factory = ServerFactory(tmp_path_factory)
    yield factory
    factory.stop_all()
