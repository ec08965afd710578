"""The model manager: which models exist (:mod:`~kernai.manager.catalog`), which run
(:mod:`~kernai.manager.supervisor`, on the :mod:`~kernai.manager.decisions`), and serving requests to them
(:class:`ModelManager`, in :mod:`~kernai.manager.serving`)."""

from kernai.manager.model import ManagedModel, ModelState
from kernai.manager.serving import ModelManager

__all__ = ["ManagedModel", "ModelManager", "ModelState"]
