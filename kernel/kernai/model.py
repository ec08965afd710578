"""A backend's loaded model as a class, and the lifecycle hooks that serve it.

Most plugins forward the four lifecycle hooks to one object: ``load`` builds it, ``predict``,
``status`` and ``shutdown`` call its methods. Subclass :class:`Model` and let :func:`model_hooks`
write those hooks, as simonw/llm's plugins subclass ``llm.Model``::

    class EchoModel(Model):
        def __init__(self, config): ...
        def predict(self, request): ...

    load, predict, status, shutdown = model_hooks(EchoModel)

The hooks stay the contract underneath: a plugin may write any of them itself instead.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from kernai.capabilities import Chunk, Request, Result
from kernai.config import ModelConfig
from kernai.hookspecs import hookimpl


class Model(ABC):
    """One loaded model in its worker process: what the ``load`` hook of :func:`model_hooks` returns."""

    @abstractmethod
    def __init__(self, config: ModelConfig) -> None:
        """The ``load`` hook: load the model that ``config`` describes (see :func:`kernai.hookspecs.load`)."""

    @abstractmethod
    def predict(self, request: Request) -> Result | Iterator[Chunk] | None:
        """The ``predict`` hook: a result, or chunks when ``request.stream`` is true; ``None`` for a
        request this backend does not serve (see :func:`kernai.hookspecs.predict`)."""

    def status(self) -> dict[str, Any]:
        """The ``status`` hook: JSON-serialisable facts for the monitor."""
        return {}

    def close(self) -> None:
        """The ``shutdown`` hook: release the engine's resources; the worker exits next."""
        return None


class ModelHooks(NamedTuple):
    """The four lifecycle hook implementations, to assign to module-level names of a plugin."""

    load: Callable[..., Model]
    predict: Callable[..., Result | Iterator[Chunk] | None]
    status: Callable[..., dict[str, Any]]
    shutdown: Callable[..., bool]


def model_hooks(model: type[Model] | str) -> ModelHooks:
    """The lifecycle hooks of a plugin whose loaded models are instances of ``model``.

    ``model`` is the class, or ``"module:Class"`` when its module imports the engine: the class is
    then imported in ``load``, inside the worker, never in the server process. Each hook is marked
    with its spec's name, so the names they are assigned to do not matter to pluggy.
    """

    @hookimpl(specname="load")
    def load(config: ModelConfig) -> Model:
        return _model_class(model)(config)

    return ModelHooks(load, _predict, _status, _shutdown)


def _model_class(model: type[Model] | str) -> type[Model]:
    if not isinstance(model, str):
        return model
    module, _, name = model.partition(":")
    found = getattr(importlib.import_module(module), name)
    if not (isinstance(found, type) and issubclass(found, Model)):
        raise TypeError(f"{model} is not a subclass of kernai.Model")
    return found


@hookimpl(specname="predict")
def _predict(model: Model, request: Request) -> Result | Iterator[Chunk] | None:
    return model.predict(request)


@hookimpl(specname="status")
def _status(model: Model) -> dict[str, Any]:
    return model.status()


@hookimpl(specname="shutdown")
def _shutdown(model: Model) -> bool:
    model.close()
    return True
