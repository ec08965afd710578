"""llamactl's parse-command: a ``llama-server``, ``mlx_lm.server`` or ``vllm serve`` command line into
instance options.

The line is split with :mod:`shlex` (POSIX quoting). A llama-server command maps onto kernai's model
config keys (``-c`` to ``context_size``, ``-ngl`` to ``gpu_layers``, ``--temp`` to
``parameters.temperature`` ...), so its options create an instance on kernai's llama-cpp backend; a flag
kernai cannot honour is kept in ``ignored_flags`` with the reason, never dropped in silence. mlx and vLLM
commands become their flags as snake_case keys, as llamactl returns them (kernai has no such backend).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from kernai.errors import InvalidRequest

LLAMA_CPP = "llama-cpp"
MLX = "mlx_lm"
VLLM = "vllm"


@dataclass(frozen=True)
class Flag:
    """A llama-server flag: the kernai key it sets (dotted for ``parameters.*``; ``None`` when kernai has
    no such setting), the value's type, for a switch (no value) the value it sets, and for a number whose
    negative values mean llama-server's default, what kernai does instead."""

    key: str | None
    kind: type = str
    switch: Any = None
    reason: str = "kernai has no such setting"
    when_negative: str | None = None


NOT_HONOURED_SERVER = "kernai serves every model on its own host and port"
LLAMA_SERVER_FLAGS: dict[str, Flag] = {}


def _flags(names: str, flag: Flag) -> None:
    for name in names.split():
        LLAMA_SERVER_FLAGS[name] = flag


_flags("-m --model", Flag("model"))
_flags("-c --ctx-size", Flag("context_size", int))
_flags("-ngl --gpu-layers --n-gpu-layers", Flag("gpu_layers", int))
_flags("-t --threads", Flag("threads", int, when_negative="kernai's default thread count"))
_flags("-tb --threads-batch", Flag("threads_batch", int, when_negative="the same as threads"))
_flags("-b --batch-size", Flag("batch_size", int))
_flags("-np --parallel", Flag("parallel", int))
_flags(
    "-n --n-predict --predict",
    Flag("parameters.max_tokens", int, when_negative="no default limit: left to each request's max_tokens"),
)
_flags("--temp --temperature", Flag("parameters.temperature", float))
_flags("--top-k", Flag("parameters.top_k", int))
_flags("--top-p", Flag("parameters.top_p", float))
_flags("--min-p", Flag("parameters.min_p", float))
_flags("--repeat-penalty", Flag("parameters.repeat_penalty", float))
_flags("--presence-penalty", Flag("parameters.presence_penalty", float))
_flags("--frequency-penalty", Flag("parameters.frequency_penalty", float))
_flags("-s --seed", Flag("parameters.seed", int))
_flags("--chat-template", Flag("chat_template"))
_flags("--pooling", Flag("pooling"))
_flags("--embedding --embeddings", Flag("embeddings", switch=True))
_flags("--mlock", Flag("mlock", switch=True))
_flags("--no-mmap", Flag("mmap", switch=False))
_flags("--mmap", Flag("mmap", switch=True))
_flags("-fa --flash-attn", Flag("flash_attn", switch=True))
_flags("--host --port --path --api-key --api-key-file", Flag(None, reason=NOT_HONOURED_SERVER))
_flags("-a --alias", Flag(None, reason="the instance's name is its alias"))
_flags("--jinja --cont-batching -cb --metrics --slots", Flag(None, switch=True, reason="always on in kernai"))
_flags("--no-webui --verbose -v --log-disable", Flag(None, switch=True))

PROGRAMS = {
    LLAMA_CPP: ("llama-server", "server"),
    MLX: ("mlx_lm.server",),
    VLLM: ("vllm",),
}
"""The programs each parser accepts (a path to them works too; ``python -m mlx_lm.server`` as well)."""

FLASH_ATTN_VALUES = {"on": True, "off": False, "auto": False, "true": True, "false": False}


def split_command(command: str) -> list[str]:
    """The words of ``command`` with shell quoting undone (line continuations joined); 400 when it is
    empty or its quotes do not balance."""
    command = re.sub(r"\\\r?\n", " ", command)
    try:
        words = shlex.split(command, comments=False, posix=True)
    except ValueError as exc:
        raise InvalidRequest(f"Cannot parse the command: {exc}", param="command") from None
    if not words:
        raise InvalidRequest("The command is empty", param="command")
    return words


def _program_arguments(backend: str, words: list[str]) -> list[str]:
    """The arguments after the program ``backend`` expects; 400 for another program."""
    if backend == MLX and words[:3] in (
        ["python", "-m", "mlx_lm.server"],
        ["python3", "-m", "mlx_lm.server"],
    ):
        return words[3:]
    program = words[0].rsplit("/", 1)[-1]
    if program not in PROGRAMS[backend]:
        expected = " or ".join(PROGRAMS[backend])
        raise InvalidRequest(f"Expected a {expected} command, got '{program}'", param="command")
    if backend == VLLM:
        if words[1:2] != ["serve"]:
            raise InvalidRequest("Expected 'vllm serve MODEL ...'", param="command")
        return words[2:]
    return words[1:]


