"""What a plugin declares about each backend it provides."""

from __future__ import annotations

from typing import Any, Literal, cast

from msgspec import Struct, field

from kernai.capabilities import Capability, Request

OptionType = Literal["str", "int", "float", "bool", "list", "dict"]

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


class BackendOption(Struct, frozen=True, kw_only=True):
    """A model-config key that a backend understands beyond the common ones."""

    name: str
    type: OptionType = "str"
    default: Any = None
    description: str = ""
    choices: list[Any] | None = None
    minimum: int | float | None = None
    """For an ``int`` or ``float`` option: the smallest value accepted."""
    maximum: int | float | None = None
    """For an ``int`` or ``float`` option: the largest value accepted."""

    def check(self, value: Any) -> str | None:
        """An error message when ``value`` does not fit this option, else ``None``."""
        allowed = _PYTHON_TYPES[self.type]
        if isinstance(value, bool) and self.type in ("int", "float"):
            return f"expected {self.type}, got bool"
        if not isinstance(value, allowed):
            return f"expected {self.type}, got {type(value).__name__}"
        if self.choices is not None and value not in self.choices:
            return f"expected one of {', '.join(map(str, self.choices))}, got {value!r}"
        if self.type in ("int", "float"):
            return self._outside_bounds(cast(float, value))
        return None

    def _outside_bounds(self, number: float) -> str | None:
        # written so that NaN fits no bound
        if self.minimum is not None and not number >= self.minimum:
            return f"expected at least {self.minimum}, got {number!r}"
        if self.maximum is not None and not number <= self.maximum:
            return f"expected at most {self.maximum}, got {number!r}"
        return None


class SelfTestUnavailable(Exception):
    """Raised by a self-test function that cannot make a model here; its message says what would."""


class SelfTest(Struct, frozen=True, kw_only=True):
    """What a backend's self-test function returns: the model config of the model it wrote, and a
    request for it (default: a sample request of the backend's first capability)."""

    config: dict[str, Any]
    request: Request | None = None


class Backend(Struct, frozen=True, kw_only=True):
    """A backend as registered by a plugin through the ``register_backends`` hook."""

    name: str
    capabilities: list[Capability]
    description: str = ""
    options: list[BackendOption] = field(default_factory=list)
    requires_model_file: bool = True
    """Whether a model config for this backend must name an existing ``parameters.model``."""
    parallel: bool = False
    """Whether one loaded model may serve several requests at once; only then does a config's
    ``parallel`` above 1 take effect (the kernel queues the rest fairly)."""
    selftest: str | None = None
    """``"module:function"`` that ``kernai doctor`` calls as ``function(folder)``: it writes the
    backend's smallest model into ``folder`` and returns a :class:`SelfTest`. The doctor then loads
    it in a worker and runs one request, as a server would."""
    facts: str | None = None
    """``"module:function"`` returning a :class:`kernai.backend_facts.BackendFacts` (engine versions, build
    flags, compute devices); the server calls it in a short subprocess of the backend's interpreter, so
    the engine is never imported in the server process."""

    def option(self, name: str) -> BackendOption | None:
        return next((option for option in self.options if option.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {option.name: option.default for option in self.options if option.default is not None}
