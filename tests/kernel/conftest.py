"""A real `kernai serve` with reference-backend models, shared by the kernel's HTTP tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernai.testing import KernaiServer, ServerFactory

MODELS = {
    "echo.yaml": "name: echo\nbackend: reference\n",
    "slow.yaml": "name: slow\nbackend: reference\ndelay: 0.2\n",
    "no-restart.yaml": "name: no-restart\nbackend: reference\ndelay: 0.2\nauto_restart: false\n",
    "sigill.yaml": "name: sigill\nbackend: reference\ndelay: 0.2\n",
    "broken-load.yaml": "name: broken-load\nbackend: reference\nfail_load: true\n",
    "typo.yaml": "name: typo\nbackend: reference\ncontext_sise: 10\n",
    "ghost.yaml": "name: ghost\nbackend: no-such-backend\n",
    "no-weights.yaml": "name: no-weights\nbackend: reference\nparameters:\n  model: missing.gguf\n",
    "file-stem.yaml": "name: declared-name\nbackend: reference\nthreads: many\n",
}


@pytest.fixture(scope="session")
def server(kernai_server: ServerFactory) -> KernaiServer:
    return kernai_server(MODELS, plugins="reference")


@pytest.fixture()
def client(server: KernaiServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


@pytest.fixture()
def models_dir(server: KernaiServer) -> Path:
    return server.models_dir