def _name_value(word: str) -> tuple[str, str | None]:
    name, equals, value = word.partition("=")
    return (name, value) if equals and name.startswith("--") else (word, None)


def _is_flag(word: str) -> bool:
    return word.startswith("-") and not re.fullmatch(r"-\d+(\.\d*)?", word)


def _convert(name: str, value: str, kind: type) -> Any:
    try:
        return kind(value)
    except ValueError:
        expected = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
        raise InvalidRequest(f"{name} expects {expected}, got '{value}'", param="command") from None


def _set(options: dict[str, Any], key: str, value: Any) -> None:
    if key.startswith("parameters."):
        options.setdefault("parameters", {})[key.removeprefix("parameters.")] = value
    else:
        options[key] = value


@dataclass
class ParsedCommand:
    """What a command line says: the backend's options and the flags kernai will not honour."""

    backend_type: str
    backend_options: dict[str, Any]
    ignored: list[str]


def parse_llama_server(arguments: list[str]) -> ParsedCommand:
    """llama-server's arguments as kernai llama-cpp config keys."""
    options: dict[str, Any] = {}
    ignored: list[str] = []
    position = 0
    while position < len(arguments):
        word = arguments[position]
        position += 1
        if not _is_flag(word):
            raise InvalidRequest(
                f"Unexpected argument '{word}' (llama-server takes flags only)", param="command"
            )
        name, value = _name_value(word)
        flag = LLAMA_SERVER_FLAGS.get(name)
        if flag is None:  # an unknown flag takes the next word as its value unless it is a flag
            if value is None and position < len(arguments) and not _is_flag(arguments[position]):
                position += 1
            ignored.append(f"{name}: not a setting kernai knows")
            continue
        if flag.key == "flash_attn" and value is None and position < len(arguments):
            if arguments[position].lower() in FLASH_ATTN_VALUES:  # newer llama-server: -fa on|off|auto
                value = arguments[position]
                position += 1
        if flag.switch is not None and value is None:
            if flag.key is None:
                ignored.append(f"{name}: {flag.reason}")
            else:
                _set(options, flag.key, flag.switch)
            continue
        if value is None:
            if position >= len(arguments) or _is_flag(arguments[position]):
                raise InvalidRequest(f"{name} needs a value", param="command")
            value = arguments[position]
            position += 1
        if flag.key is None:
            ignored.append(f"{name}: {flag.reason}")
        elif flag.key == "flash_attn":
            if value.lower() not in FLASH_ATTN_VALUES:
                raise InvalidRequest(f"{name} expects on, off or auto, got '{value}'", param="command")
            options["flash_attn"] = FLASH_ATTN_VALUES[value.lower()]
        elif flag.key == "chat_template" and re.fullmatch(r"[\w.-]+", value):
            options["chat_format"] = value  # a built-in template's name, as llama-cpp-python names them
        elif flag.when_negative is not None and _convert(name, value, flag.kind) < 0:
            ignored.append(f"{name} {value}: {flag.when_negative}")
        else:
            _set(options, flag.key, _convert(name, value, flag.kind))
    return ParsedCommand(LLAMA_CPP, options, ignored)


def parse_generic(backend: str, arguments: list[str]) -> ParsedCommand:
    """mlx_lm.server and vllm serve: ``--flag value`` pairs as snake_case keys; a bare ``--flag`` is
    ``true``; vLLM's leading positional argument is the model."""
    options: dict[str, Any] = {}
    position = 0
    if backend == VLLM and arguments and not _is_flag(arguments[0]):
        options["model"] = arguments[0]
        position = 1
    while position < len(arguments):
        word = arguments[position]
        if not _is_flag(word):
            raise InvalidRequest(f"Unexpected argument '{word}'", param="command")
        name, value = _name_value(word)
        key = name.lstrip("-").replace("-", "_")
        if not key:
            raise InvalidRequest(f"Unexpected argument '{word}'", param="command")
        if value is None and position + 1 < len(arguments) and not _is_flag(arguments[position + 1]):
            position += 1
            value = arguments[position]
        options[key] = True if value is None else _scalar(value)
        position += 1
    if backend == MLX and "model" not in options:
        raise InvalidRequest("--model needs a value", param="command")
    return ParsedCommand(backend, options, [])


def _scalar(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def parse_command(backend: str, command: str) -> ParsedCommand:
    """``command`` for ``backend`` (:data:`LLAMA_CPP`, :data:`MLX` or :data:`VLLM`); 400 naming the
    problem for an empty line, unbalanced quotes, another program or a flag missing its value."""
    arguments = _program_arguments(backend, split_command(command))
    if backend == LLAMA_CPP:
        return parse_llama_server(arguments)
    return parse_generic(backend, arguments)
