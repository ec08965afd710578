"""The frames exchanged between the server and a model's worker process.

Each frame is a 4-byte big-endian length followed by a msgpack-encoded tagged struct. Requests
carry an ``id`` chosen by the server; replies to a streaming request are ``ChunkFrame`` * n then
``Done``, to any other request one ``ResultFrame``; a failure at any point is one ``Failed``.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec
from msgspec import Struct

from kernai.capabilities import Chunk, Request, Result
from kernai.config import ModelConfig

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30
"""The largest frame body either side sends (the 4-byte header could say 4 GiB)."""


class Load(Struct, tag="load"):
    config: ModelConfig


class Predict(Struct, tag="predict"):
    id: int
    request: Request


class Cancel(Struct, tag="cancel"):
    id: int


class StatusQuery(Struct, tag="status"):
    id: int


class Shutdown(Struct, tag="shutdown"):
    pass


class Loaded(Struct, tag="loaded"):
    seconds: float


class ChunkFrame(Struct, tag="chunk"):
    id: int
    chunk: Chunk


class ResultFrame(Struct, tag="result"):
    id: int
    result: Result


class Done(Struct, tag="done"):
    id: int


class Failed(Struct, tag="failed"):
    """``kind`` is ``invalid_request``, ``not_supported`` or ``backend_error``; ``id`` 0 is the load."""

    id: int
    kind: str
    message: str
    param: str | None = None
    code: str | None = None


class StatusReply(Struct, tag="status"):
    id: int
    info: dict[str, Any]


ToWorker = Load | Predict | Cancel | StatusQuery | Shutdown
FromWorker = Loaded | ChunkFrame | ResultFrame | Done | Failed | StatusReply

encoder = msgspec.msgpack.Encoder()
to_worker_decoder = msgspec.msgpack.Decoder(ToWorker)
from_worker_decoder = msgspec.msgpack.Decoder(FromWorker)


def frame(message: Struct) -> bytes:
    """Encode one message with its length header; one over :data:`MAX_FRAME` is a ``ValueError``."""
    body = encoder.encode(message)
    if len(body) > MAX_FRAME:
        raise ValueError(
            f"a {type(message).__name__} frame of {len(body)} bytes is over the {MAX_FRAME}-byte limit"
        )
    return HEADER.pack(len(body)) + body
